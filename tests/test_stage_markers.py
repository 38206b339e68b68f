"""The stage markers' contract, run in a throw-away pytest session with this suite's conftest."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = (Path(__file__).parent / "conftest.py").read_text()
TESTS = '''
import pytest

@pytest.mark.live
def test_live_that_skips():
    pytest.skip("no network namespaces today")

@pytest.mark.browser
def test_browser_that_passes():
    pass

@pytest.mark.kind
def test_kind_that_skips():
    pytest.skip("no Docker engine")

def test_model_that_skips():
    pytest.skip("not a stage test")

@pytest.mark.debian
def test_debian_that_skips():
    pytest.skip("thrift-compiler is not installed")

@pytest.mark.upstream
def test_upstream_that_skips():
    pytest.skip("pilot-agent is not built")
'''


@pytest.fixture(autouse=True)
def no_requirements(monkeypatch):
    """Each test sets the variables it is about; the outer run's (CI sets two) must not leak in."""
    for variable in ("MESHLAB_REQUIRE_LIVE", "MESHLAB_REQUIRE_UPSTREAM", "MESHLAB_REQUIRE_KIND"):
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def session(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\nmarkers =\n    live: l\n    ebpf: e\n    browser: b\n    kind: k\n    debian: d\n    upstream: u\n")
    pytester.makepyfile(test_stages=TESTS)
    return pytester


def test_without_require_live_a_live_test_may_skip(session):
    session.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1, skipped=5)


def test_require_live_turns_a_live_skip_into_a_failure_with_the_reason(session, monkeypatch):
    monkeypatch.setenv("MESHLAB_REQUIRE_LIVE", "1")
    result = session.runpytest("-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(passed=1, failed=2, skipped=3)
    result.stdout.fnmatch_lines(["*MESHLAB_REQUIRE_LIVE=1 forbids skipping a test marked live*no network namespaces today*"])
    result.stdout.fnmatch_lines(["*MESHLAB_REQUIRE_LIVE=1 forbids skipping a test marked debian*thrift-compiler is not installed*"])


@pytest.mark.parametrize("stage", ["kind", "upstream"])
def test_a_stages_own_variable_turns_its_skip_into_a_failure(session, monkeypatch, stage):
    monkeypatch.setenv(f"MESHLAB_REQUIRE_{stage.upper()}", "1")
    result = session.runpytest("-p", "no:cacheprovider", "-rA")
    outcomes = result.parseoutcomes()
    # a missing stage skips at set-up, where pytest calls the failure an error
    assert (outcomes.get("passed"), outcomes.get("skipped"), outcomes.get("failed", 0) + outcomes.get("errors", 0)) == (1, 4, 1)
    result.stdout.fnmatch_lines([f"*MESHLAB_REQUIRE_{stage.upper()}=1 forbids skipping a test marked {stage}*"])
