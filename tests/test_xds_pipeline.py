"""Istio 1.30.3's push pipeline, from its described semantics: merge, debounce, push queue, throttle.

Timelines are table-driven: events at exact simulated milliseconds in, pushes (start, end, merged
events, contents) out.
"""

from __future__ import annotations

import asyncio
import json

import pytest
import simpy

from meshlab.cli import main
from meshlab.xds import AsyncPushQueue, DebounceOptions, Debouncer, PushQueue, PushRequest, SimPushQueue
from meshlab.xds.clock import SimClock
from meshlab.xds.memory import HUABING_SCOPED
from meshlab.xds.simulate import PushCost, TimelineError, churn, simulate_fleet, simulate_timeline


def event(t, full=True, configs=(), reason="config"):
    return {"t_ms": t, "full": full, "configs": list(configs), "reason": reason}


def timeline(*events, after=100, maximum=10_000, eds=True, push=50):
    return {"debounce_after_ms": after, "debounce_max_ms": maximum, "enable_eds_debounce": eds, "push_ms": push, "events": list(events)}


def starts(result):
    return [(p["start_ms"], p["merged_events"]) for p in result["pushes"]]


CASES = {
    "should push once the quiet period has passed": (timeline(event(0)), [(100, 1)]),
    "should merge events that keep coming within the quiet period": (timeline(event(0), event(50), event(120)), [(220, 3)]),
    "should not re-arm the timer for later events, only check again at the tick": (timeline(event(0), event(90)), [(190, 2)]),
    "should release at DEBOUNCE_MAX even while events keep coming": (timeline(*[event(t) for t in range(0, 1000, 50)], maximum=300), [(300, 7), (650, 7), (1000, 6)]),
    "should check DEBOUNCE_MAX only at ticks, so it is not a hard deadline": (timeline(event(0), event(80), event(160), event(240), maximum=250), [(260, 4)]),
    "should hold a batch while a push runs and send it as soon as the push ends": (timeline(event(0), event(120), push=300), [(100, 1), (400, 1)]),
    "should push endpoint-only changes at once when EDS debounce is off": (timeline(event(0, full=False, reason="endpoint"), event(10, full=False, reason="endpoint"), eds=False), [(0, 1), (10, 1)]),
    "should still debounce full pushes when EDS debounce is off": (timeline(event(0), event(20, full=False), eds=False), [(20, 1), (100, 1)]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_debounce(case):
    given, expected = CASES[case]
    assert starts(simulate_timeline(given)) == expected


def test_push_contents_are_merged_as_istio_merges_them():
    result = simulate_timeline(timeline(event(0, False, ["ServiceEntry/a"], "endpoint"), event(10, True, ["VirtualService/b"], "config"),
                                        event(20, False, ["ServiceEntry/a"], "endpoint"), event(30, False, [], "")))
    (push,) = result["pushes"]
    assert push == {"start_ms": 130, "end_ms": 180, "full": True, "configs": ["ServiceEntry/a", "VirtualService/b"],
                    "reasons": {"config": 1, "endpoint": 2, "unknown": 1}, "merged_events": 4}


def test_merge_keeps_the_older_start_and_a_nil_set_takes_the_other_side():
    a = PushRequest(False, None, {"endpoint": 1}, start_ms=5)
    b = PushRequest(True, frozenset({"x"}), {"endpoint": 2}, start_ms=3, forced=True)
    merged = a.merge(b)
    assert (merged.full, merged.forced, merged.configs, merged.reasons, merged.start_ms) == (True, True, frozenset({"x"}), {"endpoint": 3}, 3)


def test_push_queue_merges_pending_and_requeues_at_the_tail_after_mark_done():
    queue = PushQueue()
    queue.enqueue("a", PushRequest(False, frozenset({"1"})))
    queue.enqueue("b", PushRequest(False, frozenset({"2"})))
    queue.enqueue("a", PushRequest(True, frozenset({"3"})))  # merged in place: a keeps its position
    assert queue.pending() == 2
    proxy, request = queue.try_dequeue()
    assert proxy == "a" and request.full and request.configs == {"1", "3"}
    queue.enqueue("a", PushRequest(False, frozenset({"4"})))  # a is being processed: merged into its processing slot
    assert queue.pending() == 1
    queue.mark_done("a")  # something arrived meanwhile: back to the tail
    assert [queue.try_dequeue()[0], queue.try_dequeue()[0]] == ["b", "a"]
    queue.mark_done("b")
    assert queue.pending() == 0 and queue.try_dequeue() is None


def test_dequeue_times_out_on_both_clocks():
    async def live():
        queue = AsyncPushQueue()
        assert await queue.dequeue(timeout=0.01) is None
        asyncio.get_running_loop().call_later(0.01, queue.enqueue, "p", PushRequest(True))
        return await queue.dequeue(timeout=1)

    assert asyncio.run(live())[0] == "p"
    env = simpy.Environment()
    queue = SimPushQueue(env)
    seen = []

    def consumer():
        for timeout in (5, 50):
            item = yield from queue.dequeue(timeout=timeout)
            seen.append((env.now, item))

    env.process(consumer())
    env.process((lambda: (yield env.timeout(20)) or queue.enqueue("p", PushRequest(True)))())
    env.run()
    assert seen[0] == (5, None) and seen[1][0] == 20 and seen[1][1][0] == "p"


def test_sidecar_scoping_shortens_propagation():
    events = churn(20_000, seed=3)
    unscoped = simulate_fleet(2000, events, cost=PushCost())
    scoped = simulate_fleet(2000, events, cost=PushCost(resources=HUABING_SCOPED.resources))
    assert unscoped.pushes == scoped.pushes and scoped.propagation_percentile(99) < unscoped.propagation_percentile(99)
    assert simulate_fleet(2000, events, cost=PushCost()).summary() == unscoped.summary(), "seeded and deterministic"


def test_a_longer_debounce_means_fewer_pushes_with_more_events_each():
    events = churn(30_000, endpoint_changes_per_s=20, seed=4)
    short = simulate_fleet(100, events, DebounceOptions(debounce_after_ms=10))
    long = simulate_fleet(100, events, DebounceOptions(debounce_after_ms=500))
    assert long.pushes < short.pushes and long.events_per_push > short.events_per_push


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"debounce_after_ms": 100}, "missing field 'debounce_max_ms'"),
        (timeline(after=-1), "debounce_after_ms: -1 is not a number >= 0"),
        (timeline(event(0), eds="yes"), "enable_eds_debounce: 'yes' is not true or false"),
        (timeline({"t_ms": 5}), "events[0]: missing field 'full'"),
        (timeline({"t_ms": -5, "full": True}), "events[0].t_ms: -5 is not a number >= 0"),
        (timeline({"t_ms": 5, "full": True, "configs": "x"}), "events[0].configs: expected a list of strings"),
    ],
)
def test_bad_timelines_name_the_field(data, message):
    with pytest.raises(TimelineError, match=message.replace("[", r"\[").replace("]", r"\]")):
        simulate_timeline(data)


def test_cli_prints_exact_json_and_refuses_bad_files(tmp_path, capsys):
    path = tmp_path / "t.json"
    path.write_text(json.dumps(timeline(event(0, configs=["VirtualService/r"]))))
    assert main(["xds", "simulate", "--timeline", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"pushes": [{"start_ms": 100, "end_ms": 150, "full": True, "configs": ["VirtualService/r"], "reasons": {"config": 1}, "merged_events": 1}]}
    path.write_text(json.dumps({"events": []}))
    assert main(["xds", "simulate", "--timeline", str(path)]) == 2
    assert "missing field 'debounce_after_ms'" in capsys.readouterr().err


def test_a_quiet_period_ending_a_rounding_error_away_is_released_not_re_armed_for_ever():
    """Fractional times: an event at 4028.4083203218 ms and its tick at 4528.4083203218 ms are 4.5e-13 ms
    short of 500 ms apart, a rest too small to move the clock (now + rest == now). The debouncer must
    push then, not re-arm its timer at the same instant for ever (a simulation that never ended)."""
    env = simpy.Environment()
    clock = SimClock(env)
    pushed = []
    debouncer = Debouncer(clock, lambda request, merged, done: pushed.append(env.now), DebounceOptions(debounce_after_ms=500, debounce_max_ms=10_000))
    clock.call_later(4028.4083203218, lambda: debouncer.update(PushRequest(True)))
    for _ in range(50):  # a bounded number of steps: the bug re-arms at one instant without end
        if env.peek() > 4600:
            break
        env.step()
    assert pushed == [4528.4083203218]


def test_a_clock_a_year_past_boot_keeps_the_whole_quiet_period():
    """The live server's clock is monotonic time since boot: a large `now` must not shorten the quiet
    period (a tolerance scaled by `now` released this batch at +100 ms instead of Istio's +130 ms)."""
    year_ms = 365 * 86_400_000.0
    env = simpy.Environment(initial_time=year_ms)
    clock = SimClock(env)
    pushed = []
    debouncer = Debouncer(clock, lambda request, merged, done: pushed.append(env.now - year_ms), DebounceOptions(debounce_after_ms=100))
    debouncer.update(PushRequest(False))
    clock.call_later(30, lambda: debouncer.update(PushRequest(False)))
    env.run(until=year_ms + 1_000)
    assert pushed == [130]
