"""Checks for lab 13, "Who gets an identity".

The reader writes ``entries()`` (registration entries for the shop's server and client apps) and
``allowed_callers()`` (whom the server accepts). The model check matches the entries against the
selectors the agent finds for each workload of the lab, and names the first workload that gets
the wrong identity. The live check starts a lab with those entries and the agent, runs mutual TLS
between the pods with the real spiffe client, and tries an impersonation.

    MISTAKES       the wrong answers the checks recognise
    WORKLOADS      what the agent finds for each process of the lab, and the identity each should get
    check_entries  exercise 1: the registration entries, on the model
    check_callers  exercise 2's allow-list, on the model
    check_live     exercise 2 live: mutual TLS between the lab's pods, and an impersonation attempt
"""

from __future__ import annotations

import os
from collections.abc import Callable

from meshlab.check import CheckFailed, Mistake, answer_of, require_stage
from meshlab.identity.entries import EntryError, Selector, load_entries
from meshlab.identity.spiffeid import SpiffeIdError, parse_id
from meshlab.viz.text import say

SERVER = "spiffe://meshlab.test/ns/shop/sa/server"
CLIENT = "spiffe://meshlab.test/ns/shop/sa/client"
INTRUDER = "spiffe://meshlab.test/ns/default/sa/intruder"
AGENT = parse_id("spiffe://meshlab.test/spire/agent/join_token/lab13")

REFUSED = Mistake("entries", "an entry SPIRE refuses (e.g. a SPIFFE ID with a trailing slash)", "an entry SPIRE would refuse")
TOO_WIDE = Mistake("entries", "an entry whose selectors another workload also has (unix:uid:0 alone, ns+sa without the container)",
                   "add a selector it does not have (namespace? service account? container?)")
TOO_NARROW = Mistake("entries", "an entry with a selector the workload does not have", "no entry's selectors are all among its own")
TWO_IDENTITIES = Mistake("entries", "entries that give a workload an identity besides its own",
                         "each workload must match its own entry's selectors and no other entry's")
ADDRESSES = Mistake("allowed_callers", "authorises an address or a name instead of a SPIFFE ID", "authorise identities, not addresses or names")
WIDE_ALLOW_LIST = Mistake("allowed_callers", "allows more (or other) identities than the client's",
                          f"the server should accept exactly the client's identity {CLIENT}")
MISTAKES = (REFUSED, TOO_WIDE, TOO_NARROW, TWO_IDENTITIES, ADDRESSES, WIDE_ALLOW_LIST)


def _pod(uid: int, namespace: str, account: str, pod: str, container: str, labels: dict[str, str]) -> frozenset[Selector]:
    values = [f"ns:{namespace}", f"sa:{account}", f"pod-name:{pod}", "node-name:node0", f"container-name:{container}"]
    values += [f"pod-label:{key}:{value}" for key, value in labels.items()]
    return frozenset({Selector("unix", f"uid:{uid}"), *(Selector("k8s", value) for value in values)})


#: What the agent finds for each process of the lab (as chapter 13 showed), and who should get what.
WORKLOADS = {
    "the server pod's app": (_pod(0, "shop", "server", "server", "app", {"app": "server"}), {SERVER}),
    "the server pod's sidecar (uid 1337)": (_pod(1337, "shop", "server", "server", "istio-proxy", {"app": "server"}), set()),
    "the client pod's app": (_pod(0, "shop", "client", "client", "app", {"app": "client"}), {CLIENT}),
    "the intruder pod's app (uid 0, namespace default)": (_pod(0, "default", "default", "intruder", "app", {}), set()),
    "a server copy in namespace default with the server's label": (_pod(0, "default", "server", "copy", "app", {"app": "server"}), set()),
    "a root process on the node, outside any pod": (frozenset({Selector("unix", "uid:0")}), set()),
}


def _entries(entries: Callable[[], list]) -> list:
    items = answer_of(entries)
    try:
        loaded = load_entries(items if isinstance(items, list) else [items], AGENT)
    except EntryError as error:
        raise CheckFailed(f"entries() returned {REFUSED.hint}: {error}") from None
    return loaded


def check_entries(entries: Callable[[], list]) -> None:
    """Every workload gets exactly its intended identity (the server's app the server's, the
    client's app the client's) and every other workload none."""
    loaded = _entries(entries)
    for name, (selectors, expected) in WORKLOADS.items():
        granted = {str(entry.spiffe_id) for entry in loaded if entry.matches(selectors)}
        if granted == expected:
            continue
        if not expected:
            culprit = next(entry for entry in loaded if entry.matches(selectors))
            raise CheckFailed(f"{name} would get {sorted(granted)}: the entry {sorted(map(str, culprit.selectors))} selects it too. "
                              f"Its selectors are {sorted(map(str, selectors))}; {TOO_WIDE.hint}")
        if not granted:
            raise CheckFailed(f"{name} gets no identity: {TOO_NARROW.hint} {sorted(map(str, selectors))}")
        raise CheckFailed(f"{name} would get {sorted(granted)}, not {sorted(expected)}: {TWO_IDENTITIES.hint}")


def check_callers(allowed_callers: Callable[[], list]) -> list[str]:
    callers = answer_of(allowed_callers)
    if not isinstance(callers, (list, tuple, set)) or not callers:
        raise CheckFailed("allowed_callers() must return a list of SPIFFE IDs, e.g. ['spiffe://meshlab.test/ns/...']")
    for caller in callers:
        try:
            parse_id(str(caller))
        except SpiffeIdError as error:
            raise CheckFailed(f"{caller!r} is not a SPIFFE ID ({error}): {ADDRESSES.hint}") from None
    if set(callers) != {CLIENT}:
        raise CheckFailed(f"{WIDE_ALLOW_LIST.hint}, not {sorted(callers)}")
    return list(callers)


def check_live(entries: Callable[[], list], allowed_callers: Callable[[], list]) -> None:
    """In a live lab with the agent: the client reaches the server over mTLS with both IDs proven;
    a workload with another identity is refused by the server; the intruder cannot get the server's
    identity by asking for it."""
    require_stage("live")
    from meshlab.lab.identity import IdentityLab
    from meshlab.lab import PodSpec

    check_entries(entries)
    callers = check_callers(allowed_callers)
    items = [dict(item) for item in answer_of(entries)]
    if os.geteuid() != 0:  # a lab without root runs its pods as your uid, which the agent sees
        for item in items:
            item["selectors"] = [f"unix:uid:{os.geteuid()}" if s == "unix:uid:0" else s for s in item["selectors"]]
    items.append({"spiffe_id": INTRUDER, "selectors": ["k8s:pod-name:intruder"]})  # the intruder has an identity of its own
    pods = [PodSpec("server", k8s_namespace="shop", service_account="server", labels={"app": "server"}),
            PodSpec("client", k8s_namespace="shop", service_account="client", labels={"app": "client"}), PodSpec("intruder")]
    with IdentityLab("ml13c", pods, items) as lab:
        server = lab.serve("server", allow=callers, connections=2)
        ok = lab.call("client", "server", expect=SERVER)
        other = lab.call("intruder", "server", expect=SERVER)
        impersonation = lab.fetch_jwt("intruder", "shop", subject=SERVER)
        server.communicate(timeout=30)
    if not ok["allowed"] or (ok["me"], ok["peer"]) != (CLIENT, SERVER):
        raise CheckFailed(f"the client's call failed: {ok}")
    if other["me"] != INTRUDER or other["allowed"]:
        raise CheckFailed(f"the intruder's call should reach the server as {INTRUDER} and be refused: {other}")
    if impersonation["spiffe_id"] is not None:
        raise CheckFailed(f"the intruder obtained {impersonation['spiffe_id']} by asking for it")
    say("client -> server", f"allowed, proven {ok['me']} -> {ok['peer']}")
    say("intruder -> server", f"refused by the server ({other['reply']['reason']})")
    say("intruder asking the agent for the server's JWT-SVID", impersonation["refused"])
