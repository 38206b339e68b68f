"""Envoy Gateway's own translator, offline: ``egctl experimental translate --from gateway-api --to xds``
runs the real Gateway API and xDS translators in process on a YAML file (a GatewayClass must be in
it; ``--add-missing-resources`` stands in for Services and Namespaces that are not), and prints the
Envoy configuration a gateway would get (internal/cmd/egctl/translate.go, v1.9.0).

    TranslateError   egctl refused the input; its words
    translate        Gateway API YAML -> egctl's xDS output, parsed
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from meshlab.upstream.run import run


class TranslateError(RuntimeError):
    """egctl could not translate the input; the message is egctl's."""


def translate(egctl: str, resources: str, kinds: str = "all") -> dict:
    """The xDS egctl derives from ``resources`` (``kinds``: all, listener, route, cluster, endpoint)."""
    with tempfile.TemporaryDirectory(prefix="meshlab-egctl-") as folder:
        source = Path(folder) / "gateway.yaml"
        source.write_text(resources)
        done = run([egctl, "experimental", "translate", "--from", "gateway-api", "--to", "xds", "-t", kinds, "--add-missing-resources",
                    "-o", "yaml", "-f", str(source)], "egctl experimental translate", TranslateError, tail=800)
    return yaml.safe_load(done.stdout)
