"""Checks for lab 05, "Diagnosing a NACK".

meshlab's control plane serves gRPC's own xDS client (grpcio, in its own process) a good
configuration, then a bad resource. The client rejects it with a NACK: a DiscoveryRequest that
repeats the rejected response's nonce, carries the last version it accepted for that type in
``version_info``, and says what was wrong in ``error_detail``. The reader writes ``diagnose`` to read
that from the exchange (requests and responses as they crossed the wire, without meshlab's labels),
and a fix whose next response gRPC ACKs. Each check compares with what the real exchange recorded.

    MISTAKES        the wrong answers the checks recognise
    Incident        one recorded exchange: the wire view of requests and responses, the calls made
    incident        run one: good configuration, a client calling, the bad change, and a fix if given
    bad_route       the lab's bad change: a RouteConfiguration whose weighted clusters all weigh 0
    static_cluster  a second bad change (a Cluster of type STATIC), for diagnose() to generalise
    truth           what the control plane recorded about the first NACK after the change
    check_diagnosis the reader's diagnose() against the truth of two real incidents
    check_fix       the reader's fix, served after the bad route: ACKed, and every call reaches v1
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from meshlab.check import CheckFailed, Mistake, answer_of
from meshlab.xds.resources import TYPE_URLS, Service

TARGET = "greeter"
GOOD = {"v1": 75, "v2": 25}
CALLS = 200  # one every 10 ms: most of them after the change, whose exchange takes tens of ms
#: gRPC's words for one rejected resource: "resource index 0: greeter: INVALID_ARGUMENT: errors
#: validating RouteConfiguration resource: [field:virtual_hosts[0]... error:no valid clusters specified]"
#: (grpc/grpc src/core/xds/xds_client/xds_client.cc joins them into "xDS response validation errors: [...]").
REJECTED = re.compile(r"resource index \d+: ([^:\s]+): ")
FIELD = re.compile(r"field:(\S+) error:")
ANSWER_KEYS = ("type", "resources", "fields", "rejected_version", "version_kept", "nonce")

WRONG_TYPE = Mistake("diagnose", "names another type than the NACK's",
                     "the request that carries error_detail is the NACK, and its type_url says which type it rejects")
NONCE_FOR_VERSION = Mistake("diagnose", "swaps the nonce and the version",
                            "you confused the nonce with the version: response_nonce names which response is answered; "
                            "version_info names a configuration")
REJECTED_AS_KEPT = Mistake("diagnose", "version_kept: gives the rejected version",
                           "a NACK's version_info is the last version of this type it accepted, and it stays on that")
WRONG_NONCE = Mistake("diagnose", "gives another response's nonce", "the NACK repeats the nonce of the response it rejects")
#: The hints for the remaining keys, each read from the NACK or the response it rejects.
KEY_MISTAKES = {
    "resources": Mistake("diagnose", "names the wrong rejected resources",
                         "the error_detail names each rejected resource: 'resource index N: NAME: ...'"),
    "fields": Mistake("diagnose", "names the wrong rejected fields", "each rejected resource's error says 'field:PATH error:...'"),
    "rejected_version": Mistake("diagnose", "rejected_version: not the version of the response the NACK answers",
                                "the rejected response is the one whose nonce the NACK repeats; take its version_info"),
    "version_kept": Mistake("diagnose", "version_kept: not the NACK's own version_info", "the NACK's own version_info"),
}
WRONG_NAME = Mistake("fix", "serves the fix under another name than the route the client asks for",
                     f"the client asks for RouteConfiguration {TARGET!r}, so only that name fixes it")
NACKED_FIX = Mistake("fix", "serves a route gRPC rejects too (all weights 0)", "gRPC NACKed your route too")
NOT_DRAINED = Mistake("fix", "serves a route that does not send everything to v1", "to drain v2, all the weight goes to v1")
MISTAKES = (WRONG_TYPE, NONCE_FOR_VERSION, REJECTED_AS_KEPT, WRONG_NONCE, *KEY_MISTAKES.values(), WRONG_NAME, NACKED_FIX, NOT_DRAINED)


@dataclass(frozen=True)
class Incident:
    requests: list[dict]  # DiscoveryRequests after the change, as gRPC sent them
    responses: list[dict]  # DiscoveryResponses after the change, as the control plane sent them
    records: list[dict]  # the control plane's own records (with its ACK/NACK/stale labels)
    calls: Counter  # which backend answered the calls made after the client had answered the change
    after_fix: Counter  # calls by a fresh client once the fix was ACKed (empty without a fix, or if it was NACKed)
    fix_mark: int  # index in ``records`` where the fix was served (len(records) without a fix)


def _wire(record: dict) -> dict:
    """A record as the message that crossed the wire: the proto's field names, no labels."""
    if record["direction"] == "response":
        return {"type_url": TYPE_URLS[record["type"]], "version_info": record["version"], "nonce": record["nonce"], "resources": record["resources"]}
    request = {"type_url": TYPE_URLS.get(record["type"], record["type"]), "version_info": record["version"], "response_nonce": record["nonce"],
               "resource_names": record["resources"]}
    if "error" in record:
        request["error_detail"] = {"message": record["error"]}
    return request


def bad_route(greeter) -> Service:
    """Both weights 0: meant as "drain v2", a slip of the script drained v1 too."""
    return greeter.service(TARGET, {"v1": 0, "v2": 0})


def static_cluster(greeter) -> Service:
    """The same split, with clusters of type STATIC (an Envoy habit): gRPC accepts only EDS here."""
    return greeter.service(TARGET, GOOD, cluster_type="STATIC")


def incident(change: Callable = bad_route, fix: Callable | None = None) -> Incident:
    """A control plane and backends v1, v2 on loopback; a client process (gRPC's xDS client) calling
    ``xds:///greeter`` on the good 75/25 route; then ``change(greeter)`` served; then ``fix(greeter)``
    if given, and a fresh client's calls once it is answered. Everything is stopped before returning."""
    from meshlab.xds.harness import Greeter, collect, run_clients

    greeter, client = Greeter(), None
    try:
        plane = greeter.control_plane
        plane.set_service(greeter.service(TARGET, GOOD))
        started = time.monotonic()  # before the client's own clock starts: its later t_ms are after ours
        (client,) = run_clients(greeter.bootstrap, [TARGET], CALLS, interval_ms=10, wait=False)
        plane.wait_for_clients(1)
        plane.wait_settled()
        mark = len(plane.exchanges)
        plane.set_service(change(greeter))
        plane.wait_settled()
        answered_ms = (time.monotonic() - started) * 1000
        fix_mark, after_fix = len(plane.exchanges), Counter()
        if fix is not None:
            plane.set_service(fix(greeter))
            plane.wait_settled()
            # a fresh client calls only if the fix was accepted: refused, it leaves a new client nothing to call
            if not any(record["kind"].startswith("NACK") for record in plane.exchanges[fix_mark:]):
                (fresh,) = run_clients(greeter.bootstrap, [TARGET], 100)
                after_fix = Counter(call.get("backend") or call.get("error") for call in fresh)
        (calls,) = collect([client])
        records = plane.exchanges
    finally:
        if client is not None and client.poll() is None:  # stopped half-way: its calls would wait for a control plane that is gone
            client.kill()
            client.wait()
        greeter.close()
    wire = [(record["direction"], _wire(record)) for record in records[mark:fix_mark]]
    after = Counter(call.get("backend") or call.get("error") for call in calls if call["t_ms"] > answered_ms)
    return Incident([m for d, m in wire if d == "request"], [m for d, m in wire if d == "response"], records[mark:], after, after_fix, fix_mark - mark)


def truth(records: list[dict]) -> dict:
    """The first NACK after the change, as the control plane recorded it, and the response it rejects."""
    nack = next((r for r in records if r["kind"].startswith("NACK")), None)
    if nack is None:
        raise CheckFailed("the client sent no NACK after the change: the exchange has nothing to diagnose")
    rejected = next(r for r in records if r["direction"] == "response" and r["nonce"] == nack["nonce"])
    return {"type": nack["type"], "resources": sorted(set(REJECTED.findall(nack["error"]))), "fields": sorted(set(FIELD.findall(nack["error"]))),
            "rejected_version": rejected["version"], "version_kept": nack["version"], "nonce": nack["nonce"]}


def _compare(answer: dict, expected: dict, incident_name: str) -> None:
    if not isinstance(answer, dict) or set(ANSWER_KEYS) - set(answer):
        raise CheckFailed(f"diagnose() must return a dict with the keys {', '.join(ANSWER_KEYS)}")
    answer = {key: sorted(answer[key]) if key in ("resources", "fields") and isinstance(answer[key], (list, tuple, set)) else answer[key]
              for key in ANSWER_KEYS}
    answer = {key: str(value) if key in ("rejected_version", "version_kept", "nonce") else value for key, value in answer.items()}
    where = f"for the {incident_name}"
    if answer["type"] != expected["type"]:
        raise CheckFailed(f"{where}: type {answer['type']!r}, but the NACK is for {expected['type']}: {WRONG_TYPE.hint}")
    swapped = answer["version_kept"] == expected["nonce"] or answer["nonce"] == expected["version_kept"]
    if swapped and expected["nonce"] != expected["version_kept"]:
        raise CheckFailed(f"{where}: {NONCE_FOR_VERSION.hint} (the nonce here is {expected['nonce']})")
    if answer["version_kept"] == expected["rejected_version"] != expected["version_kept"]:
        raise CheckFailed(f"{where}: version_kept {answer['version_kept']!r} is the version the client rejected; {REJECTED_AS_KEPT.hint}")
    if answer["nonce"] != expected["nonce"]:
        raise CheckFailed(f"{where}: nonce {answer['nonce']!r}; {WRONG_NONCE.hint} ({expected['nonce']})")
    for key in ("rejected_version", "version_kept", "resources", "fields"):
        if answer[key] != expected[key]:
            raise CheckFailed(f"{where}: {key} {answer[key]!r}, expected {expected[key]!r}: {KEY_MISTAKES[key].hint}")


def check_diagnosis(diagnose: Callable[[list, list], dict], lab_incident: Incident) -> None:
    """The reader's diagnosis of the lab's incident, then of a second real incident (a STATIC
    cluster), each against what the control plane recorded: it must read the exchange, not this run."""
    _compare(answer_of(diagnose, lab_incident.requests, lab_incident.responses), truth(lab_incident.records), "bad route")
    other = incident(static_cluster)
    _compare(answer_of(diagnose, other.requests, other.responses), truth(other.records), "second incident (a STATIC cluster)")


def check_fix(fix: Callable) -> Incident:
    """Serve the bad route, then ``fix(greeter)``: gRPC must ACK the fix's RouteConfiguration with its
    version, and a fresh client's calls must all reach v1 (what the operator meant: drain v2)."""

    def served(greeter) -> Service:
        service = answer_of(fix, greeter)
        if not isinstance(service, Service):
            raise CheckFailed(f"fix(greeter) must return a Service (greeter.service(...)), not {type(service).__name__}")
        if service.name != TARGET:
            raise CheckFailed(f"your Service is named {service.name!r}; {WRONG_NAME.hint}")
        return service

    result = incident(bad_route, served)
    fixed = result.records[result.fix_mark:]
    response = next((r for r in fixed if r["direction"] == "response" and r["type"] == "RDS"), None)
    if response is None:
        raise CheckFailed("serving your fix sent no RouteConfiguration: did it change the route?")
    answer = next(r for r in fixed if r["direction"] == "request" and r["nonce"] == response["nonce"])
    if "error" in answer:
        raise CheckFailed(f"{NACKED_FIX.hint} (version {answer['version']} kept): {answer['error']}")
    if answer["version"] != response["version"]:
        raise CheckFailed(f"the client answered version {answer['version']}, not your fix's {response['version']}")
    if set(result.after_fix) != {"v1"}:
        raise CheckFailed(f"gRPC ACKed your route, but calls went to {dict(result.after_fix)}: {NOT_DRAINED.hint}")
    return result
