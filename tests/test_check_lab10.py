"""Lab 10's checks: the lab's own solutions pass, and the usual wrong answers are named."""

from __future__ import annotations

import pytest
import yaml

from lab_solutions import solution
from meshlab.check import CheckFailed, lab10
from meshlab.wasm.build import build

LAB = "10-writing-a-wasm-filter"


@pytest.fixture(scope="module")
def module():
    return build("deny_by_header")


def variant(text: str, **changes) -> str:
    document = yaml.safe_load(text)
    for path, value in changes.items():
        *parents, last = path.split(".")
        target = document
        for key in parents:
            target = target[key]
        if value is None:
            del target[last]
        else:
            target[last] = value
    return yaml.safe_dump(document)


def test_the_solution_plugin_passes_and_each_mistake_is_named(module):
    right = solution(LAB, "write_plugin", {"lab10": lab10, "DENY_MODULE": module})
    lab10.check_plugin(lambda: right, module)
    for changes, hint in [
        ({"spec.phase": "AUTHZ"}, "phase AUTHZ puts it after authentication"),
        ({"spec.failStrategy": "FAIL_OPEN"}, "a security filter fails closed"),
        ({"spec.selector": None}, "applies to other pods of shop too"),
        ({"spec.match": [{"mode": "CLIENT_AND_SERVER", "ports": [{"number": 8080}]}]}, "outbound"),
        ({"spec.match": [{"mode": "SERVER"}]}, "other inbound ports"),
        ({"spec.sha256": "0" * 64}, "the module file's digest"),
        ({"metadata.namespace": "payments"}, "namespace 'payments'"),
        ({"spec.phase": "EARLY"}, "istioctl would refuse it"),
    ]:
        with pytest.raises(CheckFailed, match=hint):
            lab10.check_plugin(lambda text=variant(right, **changes): text, module)


def test_the_solution_order_passes_and_phase_before_priority_is_named():
    lab10.check_order(lambda: solution(LAB, "predict_order", {"lab10": lab10}))
    with pytest.raises(CheckFailed, match="phases come first"):
        lab10.check_order(lambda: ["metrics", "tenant-check", "audit"])
    with pytest.raises(CheckFailed, match="unset priority counts below"):
        lab10.check_order(lambda: ["audit", "tenant-check", "metrics"])


def test_the_solution_filter_passes_and_the_template_as_given_fails():
    lab10.check_filter(lambda: solution(LAB, "quota_code"))
    with pytest.raises(CheckFailed, match="should get 429"):
        lab10.check_filter(lambda: "")
    with pytest.raises(CheckFailed, match="compiler refused it"):
        lab10.check_filter(lambda: "    this is not AssemblyScript;")


@pytest.mark.live
def test_the_live_check_sends_requests_through_the_sidecar():
    lab10.check_filter_live(lambda: solution(LAB, "quota_code"))
    with pytest.raises(CheckFailed, match="should get 429"):
        lab10.check_filter_live(lambda: "    return FilterHeadersStatusValues.Continue;")
