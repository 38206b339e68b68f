"""meshlab's Sidecar checks against Istio's own: ``istioctl analyze --use-kube=false`` (the pinned istioctl)
on the same Sidecars must refuse what meshlab refuses, with the same messages, and accept what it accepts.

The corpus is tests/test_scoping_sidecar.py's (valid and invalid Sidecars, one per case), put in the
``default`` namespace, the one ``analyze`` looks at. What meshlab cannot read at all (an unknown enum
value), istioctl cannot parse either. The selector analyzer needs a cluster: istioctl skips it offline.
"""

from __future__ import annotations

import subprocess

import pytest
from test_scoping_sidecar import CASES
from upstream_programs import program_path

from meshlab.scoping.sidecar import SidecarError, parse_resources, validate
from meshlab.upstream.analyze import AnalyzeError, analyze

pytestmark = pytest.mark.upstream

#: Codes of the Sidecar checks: schema errors and warnings, and the deprecation analyzer's.
CODES = ("IST0106", "IST0133", "IST0002")


@pytest.fixture(scope="module")
def istioctl():
    return program_path("istioctl")


def corpus() -> str:
    documents = []
    for index, case in enumerate(CASES):
        spec = "\n".join("  " + line for line in case.values[0].splitlines())
        documents.append(f"apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {{name: case-{index}, namespace: default}}\nspec:\n{spec}\n")
    return "---\n".join(documents)


def test_istioctl_refuses_what_meshlab_refuses_with_the_same_messages(istioctl):
    text = corpus()
    sidecars, _ = parse_resources(text)
    theirs = {(f.level, f.code, f.resource, f.message) for f in analyze(istioctl, text) if f.code in CODES}
    ours = {(f.level, f.code, f.resource, f.message) for s in sidecars for f in validate(s)}
    assert sorted(ours - theirs) == [] and sorted(theirs - ours) == []
    refused = {resource for _, _, resource, _ in ours}
    assert {f"Sidecar default/case-{i}" for i, case in enumerate(CASES) if case.values[1]} == refused, "every case that expects a finding has one"


@pytest.mark.parametrize("spec", ["outboundTrafficPolicy: {mode: DENY}", "egress:\n- captureMode: SOMETIMES\n  hosts: ['./*']"])
def test_what_meshlab_cannot_read_istioctl_cannot_parse(istioctl, spec):
    text = "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: odd, namespace: default}\nspec:\n" + "\n".join("  " + line for line in spec.splitlines())
    with pytest.raises(SidecarError):
        parse_resources(text)
    with pytest.raises(AnalyzeError, match="unknown value"):
        analyze(istioctl, text)


def test_istioctl_offline_skips_the_selector_analyzer(istioctl, tmp_path):
    """Why meshlab's IST0110 and IST0111 are checked against Istio's templates, not against istioctl."""
    path = tmp_path / "sidecar.yaml"
    path.write_text("apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: a, namespace: default}\nspec: {egress: [{hosts: ['./*']}]}\n")
    done = subprocess.run([istioctl, "analyze", "--use-kube=false", "-v", str(path)], capture_output=True, text=True, timeout=120, check=False)
    skipped = (done.stdout + done.stderr).split("Skipped analyzers:")[1].split("Executed analyzers:")[0]
    assert "sidecar.SelectorAnalyzer" in skipped
