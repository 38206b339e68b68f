"""A rootless lab's rules: Istio's, with the proxy's uid/gid matches turned into mark matches.

Checked against the packet walk: for every connection the proxy or the app can open, the rewritten
rules with the proxy's *mark* must reach the same chains and verdict as Istio's rules with the
proxy's *uid and gid*, and only the owner matches may change."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from meshlab.intercept import CaptureConfig, build_rules
from meshlab.intercept.walk import Connection, walk
from meshlab.lab.rootless import PROXY_MARK, owner_as_mark

POD, PEER = "10.244.0.10", "10.244.0.11"
CAPTURE = CaptureConfig(outbound_ip_ranges_include="*", inbound_ports_include="*")


def mark_and_owner(connection: Connection, proxy: bool) -> tuple[Connection, Connection]:
    """The same connection as Istio sees it (socket owner) and as the rootless rules do (mark)."""
    owner = replace(connection, uid=1337, gids=(1337,)) if proxy else replace(connection, uid=0, gids=(0,))
    marked = replace(connection, uid=0, gids=(0,), mark=PROXY_MARK if proxy else 0)
    return owner, marked


CONNECTIONS = {
    "app to another pod": (Connection("OUTPUT", POD, PEER, 8080, out_interface="eth0"), False),
    "proxy to another pod": (Connection("OUTPUT", POD, PEER, 8080, out_interface="eth0"), True),
    "proxy to its own app from 127.0.0.6": (Connection("OUTPUT", "127.0.0.6", POD, 8080, out_interface="lo"), True),
    "proxy to its own pod IP over lo": (Connection("OUTPUT", POD, POD, 8080, out_interface="lo"), True),
    "app to its own pod IP over lo": (Connection("OUTPUT", POD, POD, 8080, out_interface="lo"), False),
    "app to localhost": (Connection("OUTPUT", "127.0.0.1", "127.0.0.1", 8080, out_interface="lo"), False),
    "proxy to a service address": (Connection("OUTPUT", POD, "10.96.0.10", 80, out_interface="eth0"), True),
}


@pytest.mark.parametrize("config", [CAPTURE, replace(CAPTURE, proxy_uid="1337,1338", proxy_gid="1337"),
                                    replace(CAPTURE, outbound_ports_exclude="9090", inbound_ports_exclude="15090")], ids=["default", "two-uids", "exclusions"])
@pytest.mark.parametrize("name", CONNECTIONS)
def test_marks_take_the_same_path_as_owners(config, name):
    connection, proxy = CONNECTIONS[name]
    istio = build_rules(config).restore_text(4)
    rootless = owner_as_mark(istio, config.proxy_uid.split(","), config.proxy_gid.split(","))
    owner, marked = mark_and_owner(connection, proxy)
    expected, actual = walk(istio, owner), walk(rootless, marked)
    assert (actual.chains, actual.verdict, actual.to_port) == (expected.chains, expected.verdict, expected.to_port)


def test_only_owner_matches_change_and_negations_stay():
    istio = build_rules(CAPTURE).restore_text(4)
    rootless = owner_as_mark(istio, ["1337"], ["1337"])
    assert "--uid-owner" not in rootless and "--gid-owner" not in rootless
    changed = [(a, b) for a, b in zip(istio.splitlines(), rootless.splitlines(), strict=True) if a != b]
    assert len(changed) == 6
    for before, after in changed:
        assert re.sub(r"-m owner (! )?--[ug]id-owner 1337", r"-m mark \g<1>--mark 0x539", before) == after
    assert "-A ISTIO_OUTPUT -o lo -m mark ! --mark 0x539 -j RETURN" in rootless


def test_other_uids_are_left_alone():
    text = "-A OUTPUT -m owner --uid-owner 13370 -j RETURN\n-A OUTPUT -m owner --uid-owner 1337 -j RETURN"
    assert owner_as_mark(text, ["1337"], []) == "-A OUTPUT -m owner --uid-owner 13370 -j RETURN\n-A OUTPUT -m mark --mark 0x539 -j RETURN"
