"""Lab 13's checks: the model check names the workload that gets the wrong identity; the live check
refuses a wrong allow-list and passes the solution's (the solution itself runs under nbval)."""

from __future__ import annotations

import pytest

from meshlab.check import CheckFailed, lab13

SERVER, CLIENT = lab13.SERVER, lab13.CLIENT


def entries(server: list[str], client: list[str]):
    return lambda: [{"spiffe_id": SERVER, "selectors": server}, {"spiffe_id": CLIENT, "selectors": client}]


def test_narrow_entries_pass():
    lab13.check_entries(entries(["k8s:ns:shop", "k8s:sa:server", "k8s:container-name:app"], ["k8s:ns:shop", "k8s:sa:client", "unix:uid:0"]))


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (entries(["unix:uid:0"], ["k8s:ns:shop", "k8s:sa:client", "unix:uid:0"]), r"the client pod's app would get \['spiffe://meshlab.test/ns/shop/sa/client', 'spiffe://meshlab.test/ns/shop/sa/server'\]"),
        (entries(["k8s:ns:shop", "k8s:sa:server"], ["k8s:ns:shop", "k8s:sa:client", "unix:uid:0"]), r"the server pod's sidecar \(uid 1337\) would get"),
        (entries(["k8s:pod-label:app:server", "unix:uid:0"], ["k8s:ns:shop", "k8s:sa:client", "unix:uid:0"]), r"a server copy in namespace default"),
        (entries(["k8s:ns:shop", "k8s:sa:server", "unix:uid:1000"], ["k8s:ns:shop", "k8s:sa:client", "unix:uid:0"]), r"the server pod's app gets no identity"),
        (lambda: [{"spiffe_id": SERVER + "/", "selectors": ["unix:uid:0"]}], r"SPIRE would refuse: .*path cannot have a trailing slash"),
    ],
)
def test_each_usual_mistake_is_named(answer, hint):
    with pytest.raises(CheckFailed, match=hint):
        lab13.check_entries(answer)


@pytest.mark.parametrize(("callers", "hint"), [
    (lambda: ["10.244.0.11"], "not a SPIFFE ID .* authorise identities, not addresses"),
    (lambda: [CLIENT, "spiffe://meshlab.test/ns/default/sa/intruder"], "exactly the client's identity"),
    (lambda: [], "must return a list of SPIFFE IDs"),
])
def test_allow_lists_by_address_or_too_wide_are_refused(callers, hint):
    with pytest.raises(CheckFailed, match=hint):
        lab13.check_callers(callers)


def test_an_unanswered_stub_fails():
    def entries():
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="not answered yet"):
        lab13.check_entries(entries)
