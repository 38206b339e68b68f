# %% [markdown]
# # Lab 06 · Tuning the debounce
#
# A cluster of 300 proxies sees, every minute, about 30 routing edits, 1200 endpoint changes and three
# rollout bursts. The platform team wants **at most 30 pushes per minute** (istiod's CPU) and every change
# on every proxy within **2.6 s at p99**. Istio's defaults (100 ms / 10 s) push far too often here. Choose
# PILOT_DEBOUNCE_AFTER, PILOT_DEBOUNCE_MAX and PILOT_PUSH_THROTTLE (0 = automatic) that meet both.
#
# Stage: **model** (meshlab's simulator of Istio 1.30.3's pipeline).

# %%
from meshlab.check import lab06

print("defaults:", lab06.run({"debounce_after_ms": 100, "debounce_max_ms": 10_000}))

# %% [markdown]
# ## Exercise · Your settings
#
# Return `{"debounce_after_ms": ..., "debounce_max_ms": ..., "push_throttle": ...}`. Try a few with
# `lab06.run(...)` first: which setting bounds the number of pushes, which one the waiting time?

# %%
def choose():
    ### BEGIN SOLUTION
    return {"debounce_after_ms": 500, "debounce_max_ms": 2000, "push_throttle": 0}
    ### END SOLUTION


# %%
lab06.check_settings(choose)
print("objective met:", lab06.run(choose()))
