"""Chapter 04's ambient in-pod rules: what makes them Istio's (marks, ports, the probe address)."""

from __future__ import annotations

from meshlab.deploy import inpod


def test_marks_and_ports_are_istios():
    assert int(inpod.ZTUNNEL_MARK.split("/")[0], 16) == 1337  # InpodMark, the mark ztunnel sets on its sockets
    assert inpod.TPROXY_MARK == "0x111/0xfff"
    assert (inpod.OUTBOUND_PORT, inpod.INBOUND_PLAINTEXT_PORT, inpod.HBONE_PORT, inpod.DNS_PORT) == (15001, 15006, 15008, 15053)


def test_every_capturing_rule_spares_ztunnels_own_traffic():
    for rule in inpod.inpod_rules():
        target = rule.params[rule.params.index("-j") + 1]
        if target in ("TPROXY", "REDIRECT") and "udp" not in rule.params:
            assert ("!", "--mark", inpod.ZTUNNEL_MARK) == rule.params[rule.params.index("--mark") - 1: rule.params.index("--mark") + 2], rule
        assert rule.why


def test_the_chains_and_their_order():
    restore = inpod.inpod_ruleset().restore_text(4)
    assert restore.startswith("* mangle\n-N ISTIO_PRERT\n-N ISTIO_OUTPUT\n-A PREROUTING -j ISTIO_PRERT\n")
    nat = restore.split("* nat\n")[1].splitlines()
    assert nat[-2] == "-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -p tcp -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15001"  # the catch-all comes last
    without_dns = inpod.inpod_ruleset(redirect_dns=False).restore_text(4)
    assert "15053" in restore and "15053" not in without_dns
