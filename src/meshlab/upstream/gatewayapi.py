"""The Gateway API's own module, sigs.k8s.io/gateway-api at the version Envoy Gateway v1.9.0 pins,
read from Go's module cache: its CustomResourceDefinitions (config/crd/<channel>/) and its
documented examples (examples/<channel>/). Read at test time and by ``meshlab.gateway.load(...,
crds=crds())``, never copied into the repository.

    module       the module's folder (downloaded through the Go module proxy if not cached)
    crds         kind -> CRD document of a channel's Gateway API CRDs
    cached_crds  the same if the module is already in the cache (no download, no error), else None
    examples     the example YAML files of a channel, sorted
"""

from __future__ import annotations

import functools
from pathlib import Path

import yaml

from meshlab.upstream.source import UpstreamError, cached_source, source
from meshlab.upstream.versions import GATEWAY_API

CHANNELS = ("standard", "experimental")


def module() -> Path:
    return source(GATEWAY_API)


def _channel(channel: str) -> str:
    if channel not in CHANNELS:
        raise UpstreamError(f"unknown Gateway API channel {channel!r}; accepted: {', '.join(CHANNELS)}")
    return channel


@functools.cache
def crds(channel: str = "standard") -> dict[str, dict]:
    """The channel's CRDs by kind (GatewayClass, Gateway, HTTPRoute, GRPCRoute, ReferenceGrant, ...)."""
    found: dict[str, dict] = {}
    for path in sorted((module() / "config" / "crd" / _channel(channel)).glob("gateway.networking.k8s.io_*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if isinstance(document, dict) and document.get("kind") == "CustomResourceDefinition":
                found[document["spec"]["names"]["kind"]] = document
    if not found:
        raise UpstreamError(f"no CRDs under {module() / 'config' / 'crd' / channel}; is {GATEWAY_API.spec} complete in the module cache?")
    return found


def cached_crds(channel: str = "standard") -> dict[str, dict] | None:
    """``crds(channel)`` when Go and the module are already here, None otherwise: for commands that
    validate with the CRDs where they can, and with meshlab's own parse (held to the CRDs by the
    upstream tests) where they cannot."""
    try:
        return crds(channel) if cached_source(GATEWAY_API) else None
    except UpstreamError:
        return None


def examples(channel: str = "standard") -> list[Path]:
    """The channel's example manifests (the documentation's), sorted by path."""
    return sorted((module() / "examples" / _channel(channel)).rglob("*.yaml"))
