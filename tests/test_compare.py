"""Saved rules vs generated rules, independent of iptables-save's rewriting."""

from __future__ import annotations

from meshlab.intercept import CaptureConfig, build_rules
from meshlab.intercept.compare import differences, saved_rules

CONFIG = CaptureConfig(outbound_ip_ranges_include="*", inbound_ports_include="*", redirect_dns=True, dns_servers_v4=("10.96.0.10",))


def test_the_generators_own_text_has_no_differences():
    assert differences(build_rules(CONFIG).restore_text(4), CONFIG) == []


def test_iptables_save_rewrites_are_ignored():
    saved = "*nat\n:OUTPUT ACCEPT [0:0]\n[3:180] -A ISTIO_REDIRECT -p tcp -m tcp -j REDIRECT --to-ports 15001\nCOMMIT\n"
    given = "*nat\n-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-port 15001\nCOMMIT\n"
    assert saved_rules(saved) == saved_rules(given)


def test_a_missing_and_an_unexpected_rule_are_named():
    text = build_rules(CONFIG).restore_text(4).replace("-A ISTIO_OUTPUT -j ISTIO_REDIRECT\n", "-A ISTIO_OUTPUT -d 10.0.0.0/8 -j ISTIO_REDIRECT\n")
    assert differences(text, CONFIG) == ["nat:ISTIO_OUTPUT: unexpected: -d -j 10.0.0.0/8 ISTIO_REDIRECT; missing: -j ISTIO_REDIRECT"]
