"""Lab 05's checks, on real exchanges between meshlab's control plane and gRPC's own xDS client:
the diagnosis of a NACK and the fix, each passing on the solution and naming the usual mistakes."""

from __future__ import annotations

import re

import pytest

from meshlab.check import CheckFailed, lab05
from meshlab.xds.resources import SHORT


def diagnose(requests, responses):
    nack = next(request for request in requests if "error_detail" in request)
    message = nack["error_detail"]["message"]
    rejected = next(response for response in responses if response["nonce"] == nack["response_nonce"])
    return {"type": SHORT[nack["type_url"]], "resources": sorted(set(re.findall(r"resource index \d+: ([^:\s]+): ", message))),
            "fields": sorted(set(re.findall(r"field:(\S+) error:", message))), "rejected_version": rejected["version_info"],
            "version_kept": nack["version_info"], "nonce": nack["response_nonce"]}


@pytest.fixture(scope="module")
def incident():
    return lab05.incident()


def test_the_bad_route_is_nacked_and_the_client_keeps_its_route(incident):
    seen = lab05.truth(incident.records)
    assert seen["type"] == "RDS" and seen["resources"] == ["greeter"]
    assert seen["fields"] == ["virtual_hosts[0].routes[0].route.weighted_clusters"]
    assert int(seen["version_kept"]) == int(seen["rejected_version"]) - 1
    assert set(incident.calls) == {"v1", "v2"}, "after the NACK the client still splits calls by its last good route"
    assert all("kind" not in message for message in incident.requests + incident.responses), "the wire view carries no labels"


def test_the_solution_diagnoses_both_incidents(incident):
    lab05.check_diagnosis(diagnose, incident)


def tweaked(**changes):
    """The solution's diagnosis with some answers replaced by functions of the right ones."""
    def answer(requests, responses):
        right = diagnose(requests, responses)
        return {**right, **{key: change(right) for key, change in changes.items()}}
    return answer


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (tweaked(version_kept=lambda a: a["rejected_version"]), "is the version the client rejected"),
        (tweaked(version_kept=lambda a: a["nonce"], nonce=lambda a: a["version_kept"]), "you confused the nonce with the version"),
        (tweaked(nonce=lambda a: str(int(a["nonce"]) + 2)), "the NACK repeats the nonce of the response it rejects"),
        (tweaked(type=lambda a: "LDS"), "the request that carries error_detail is the NACK"),
        (tweaked(resources=lambda a: ["greeter-v1", "greeter-v2"]), "the error_detail names each rejected resource"),
        (tweaked(fields=lambda a: []), "field:PATH error:"),
        (lambda requests, responses: {"type": "RDS"}, "must return a dict with the keys"),
    ],
)
def test_wrong_diagnoses_name_the_mistake(incident, wrong, hint):
    with pytest.raises(CheckFailed, match=hint):
        lab05.check_diagnosis(wrong, incident)


def test_an_answer_copied_from_this_run_fails_on_the_second_incident(incident):
    copied = diagnose(incident.requests, incident.responses)
    with pytest.raises(CheckFailed, match=r"for the second incident \(a STATIC cluster\): type 'RDS', but the NACK is for CDS"):
        lab05.check_diagnosis(lambda requests, responses: copied, incident)


def test_the_solutions_fix_is_acked_and_drains_v2():
    result = lab05.check_fix(lambda greeter: greeter.service("greeter", {"v1": 100}))
    assert result.after_fix == {"v1": 100}


@pytest.mark.parametrize(
    ("fix", "hint"),
    [
        (lambda greeter: greeter.service("greeter", {"v1": 0, "v2": 0}), "gRPC NACKed your route too .*no valid clusters specified"),
        (lambda greeter: greeter.service("greeter", {"v1": 0, "v2": 100}), r"calls went to \{'v2': 100\}: to drain v2"),
        (lambda greeter: greeter.service("greeter-v1", {"v1": 100}), "the client asks for RouteConfiguration 'greeter'"),
        (lambda greeter: {"v1": 100}, "must return a Service"),
    ],
)
def test_wrong_fixes_name_the_mistake(fix, hint):
    with pytest.raises(CheckFailed, match=hint):
        lab05.check_fix(fix)
