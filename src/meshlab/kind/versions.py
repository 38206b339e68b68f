"""Every version the kind stage pins, in one place, with where each fact comes from.

Istio 1.30.3 is the release the whole book follows (its istio-iptables goldens, its push pipeline).
Istio 1.30 supports Kubernetes 1.32-1.36 (istio.io, data/compatibility/supportStatus.yml), so the
cluster runs Kubernetes 1.35 on the node image kind v0.33.0 was released with; a node image is
pinned by digest because a tag can be re-pushed (kind's release notes list each image with its
digest and ask for exactly that).
"""

from __future__ import annotations

ISTIO_VERSION = "1.30.3"
#: Kubernetes minor versions Istio 1.30 is supported on (supportStatus.yml, k8sVersions).
ISTIO_KUBERNETES_VERSIONS = ("1.32", "1.33", "1.34", "1.35", "1.36")

#: The kind release whose node images are pinned below; older kind cannot be relied on to boot them.
KIND_VERSION = "0.33.0"
KUBERNETES_VERSION = "1.35.8"
#: kind v0.33.0's pre-built image for Kubernetes 1.35.8, as its release notes list it.
NODE_IMAGE = "kindest/node:v1.35.8@sha256:07b2536e30b803ed61d1677a79df6115f798ce64c80f9e22f6ed45afd09323c0"

#: The sample workloads, pinned: go-httpbin (the image Istio's samples/httpbin uses, built for amd64 and
#: arm64; it listens on 8080) and the curl image Istio's samples/curl uses.
HTTPBIN_IMAGE = "docker.io/mccutchen/go-httpbin:v2.15.0"
CURL_IMAGE = "docker.io/curlimages/curl:8.12.1"


def parse_version(text: str) -> tuple[int, ...]:
    """``"v1.35.8"`` or ``"1.30.3"`` -> (1, 35, 8); a ValueError names the text otherwise."""
    core = text.strip().lstrip("v").split("-")[0].split("+")[0]
    try:
        return tuple(int(part) for part in core.split("."))
    except ValueError:
        raise ValueError(f"{text!r} is not a version such as 1.30.3") from None
