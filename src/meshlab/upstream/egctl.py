"""Envoy Gateway's own translator, offline: ``egctl experimental translate --from gateway-api --to xds``
runs the real Gateway API and xDS translators in process on a YAML file (a GatewayClass must be in
it; ``--add-missing-resources`` stands in for Services and Namespaces that are not), and prints the
Envoy configuration a gateway would get (internal/cmd/egctl/translate.go, v1.9.0). With ``--to
gateway-api,xds`` it also prints the Gateway API resources with the status Envoy Gateway gives them.

What egctl's loader keeps of each resource is its name, namespace and spec (and a Service's spec):
labels and creationTimestamp are dropped, and a resource without a namespace lands in
``envoy-gateway-system`` (internal/gatewayapi/resource/load.go, v1.9.0). So a namespace selector
never matches offline, and routes of equal precedence are ordered by namespace/name alone.

    TranslateError   egctl refused the input; its words
    translate        Gateway API YAML -> egctl's output (xDS, and the resources with status), parsed
    xds_of           one gateway's xDS from ``translate(..., kinds="all")``, by kind, unwrapped
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from meshlab.upstream.run import run

#: The config dump each xDS kind comes in when egctl prints ``-t all`` (envoy.admin.v3), and where its resources are.
DUMPS = {"listeners": ("dynamicListeners", "activeState", "listener"), "routes": ("dynamicRouteConfigs", None, "routeConfig"),
         "clusters": ("dynamicActiveClusters", None, "cluster"), "endpoints": ("dynamicEndpointConfigs", None, "endpointConfig")}


class TranslateError(RuntimeError):
    """egctl could not translate the input; the message is egctl's."""


def translate(egctl: str, resources: str, kinds: str = "all", to: str = "xds", add_missing_resources: bool = True) -> dict:
    """What egctl derives from ``resources``: ``kinds`` of xDS (all, listener, route, cluster, endpoint),
    ``to`` xds or gateway-api,xds (the resources with their status too). Without
    ``add_missing_resources`` only the Services in ``resources`` exist, so a backendRef to another
    one is not found, as in a cluster."""
    with tempfile.TemporaryDirectory(prefix="meshlab-egctl-") as folder:
        source = Path(folder) / "gateway.yaml"
        source.write_text(resources)
        argv = [egctl, "experimental", "translate", "--from", "gateway-api", "--to", to, "-t", kinds, "-o", "yaml", "-f", str(source)]
        done = run(argv + (["--add-missing-resources"] if add_missing_resources else []), "egctl experimental translate", TranslateError, tail=800)
    return yaml.safe_load(done.stdout)


def xds_of(output: dict, gateway: str) -> dict[str, list[dict]]:
    """The listeners, routes (RouteConfigurations), clusters and endpoints (ClusterLoadAssignments)
    egctl gives ``gateway`` ("namespace/name"), out of their config dumps."""
    if gateway not in output.get("xds", {}):
        raise TranslateError(f"egctl gave no xDS for gateway {gateway}; it gave {sorted(output.get('xds', {}))}")
    found: dict[str, list[dict]] = {kind: [] for kind in DUMPS}
    for dump in output["xds"][gateway].get("configs", []):
        for kind, (entries, state, resource) in DUMPS.items():
            for entry in dump.get(entries, []):
                found[kind].append((entry[state] if state else entry)[resource])
    return found
