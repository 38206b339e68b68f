"""The rule comparison against the real kernel: ``iptables -C`` (does the kernel hold this rule?)
decides, for every pair of tests/test_compare.py, whether two spellings are one rule, and every
golden of Istio 1.30.3, loaded into a network namespace and read back with iptables-save, compares
as identical with the golden itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from meshlab.intercept.compare import compare
from rule_pairs import PAIRS, one_rule

pytestmark = pytest.mark.live

GOLDEN = Path(__file__).parent.parent / "data" / "istio-iptables" / "golden"
#: Groups Istio's goldens name that a Debian machine lacks, and groups every Debian machine has:
#: iptables resolves a name when it loads the rule, so the name must exist here.
GROUPS_HERE = {"--gid-owner java": "--gid-owner daemon", "--gid-owner ftp": "--gid-owner bin"}


@pytest.mark.parametrize(("why", "given", "other", "same", "table"), PAIRS, ids=[p[0] for p in PAIRS])
def test_the_kernel_agrees_which_spellings_are_one_rule(pod_namespace, why, given, other, same, table):
    pod_namespace.run(["iptables-restore", "--noflush"], stdin=one_rule(table, given))
    saved = pod_namespace.run(["iptables-save", "-t", table]).stdout
    assert compare(one_rule(table, given), saved) == [], "the kernel's listing of a rule is that rule"
    held = pod_namespace.run(["iptables", "-t", table, "-C", "ISTIO_TEST", *other.split()], check=False)
    assert (held.returncode == 0) == same, f"{why}: iptables -C says {held.returncode == 0}, the pair says {same}"
    assert (compare(one_rule(table, other), saved) == []) == same


def restore_sections(golden: str) -> list[str]:
    """The iptables-restore inputs in a golden: IPv4's, then IPv6's when the case enables it (the
    IPv6 input starts where a table comes again)."""
    sections: list[list[str]] = []
    seen: set[str] = set()
    for line in golden.splitlines():
        if line in ("iptables-save", "ip6tables-save"):
            continue
        if line.startswith("* "):
            if not sections or line in seen:
                sections.append([])
                seen = set()
            seen.add(line)
        sections[-1].append(line)
    return ["\n".join(section) + "\n" for section in sections]


@pytest.mark.parametrize("name", sorted(path.stem for path in GOLDEN.glob("*.golden")))
def test_istios_golden_rules_read_back_from_the_kernel_are_the_same_rules(pod_namespace, name):
    golden = (GOLDEN / f"{name}.golden").read_text()
    for theirs, ours in GROUPS_HERE.items():
        golden = golden.replace(theirs, ours)
    sections = restore_sections(golden)
    assert 1 <= len(sections) <= 2
    for tool, section in zip(("iptables", "ip6tables"), sections):
        pod_namespace.run([f"{tool}-restore"], stdin=section)
        saved = pod_namespace.run([f"{tool}-save"]).stdout
        assert re.search(r"^-A ISTIO_", saved, flags=re.M), "the rules were loaded"
        assert compare(section, saved) == [], f"{tool}: {[str(d) for d in compare(section, saved)]}"
        broken = saved.replace("-j ISTIO_", "-j ISTIO_X", 1) if "-j ISTIO_" in saved else saved + "*nat\n-A OUTPUT -j RETURN\nCOMMIT\n"
        assert compare(section, broken) != []
