# %% [markdown]
# # Lab 06 · Tuning the debounce
#
# A cluster of 300 proxies sees, every minute, about 30 routing edits, 1200 endpoint changes and three
# rollout bursts. The platform team wants **at most 30 pushes per minute** (istiod's CPU) and every change
# on every proxy within **3.2 s at p99**. Istio's defaults (100 ms / 10 s) push far too often here. Choose
# PILOT_DEBOUNCE_AFTER, PILOT_DEBOUNCE_MAX and PILOT_PUSH_THROTTLE (0 = automatic) that meet both.
#
# Stage: **model** (meshlab's simulator of Istio 1.30.3's pipeline).

# %%
from meshlab.check import lab06

print("defaults:", lab06.brief({"debounce_after_ms": 100, "debounce_max_ms": 10_000}))

# %% [markdown]
# ## Exercise · Your settings
#
# Return `{"debounce_after_ms": ..., "debounce_max_ms": ..., "push_throttle": ...}`. Try a few with
# `lab06.brief(...)` first: which setting bounds the number of pushes, which one the waiting time?

# %% nbgrader={"grade": false, "grade_id": "choose", "locked": false, "schema_version": 3, "solution": true}
def choose():
    ### BEGIN SOLUTION
    return {"debounce_after_ms": 500, "debounce_max_ms": 2000, "push_throttle": 0}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_settings", "locked": true, "points": 1, "schema_version": 3, "solution": false}
lab06.check_settings(choose)
print("objective met:", lab06.brief(choose()))

# %% [markdown]
# ## Exercise 2 · Headroom on a saturated istiod (open: many answers pass)
#
# The same minute of churn now reaches **2000 unscoped proxies** served by one istiod with **2 cores**
# (chapter 06, section 4). The platform team wants headroom for a burst or a reconnect storm: istiod **busy
# at most 75%** of the time, and every change on every proxy within **10 s at p99**. With Istio's defaults it
# is busier than that. Any settings that meet both pass; `lab06.brief(settings, lab06.HEADROOM_PROXIES)`
# shows what the simulator says for yours. Which lever lowers the work, which one the contention, and what
# does raising PUSH_THROTTLE do?

# %%
print("defaults:", lab06.brief({"debounce_after_ms": 100, "debounce_max_ms": 10_000}, lab06.HEADROOM_PROXIES))


# %% nbgrader={"grade": false, "grade_id": "choose_with_headroom", "locked": false, "schema_version": 3, "solution": true}
def choose_with_headroom():
    ### BEGIN SOLUTION
    return {"debounce_after_ms": 500, "debounce_max_ms": 5000, "push_throttle": 0}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_headroom", "locked": true, "points": 1, "schema_version": 3, "solution": false}
lab06.check_headroom(choose_with_headroom)
print("headroom kept:", lab06.brief(choose_with_headroom(), lab06.HEADROOM_PROXIES))
