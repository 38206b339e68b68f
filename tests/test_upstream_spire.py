"""SPIRE's own server and agent (v1.13.3, built by the upstream stage) beside meshlab's: the same
registration entries, the same caller (this test process, attested by the kernel's SO_PEERCRED and
/proc), and the real ``spiffe`` client asking each agent's Workload API. Both must issue the same
SPIFFE IDs, and both must refuse a caller no entry selects."""

from __future__ import annotations

import grp
import os
import re
import sys
import time

import pytest
from spiffe import WorkloadApiClient
from spiffe.workloadapi.errors import FetchX509SvidError
from upstream_programs import program_path

from meshlab.identity.agent import AgentThread, attested_agent
from meshlab.identity.spiffeid import TrustDomain
from meshlab.upstream.spire import Spire

pytestmark = pytest.mark.upstream

TD = "meshlab.test"
ME = {"uid": str(os.getuid()), "gid": str(os.getgid()), "group": grp.getgrgid(os.getgid()).gr_name, "path": os.path.realpath(sys.executable)}
#: (entries as selector lists -> SPIFFE ID): which of them select this process decides the answer.
CASES = {
    "one entry by uid": [(f"spiffe://{TD}/ns/default/sa/web", [f"unix:uid:{ME['uid']}"])],
    "uid and gid both required": [(f"spiffe://{TD}/ns/default/sa/web", [f"unix:uid:{ME['uid']}", f"unix:gid:{ME['gid']}"])],
    "by group name": [(f"spiffe://{TD}/payments", [f"unix:group:{ME['group']}"])],
    # SPIRE's unix attestor gives path (and sha256) selectors only with discover_workload_path, which is off
    "by binary path, which neither agent attests by default": [(f"spiffe://{TD}/payments", [f"unix:path:{ME['path']}"])],
    "two identities for one caller": [(f"spiffe://{TD}/a", [f"unix:uid:{ME['uid']}"]), (f"spiffe://{TD}/b", [f"unix:gid:{ME['gid']}"])],
    "another uid's entry only": [(f"spiffe://{TD}/ns/default/sa/web", ["unix:uid:64999"])],
    "uid right, gid wrong": [(f"spiffe://{TD}/ns/default/sa/web", [f"unix:uid:{ME['uid']}", "unix:gid:64999"])],
}


def meshlab_agent(folder, entries: list[dict], discover_workload_path: bool = False) -> AgentThread:
    return AgentThread(attested_agent(TrustDomain(TD), folder / "agent.sock", entries, discover_workload_path=discover_workload_path)).start()


#: SPIRE's agent fetches new entries from its server every 5 s (its sync interval); a little more.
SYNC_S = 6.0


def fetched(socket_path) -> set[str]:
    """The SPIFFE IDs the agent gives this process now (none when it refuses)."""
    try:
        with WorkloadApiClient(f"unix://{socket_path}") as client:
            return {str(svid.spiffe_id) for svid in client.fetch_x509_svids()}
    except FetchX509SvidError:
        return set()


def settled(socket_path, ours: set[str], expected: set[str], timeout: float) -> set[str]:
    """Of ``ours``, what the agent issues once its entries had time to arrive: polled until it shows
    ``expected`` (or ``timeout``), then read again a sync later, so nothing arriving late is missed."""
    deadline = time.monotonic() + timeout
    while fetched(socket_path) & ours != expected and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(SYNC_S)
    return fetched(socket_path) & ours


@pytest.fixture(scope="module")
def spire(tmp_path_factory):
    with Spire(program_path("spire-server"), program_path("spire-agent"), tmp_path_factory.mktemp("spire")) as spire:
        yield spire


@pytest.mark.parametrize("case", sorted(CASES))
def test_spire_and_meshlab_issue_the_same_identities_for_the_same_entries(spire, case, tmp_path):
    entries = CASES[case]
    # every entry under a path of its own, so the cases of this module do not see each other's
    ids = [(f"{spiffe_id}/{re.sub('[^a-z0-9]+', '-', case)}", selectors) for spiffe_id, selectors in entries]
    for spiffe_id, selectors in ids:
        spire.create_entry(spiffe_id, selectors)
    expected = {spiffe_id for spiffe_id, selectors in ids if all(_selects(s) for s in selectors)}
    names = {spiffe_id for spiffe_id, _ in ids}
    real = settled(spire.workload_socket, names, expected, timeout=4 * SYNC_S)
    ours = meshlab_agent(tmp_path, [{"spiffe_id": spiffe_id, "selectors": selectors, "ttl": 3600} for spiffe_id, selectors in ids])
    try:
        mine = fetched(ours.agent.socket_path) & names
    finally:
        ours.stop()
    assert real == mine == expected


def _selects(selector: str) -> bool:
    kind, value = selector.split(":", 2)[1:]
    return kind != "path" and ME.get(kind) == value


def test_with_workload_path_discovery_on_both_agents_the_binary_selects(tmp_path_factory, tmp_path):
    spiffe_id, selectors = f"spiffe://{TD}/by-path", [f"unix:path:{ME['path']}"]
    with Spire(program_path("spire-server"), program_path("spire-agent"), tmp_path_factory.mktemp("spire-path"),
               discover_workload_path=True) as spire:
        spire.create_entry(spiffe_id, selectors)
        real = settled(spire.workload_socket, {spiffe_id}, {spiffe_id}, timeout=4 * SYNC_S)
    ours = meshlab_agent(tmp_path, [{"spiffe_id": spiffe_id, "selectors": selectors, "ttl": 3600}], discover_workload_path=True)
    try:
        mine = fetched(ours.agent.socket_path)
    finally:
        ours.stop()
    assert real == mine == {spiffe_id}
