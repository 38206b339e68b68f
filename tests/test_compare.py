"""The rule comparison tells apart what iptables tells apart, and joins only what iptables-save rewrites.

Every pair in tests/rule_pairs.py is one rule written two ways and whether iptables holds them as the
same rule. Here the comparison is checked against that verdict; tests/live/test_compare_kernel.py asks
the real kernel (``iptables -C``) for the same verdict, so the table itself is not taken on trust."""

from __future__ import annotations

import json
import re

import pytest

from meshlab.cli import main
from meshlab.intercept import CaptureConfig, build_rules
from meshlab.intercept.compare import Difference, RuleTextError, compare, parse_rule
from rule_pairs import PAIRS, one_rule

@pytest.mark.parametrize(("why", "given", "other", "same", "table"), PAIRS, ids=[p[0] for p in PAIRS])
def test_the_comparison_joins_only_what_iptables_joins(why, given, other, same, table):
    found = compare(one_rule(table, given), one_rule(table, other))
    assert (found == []) == same, f"{why}: {found}"


def test_rules_in_another_order_differ_at_each_position():
    rules = "*nat\n-N ISTIO_OUTPUT\n-A ISTIO_OUTPUT -d 10.0.0.0/8 -j RETURN\n-A ISTIO_OUTPUT -j ISTIO_REDIRECT\nCOMMIT\n"
    swapped = "*nat\n-N ISTIO_OUTPUT\n-A ISTIO_OUTPUT -j ISTIO_REDIRECT\n-A ISTIO_OUTPUT -d 10.0.0.0/8 -j RETURN\nCOMMIT\n"
    assert [(d.chain, d.position) for d in compare(rules, swapped)] == [("ISTIO_OUTPUT", 1), ("ISTIO_OUTPUT", 2)]


def test_an_insertion_takes_its_place_as_iptables_save_lists_it():
    inserted = "*nat\n-N ISTIO_INBOUND\n-A ISTIO_INBOUND -p tcp -j RETURN\n-I ISTIO_INBOUND 1 -p udp -j RETURN\nCOMMIT\n"
    saved = "*nat\n:ISTIO_INBOUND - [0:0]\n[4:240] -A ISTIO_INBOUND -p udp -j RETURN\n[0:0] -A ISTIO_INBOUND -p tcp -j RETURN\nCOMMIT\n"
    assert compare(inserted, saved) == []


def test_a_missing_and_an_unexpected_rule_are_named_with_their_place():
    config = CaptureConfig(outbound_ip_ranges_include="*", inbound_ports_include="*")
    expected = build_rules(config).restore_text(4)
    found = expected.replace("-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN\n", "")
    position = [line for line in expected.splitlines() if line.startswith("-A ISTIO_OUTPUT")].index("-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN") + 1
    assert compare(expected, found) == [Difference("nat", "ISTIO_OUTPUT", position, "-d 127.0.0.1/32 -j RETURN", None)]
    assert [str(d) for d in compare(found, expected)] == [f"nat:ISTIO_OUTPUT rule {position}: unexpected: -d 127.0.0.1/32 -j RETURN"]


def test_a_rule_is_printed_as_iptables_save_would():
    rule = parse_rule("-o lo ! -d 127.0.0.1 -p tcp ! --dport 15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT".split())
    assert rule.text() == "! -d 127.0.0.1/32 -o lo -p tcp -m tcp ! --dport 15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT"


@pytest.mark.parametrize(("text", "complaint"), [
    ("-A OUTPUT -j RETURN\n", "before any '* table' line"),
    ("*nat\n-Z OUTPUT\nCOMMIT\n", "expected -N, -A, -I"),
    ("*nat\n-A OUTPUT -d nowhere -j RETURN\nCOMMIT\n", "'nowhere' is not an address"),
    ("*nat\n-A OUTPUT --dport 53 -j RETURN\nCOMMIT\n", "--dport needs -p tcp or -p udp"),
    ("*mangle\n-A OUTPUT -m mark --mark lots -j RETURN\nCOMMIT\n", "mark 'lots' is not a number"),
    ("*nat\n-A OUTPUT -j\nCOMMIT\n", "one -j TARGET"),
])
def test_unreadable_text_names_what_is_wrong(text, complaint):
    with pytest.raises(RuleTextError, match=re.escape(complaint)):
        compare(text, "")


def test_the_cli_exits_0_1_2_with_each_difference(tmp_path, capsys):
    config = CaptureConfig(outbound_ip_ranges_include="*", inbound_ports_include="*")
    expected, same, other, bad = (tmp_path / name for name in ("expected", "same", "other", "bad"))
    expected.write_text(build_rules(config).restore_text(4))
    same.write_text(expected.read_text().replace("-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32", "-A ISTIO_OUTPUT -s 127.0.0.6 -o lo"))
    other.write_text(expected.read_text().replace("--to-ports 15001", "--to-ports 15002"))
    bad.write_text("*nat\n-A OUTPUT -d nowhere -j RETURN\nCOMMIT\n")
    assert main(["intercept", "compare", str(expected), str(same)]) == 0
    assert "same rules" in capsys.readouterr().out
    assert main(["intercept", "compare", str(expected), str(other), "--json"]) == 1
    assert json.loads(capsys.readouterr().out) == {"same": False, "differences": [
        {"table": "nat", "chain": "ISTIO_REDIRECT", "position": 1, "expected": "-p tcp -j REDIRECT --to-ports 15001", "found": "-p tcp -j REDIRECT --to-ports 15002"}]}
    assert main(["intercept", "compare", str(expected), str(bad)]) == 2
    assert "'nowhere' is not an address" in capsys.readouterr().err
    assert main(["intercept", "compare", str(expected), str(tmp_path / "absent")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["intercept", "compare", str(expected), str(same), "--chains", "ISTIO_(IN"]) == 2
    assert "chains 'ISTIO_(IN' is not a regular expression" in capsys.readouterr().err
