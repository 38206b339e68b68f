"""Lab 06's checks run the simulator on the reader's settings and name the objective missed."""

from __future__ import annotations

import pytest

from meshlab.check import CheckFailed, lab06


def test_a_longer_quiet_period_with_a_shorter_maximum_meets_the_objective():
    lab06.check_settings(lambda: {"debounce_after_ms": 500, "debounce_max_ms": 2000, "push_throttle": 0})


@pytest.mark.parametrize(
    ("settings", "hint"),
    [
        ({"debounce_after_ms": 100, "debounce_max_ms": 10_000}, "151 pushes in the minute; at most 30"),
        ({"debounce_after_ms": 500, "debounce_max_ms": 10_000}, "p99 propagation is 10737 ms; at most 3200 ms"),
        ({"debounce_after_ms": -1, "debounce_max_ms": 10}, "cannot be simulated: debounce_after_ms and debounce_max_ms must be >= 0"),
        ({"debounce_after_ms": 500}, "choose\\(\\) must return"),
    ],
)
def test_settings_that_miss_the_objective_say_which_part(settings, hint):
    with pytest.raises(CheckFailed, match=hint):
        lab06.check_settings(lambda: settings)


@pytest.mark.parametrize(
    "settings",
    [
        {"debounce_after_ms": 500, "debounce_max_ms": 5000, "push_throttle": 0},  # debounce longer, let batches grow
        {"debounce_after_ms": 1000, "debounce_max_ms": 5000},  # the same lever, further
        {"debounce_after_ms": 500, "debounce_max_ms": 2000, "push_throttle": 4},  # shorter batches, less contention
        {"debounce_after_ms": 100, "debounce_max_ms": 10_000, "push_throttle": 2},  # Istio's debounce, one sender per core
    ],
)
def test_the_open_exercise_accepts_different_settings_that_keep_headroom(settings):
    lab06.check_headroom(lambda: settings)


@pytest.mark.parametrize(
    ("settings", "hint"),
    [
        ({"debounce_after_ms": 100, "debounce_max_ms": 10_000}, "busy 84% of the time; at most 75% is allowed: do less work"),
        ({"debounce_after_ms": 100, "debounce_max_ms": 10_000, "push_throttle": 100},
         "busy 93% .* PUSH_THROTTLE 100 is above the automatic 25 for 2 cores: more pushes in flight only contend"),
        ({"debounce_after_ms": 500, "debounce_max_ms": 5000, "push_throttle": 100},
         "busy 92% .*; and p99 propagation is 10655 ms; at most 10000 ms is allowed: past the cores, more pushes in flight deliver no sooner"),
        ({"debounce_after_ms": 500, "debounce_max_ms": 10_000}, "p99 propagation is 14146 ms; .* only DEBOUNCE_MAX bounds how long a batch waits"),
        ({"debounce_after_ms": 500, "debounce_max_ms": 2000, "push_throttle": 1}, "p99 propagation is 11419 ms; .* PUSH_THROTTLE 1 keeps at most 1 of the 2 cores"),
        ({"debounce_after_ms": 500, "debounce_max_ms": 5000, "push_throttle": 2.5}, "push_throttle must be a whole number"),
        ({"debounce_after_ms": "500ms", "debounce_max_ms": 5000}, "debounce_after_ms must be a number of milliseconds"),
        ({"debounce_after_ms": 500, "debounce_max_ms": 5000, "throttle": 4}, "unknown setting\\(s\\) throttle; the settings are"),
    ],
)
def test_the_open_exercise_names_the_bound_a_wrong_answer_breaks(settings, hint):
    with pytest.raises(CheckFailed, match=hint):
        lab06.check_headroom(lambda: settings)


def test_brief_names_the_figures_the_objectives_use():
    assert lab06.brief({"debounce_after_ms": 100, "debounce_max_ms": 10_000}) == "151 pushes, p99 propagation 2379 ms, istiod busy 25%"
