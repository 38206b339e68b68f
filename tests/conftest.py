"""Stage markers: ``live``, ``ebpf``, ``browser`` and ``kind`` tests run only where ``meshlab doctor``
says their stage is available, and otherwise skip with doctor's reason and fix.

With ``MESHLAB_REQUIRE_LIVE=1`` (what ``.ci/run`` sets) a ``live``, ``ebpf`` or ``browser`` test that
would skip, for whatever reason, fails instead: CI must never go green by skipping the real thing.
``kind`` tests still skip there: no Docker engine runs on the CI machines. ``make test-kind`` sets
``MESHLAB_REQUIRE_KIND=1``, under which a ``kind`` test that would skip fails the same way.
"""

from __future__ import annotations

import functools
import os

import pytest

from meshlab import doctor

REQUIRED_WHEN_LIVE = ("live", "ebpf", "browser")
STAGE_MARKERS = REQUIRED_WHEN_LIVE + ("kind",)


def required_stages() -> tuple[str, ...]:
    """The stages whose tests may not skip in this run."""
    return (REQUIRED_WHEN_LIVE if os.environ.get("MESHLAB_REQUIRE_LIVE") == "1" else ()) + (("kind",) if os.environ.get("MESHLAB_REQUIRE_KIND") == "1" else ())


@functools.cache
def stage_report(stage: str) -> doctor.StageReport:
    return doctor.diagnose((stage,))[stage]


def _stages_of(item: pytest.Item) -> list[str]:
    return [marker.name for marker in item.iter_markers() if marker.name in STAGE_MARKERS]


def pytest_runtest_setup(item: pytest.Item) -> None:
    for stage in _stages_of(item):
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
        variable = "MESHLAB_REQUIRE_KIND" if required == ["kind"] else "MESHLAB_REQUIRE_LIVE"
        report.outcome = "failed"
        report.longrepr = f"{variable}=1 forbids skipping a {'/'.join(required)} test; it would have skipped: {reason}"
