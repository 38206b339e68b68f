"""meshlab's rule generator against Istio 1.30.3's own golden files, through the CLI, byte for byte;
and the same cases with other ports, ids, CIDRs and interfaces, to show the rules follow from the
configuration's meaning rather than from the case."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshlab.cli import main
from meshlab.intercept import CaptureConfig, render_commands

DATA = Path(__file__).parent / "data" / "istio-iptables"
CASES = json.loads((DATA / "cases.json").read_text())


def golden(name: str) -> str:
    return (DATA / "golden" / f"{name}.golden").read_text()


@pytest.mark.parametrize("name", sorted(CASES["cases"]))
def test_cli_dry_run_prints_istios_golden_output(name, tmp_path, capsys, monkeypatch):
    for variable in ("ISTIO_OUTBOUND_OWNER_GROUPS", "ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE", "ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR"):
        monkeypatch.delenv(variable, raising=False)
    config = tmp_path / "case.json"
    config.write_text(json.dumps({**CASES["defaults"], **CASES["cases"][name]}))
    assert main(["intercept", "istio-iptables", "--dry-run", "--config-json", str(config)]) == 0
    assert capsys.readouterr().out == golden(name)


def test_all_27_cases_are_here():
    assert len(CASES["cases"]) == 27 == len(list((DATA / "golden").glob("*.golden")))


def config_of(name: str, **changes) -> CaptureConfig:
    return CaptureConfig.from_istio_fields({**CASES["defaults"], **CASES["cases"][name], **changes})


#: (field, new value, [(text in the golden, text expected instead)], applies to cases where the field has this value)
SUBSTITUTIONS = [
    ("ProxyPort", "15111", [("--to-ports 15001", "--to-ports 15111")], "15001"),
    ("InboundCapturePort", "15777", [("--to-ports 15006", "--to-ports 15777"), ("--on-port 15006", "--on-port 15777")], "15006"),
    ("InboundTunnelPort", "15888", [("15008", "15888")], "15008"),
    ("ProxyUID", "4242", [("--uid-owner 1337", "--uid-owner 4242")], "1337"),
    ("ProxyGID", "4343", [("--gid-owner 1337", "--gid-owner 4343")], "1337"),
    ("InboundTProxyMark", "777", [("--set-mark 1337", "--set-mark 777"), ("--mark 1337", "--mark 777"), ("--tproxy-mark 1337/", "--tproxy-mark 777/")], "1337"),
    ("OutboundIPRangesInclude", "172.20.0.0/14", [("10.0.0.0/8", "172.20.0.0/14")], "10.0.0.0/8"),
    ("ExcludeInterfaces", "ens9", [("not-istio-nic", "ens9")], "not-istio-nic"),
    ("RerouteVirtualInterfaces", "veth7,veth8", [("eth1", "veth7"), ("eth2", "veth8")], "eth1,eth2"),
    ("InboundPortsInclude", "8443,9443", [("--dport 32000", "--dport 8443"), ("--dport 31000", "--dport 9443")], "32000,31000"),
    ("HostIPv4LoopbackCidr", "127.0.0.1/16", [("127.0.0.1/8", "127.0.0.1/16")], "127.0.0.1/8"),
]


@pytest.mark.parametrize(("field", "value", "replacements", "original"), SUBSTITUTIONS, ids=[s[0] for s in SUBSTITUTIONS])
def test_other_values_give_the_rules_istio_would_give(field, value, replacements, original):
    cases = [name for name in CASES["cases"] if config_of(name).istio_fields()[field] == original]
    assert cases, f"no case uses {field}={original}"
    for name in cases:
        expected = golden(name)
        for old, new in replacements:
            expected = expected.replace(old, new)
        assert render_commands(config_of(name, **{field: value})) + "\n" == expected, name


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "0"], "ProxyPort (-p/--envoy-port): '0' is not valid; accepted: a TCP port, 1-65535"),
        (["-b", "80,http"], "InboundPortsInclude (-b/--istio-inbound-ports): 'http' is not valid; accepted: \"*\" or comma-separated ports 1-65535"),
        (["-i", "10.0.0/8"], "OutboundIPRangesInclude (-i/--istio-service-cidr): '10.0.0/8' is not valid; accepted: CIDRs with a prefix length"),
        (["-x", "*"], "OutboundIPRangesExclude (-x/--istio-service-exclude-cidr): '*' is not valid"),
        (["-m", "tproxy"], "InboundInterceptionMode (-m/--istio-inbound-interception-mode): 'tproxy' is not valid; accepted: REDIRECT or TPROXY"),
        (["-u", "root"], "ProxyUID (-u/--proxy-uid): 'root' is not valid; accepted: comma-separated numeric ids"),
        (["-c", "an-interface-name-too-long"], "ExcludeInterfaces (-c/--istio-exclude-interfaces): 'an-interface-name-too-long' is not valid"),
        (["--dns-servers-v4", "::1"], "DNSServersV4 (--dns-servers-v4): '::1' is not valid; accepted: IPv4 addresses"),
    ],
)
def test_invalid_configuration_exits_2_naming_the_field(args, message, capsys):
    assert main(["intercept", "istio-iptables", "-n", *args]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""


def test_unknown_flag_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["intercept", "istio-iptables", "-n", "--envoy-prot", "15001"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --envoy-prot" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"ProxyPrt": "1"}', "ProxyPrt: '1' is not valid; accepted: one of the fields ProxyPort"),
        ('{"EnableIPv6": "yes"}', "EnableIPv6 (--enable-ipv6): 'yes' is not valid; accepted: true or false"),
        ('{"DNSServersV4": "8.8.8.8"}', "DNSServersV4 (--dns-servers-v4): '8.8.8.8' is not valid; accepted: a list of IP address strings"),
        ("[1, 2]", "configuration: 'list' is not valid; accepted: a JSON object"),
        ("{nope", "accepted: valid JSON (Expecting property name"),
    ],
)
def test_bad_config_json_names_the_problem(content, message, tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text(content)
    assert main(["intercept", "istio-iptables", "-n", "--config-json", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_flags_and_config_json_agree_and_flags_win(tmp_path, capsys):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"InboundPortsInclude": "*", "OutboundIPRangesInclude": "10.0.0.0/8", "ProxyPort": "15002"}))
    main(["intercept", "istio-iptables", "-n", "--config-json", str(path), "-p", "15003"])
    from_json = capsys.readouterr().out
    main(["intercept", "istio-iptables", "-n", "-b", "*", "-i", "10.0.0.0/8", "-p", "15003"])
    assert capsys.readouterr().out == from_json
    assert "--to-ports 15003" in from_json and "15002" not in from_json


def test_owner_groups_come_from_istios_environment_variable(capsys, monkeypatch):
    monkeypatch.setenv("ISTIO_OUTBOUND_OWNER_GROUPS", "java,202")
    main(["intercept", "istio-iptables", "-n"])
    assert capsys.readouterr().out == golden("outbound-owner-groups")


def test_owner_groups_by_name_are_matched_by_the_walk():
    from meshlab.intercept.walk import Connection, walk

    config = config_of("outbound-owner-groups", OutboundIPRangesInclude="*")
    text = render_commands(config)
    java = Connection("OUTPUT", "10.0.0.2", "10.96.0.1", 80, out_interface="eth0", uid=1000, gids=(1000, "java"))
    other = Connection("OUTPUT", "10.0.0.2", "10.96.0.1", 80, out_interface="eth0", uid=1000, gids=(1000,))
    assert walk(text, java).verdict == "REDIRECT", "a process in an included group is captured"
    assert walk(text, other).verdict == "ACCEPT", "any other group returns before capture"
