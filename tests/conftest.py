"""Stage markers: ``live``, ``ebpf``, ``browser``, ``upstream``, ``debian`` and ``kind`` tests run only
where ``meshlab doctor`` says their stage is available (a ``debian`` test checks its own program), and
otherwise skip with the reason and the fix.

With ``MESHLAB_REQUIRE_LIVE=1`` (what ``.ci/run`` sets) a ``live``, ``ebpf`` or ``browser`` test that
would skip, for whatever reason, fails instead: CI must never go green by skipping the real thing.
``kind`` tests still skip there: no Docker engine runs on the CI machines. ``MESHLAB_REQUIRE_UPSTREAM=1``
(also set by ``.ci/run``) does the same for ``upstream`` tests, and ``make test-kind`` sets
``MESHLAB_REQUIRE_KIND=1`` for ``kind`` tests.
"""

from __future__ import annotations

import functools
import os

import pytest

from meshlab import doctor

REQUIRED_WHEN_LIVE = ("live", "ebpf", "browser", "debian")
STAGE_MARKERS = REQUIRED_WHEN_LIVE + ("upstream", "kind")
#: A stage whose tests may not skip when its variable is 1.
REQUIRING = {"upstream": "MESHLAB_REQUIRE_UPSTREAM", "kind": "MESHLAB_REQUIRE_KIND"}


def required_stages() -> tuple[str, ...]:
    """The stages whose tests may not skip in this run."""
    live = REQUIRED_WHEN_LIVE if os.environ.get("MESHLAB_REQUIRE_LIVE") == "1" else ()
    return live + tuple(stage for stage, variable in REQUIRING.items() if os.environ.get(variable) == "1")


@functools.cache
def stage_report(stage: str) -> doctor.StageReport:
    return doctor.diagnose((stage,))[stage]


def _stages_of(item: pytest.Item) -> list[str]:
    return [marker.name for marker in item.iter_markers() if marker.name in STAGE_MARKERS]


def pytest_runtest_setup(item: pytest.Item) -> None:
    for stage in [stage for stage in _stages_of(item) if stage in doctor.STAGES]:  # a debian test checks its own program
        report = stage_report(stage)
        if not report.available:
            pytest.skip(f"{stage} stage not available: {report.reason} (fix: {report.fix})")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    required = [stage for stage in _stages_of(item) if stage in required_stages()]
    if report.skipped and required:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        variable = REQUIRING.get(required[0], "MESHLAB_REQUIRE_LIVE")
        report.outcome = "failed"
        report.longrepr = f"{variable}=1 forbids skipping a test marked {'/'.join(required)}; it would have skipped: {reason}"


@pytest.fixture
def collector():
    """meshlab's telemetry collector (ALS and OTLP) on loopback; ``.address`` is where to send."""
    from meshlab.telemetry.collector import TelemetryCollector

    running = TelemetryCollector()
    running.address = running.start()
    yield running
    running.stop()
