"""The packet walk on the model stage: Istio's semantics, read off rules rather than hard-coded."""

from __future__ import annotations

import re

import pytest

from meshlab.intercept import CaptureConfig, build_rules
from meshlab.intercept.walk import Connection, parse_rules, walk

CAPTURE_ALL = CaptureConfig(outbound_ip_ranges_include="*", inbound_ports_include="*", inbound_ports_exclude="15020")


def rules(config: CaptureConfig = CAPTURE_ALL) -> str:
    return build_rules(config).restore_text(4)


def app(destination: str, dport: int, out: str = "eth0", source: str = "10.244.0.11", uid: int = 0) -> Connection:
    return Connection("OUTPUT", source, destination, dport, out_interface=out, uid=uid, gids=(uid,))


@pytest.mark.parametrize(
    ("connection", "verdict", "port", "last_chain"),
    [
        (app("10.96.0.10", 80), "REDIRECT", 15001, "ISTIO_REDIRECT"),
        (app("10.96.0.10", 80, uid=1337), "ACCEPT", None, "OUTPUT"),
        (app("127.0.0.1", 8080, out="lo"), "ACCEPT", None, "OUTPUT"),
        (app("10.244.0.11", 8080, out="lo", uid=1337), "REDIRECT", 15006, "ISTIO_IN_REDIRECT"),
        (app("10.244.0.11", 15008, out="lo", uid=1337), "ACCEPT", None, "OUTPUT"),
        (Connection("PREROUTING", "10.244.0.12", "10.244.0.11", 8080, in_interface="eth0"), "REDIRECT", 15006, "ISTIO_IN_REDIRECT"),
        (Connection("PREROUTING", "10.244.0.12", "10.244.0.11", 15020, in_interface="eth0"), "ACCEPT", None, "PREROUTING"),
        (Connection("PREROUTING", "10.244.0.12", "10.244.0.11", 15008, in_interface="eth0"), "ACCEPT", None, "PREROUTING"),
    ],
    ids=["app to a VIP", "proxy's own traffic", "app to localhost", "proxy to its own pod IP", "tunnel port", "inbound", "excluded inbound port", "inbound tunnel port"],
)
def test_walk_follows_istios_rules(connection, verdict, port, last_chain):
    result = walk(rules(), connection)
    assert (result.verdict, result.to_port, result.steps[-1].chain) == (verdict, port, last_chain)


def test_the_proxy_returns_at_the_uid_rule_before_any_capture():
    result = walk(rules(), app("10.96.0.10", 80, uid=1337))
    assert [step.rule for step in result.steps] == ["-A OUTPUT -j ISTIO_OUTPUT", "-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN", ""]
    assert result.steps[-1].effect == "policy:ACCEPT"


def test_nothing_is_captured_with_the_default_configuration():
    """Istio's default (the 'empty' case) installs chains but captures nothing."""
    assert walk(rules(CaptureConfig()), app("10.96.0.10", 80)).verdict == "ACCEPT"
    inbound = Connection("PREROUTING", "10.244.0.12", "10.244.0.11", 8080, in_interface="eth0")
    assert walk(rules(CaptureConfig()), inbound).verdict == "ACCEPT"


def test_tproxy_mode_diverts_inbound_in_mangle():
    config = CaptureConfig(inbound_ports_include="*", inbound_interception_mode="TPROXY")
    result = walk(rules(config), Connection("PREROUTING", "10.244.0.12", "10.244.0.11", 8080, in_interface="eth0"))
    assert (result.verdict, result.to_port) == ("TPROXY", 15006)
    assert result.chains == ["mangle:PREROUTING", "mangle:ISTIO_INBOUND", "mangle:ISTIO_TPROXY"]


def test_gid_owner_matches_the_proxy_group_too():
    result = walk(rules(), Connection("OUTPUT", "10.244.0.11", "10.96.0.10", 80, out_interface="eth0", uid=2000, gids=(1337,)))
    assert result.verdict == "ACCEPT"
    assert result.steps[-2].rule == "-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN"


def test_marks_set_by_earlier_rules_are_seen_by_later_ones():
    text = "*mangle\n-A OUTPUT -j MARK --set-mark 7\n-A OUTPUT -m mark --mark 7 -j DROP\nCOMMIT\n"
    assert walk(text, app("10.0.0.1", 80)).verdict == "DROP"


def test_insertions_go_where_the_kernel_puts_them():
    parsed = parse_rules("*nat\n-A PREROUTING -j A\n-I PREROUTING 1 -j B\n-I PREROUTING 2 -j C\nCOMMIT\n")
    assert parsed["nat"]["PREROUTING"] == [["-j", "B"], ["-j", "C"], ["-j", "A"]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-A OUTPUT -j RETURN\n", "line 1: rule '-A OUTPUT -j RETURN' before any '* table' line"),
        ("*nat\n-Z OUTPUT\n", "line 2: cannot read '-Z OUTPUT'"),
    ],
)
def test_unreadable_rules_are_named(text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_rules(text)


def test_unknown_matches_are_refused_rather_than_guessed():
    with pytest.raises(ValueError, match="the walk does not know the match '--string'"):
        walk("*nat\n-A OUTPUT -m string --string x -j RETURN\nCOMMIT\n", app("10.0.0.1", 80))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hook": "INPUT"}, "hook 'INPUT' is not one of OUTPUT, PREROUTING"),
        ({"protocol": "sctp"}, "protocol 'sctp' is not tcp or udp"),
        ({"destination": "ten"}, "destination 'ten' is not an IP address"),
        ({"in_interface": "eth0"}, "OUTPUT packets have only an out_interface"),
    ],
)
def test_bad_connections_are_named(kwargs, message):
    base = {"hook": "OUTPUT", "source": "10.0.0.1", "destination": "10.0.0.2", "dport": 80}
    with pytest.raises(ValueError, match=message):
        Connection(**{**base, **kwargs})
