"""The real ``istioctl validate`` (Istio 1.30.3+9739e10eb9d7) and meshlab's WasmPlugin parser accept and
refuse the same resources: istioctl parses the spec as the proto (unknown fields and enum words fail)
and runs ValidateWasmPlugin (pkg/config/validation/validation.go)."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest
from test_wasm_plugin import plugin_yaml
from upstream_programs import program_path

from meshlab.wasm.plugin import WasmPlugin, WasmPluginError

pytestmark = pytest.mark.upstream

GW = {"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "gw"}

#: (spec, what a reader should expect: True accepted). Each is checked against istioctl, not this column alone.
TABLE = [
    ({}, True),
    ({"url": "ghcr.io/acme/filter:v1"}, True),
    ({"url": "https://example.com/m.wasm", "sha256": "0" * 64}, True),
    ({"url": "file:///opt/m.wasm"}, True),
    ({"url": "/opt/m.wasm"}, True),
    ({"url": "localhost:5000/acme/filter:v1"}, False),
    ({"url": "ftp://h/m.wasm"}, False),
    ({"url": "a b"}, False),
    ({"url": ""}, False),
    ({"sha256": "0" * 63}, False),
    ({"sha256": "A" * 64}, False),
    ({"phase": "AUTHZ", "priority": 10, "failStrategy": "FAIL_RELOAD", "type": "HTTP"}, True),
    ({"phase": "LATE"}, False),
    ({"failStrategy": "FAIL_SOMETIMES"}, False),
    ({"imagePullPolicy": "Always"}, True),
    ({"imagePullPolicy": "Never"}, False),
    ({"type": "UDP"}, False),
    ({"match": [{"mode": "SERVER", "ports": [{"number": 8080}]}]}, True),
    ({"match": [{"mode": "INBOUND"}]}, False),
    ({"match": [{"ports": [{"number": 70000}]}]}, False),
    ({"pluginName": "x" * 256}, True),
    ({"pluginName": "x" * 257}, False),
    ({"imagePullSecret": "s" * 254}, False),
    ({"vmConfig": {"env": [{"name": "A", "value": "1"}, {"name": "B", "valueFrom": "HOST"}]}}, True),
    ({"vmConfig": {"env": [{"name": "A"}, {"name": "A"}]}}, False),
    ({"vmConfig": {"env": [{"name": "A", "valueFrom": "HOST", "value": "x"}]}}, False),
    ({"vmConfig": {"env": [{"value": "x"}]}}, False),
    ({"selector": {"matchLabels": {"app": "cart"}}}, True),
    ({"selector": {"matchLabels": {"app": "ca*"}}}, False),
    ({"targetRefs": [GW]}, True),
    ({"targetRef": GW}, True),
    ({"targetRefs": [{**GW, "namespace": "other"}]}, False),
    ({"targetRefs": [{"kind": "Deployment", "group": "apps", "name": "d"}]}, False),
    ({"targetRefs": [{"kind": "Service", "group": "", "name": "s"}]}, True),
    ({"selector": {"matchLabels": {"app": "a"}}, "targetRefs": [GW]}, False),
    ({"urll": "oci://x/y"}, False),
]


def istioctl_accepts(istioctl: str, text: str) -> tuple[bool, str]:
    with tempfile.TemporaryDirectory(prefix="meshlab-wasmplugin-") as folder:
        path = Path(folder) / "plugin.yaml"
        path.write_text(text)
        done = subprocess.run([istioctl, "validate", "-f", str(path)], capture_output=True, text=True, timeout=60, check=False)
    return done.returncode == 0, (done.stderr or done.stdout).strip()


@pytest.fixture(scope="module")
def istioctl() -> str:
    return program_path("istioctl")


@pytest.mark.parametrize("spec, expected", TABLE, ids=[str(i) for i in range(len(TABLE))])
def test_meshlab_and_istioctl_agree(istioctl, spec, expected):
    text = plugin_yaml(**spec)
    accepted, said = istioctl_accepts(istioctl, text)
    try:
        WasmPlugin.parse(text)
        ours, why = True, ""
    except WasmPluginError as error:
        ours, why = False, str(error)
    assert (ours, accepted) == (expected, expected), f"istioctl: {said!r}; meshlab: {why!r}"
