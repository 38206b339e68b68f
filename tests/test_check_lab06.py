"""Lab 06's check runs the simulator on the reader's settings and names the objective missed."""

from __future__ import annotations

import pytest

from meshlab.check import CheckFailed, lab06


def test_a_longer_quiet_period_with_a_shorter_maximum_meets_the_objective():
    lab06.check_settings(lambda: {"debounce_after_ms": 500, "debounce_max_ms": 2000, "push_throttle": 0})


@pytest.mark.parametrize(
    ("settings", "hint"),
    [
        ({"debounce_after_ms": 100, "debounce_max_ms": 10_000}, "151 pushes in the minute; at most 30"),
        ({"debounce_after_ms": 500, "debounce_max_ms": 10_000}, "p99 propagation is 10258 ms"),
        ({"debounce_after_ms": -1, "debounce_max_ms": 10}, "cannot be simulated: debounce_after_ms and debounce_max_ms must be >= 0"),
        ({"debounce_after_ms": 500}, "choose\\(\\) must return"),
    ],
)
def test_settings_that_miss_the_objective_say_which_part(settings, hint):
    with pytest.raises(CheckFailed, match=hint):
        lab06.check_settings(lambda: settings)
