"""Istio on the kind cluster through the reader's ``istioctl``: check its version, install a
profile with the debounce settings under study, wait for the control plane. (Teardown is deleting
the kind cluster; switching profile is installing the other one, which istioctl prunes to.)

``sidecar`` installs Istio's ``default`` profile (istiod and an ingress gateway; pods get istio-init
and istio-proxy by injection); ``ambient`` installs the ``ambient`` profile (istiod, istio-cni and
the ztunnel DaemonSet). The debounce settings are istiod environment variables, set the way Istio's
install docs set them: ``--set values.pilot.env.NAME=VALUE``.
"""

from __future__ import annotations

import re

from meshlab.kind.cluster import KindCluster
from meshlab.kind.runner import INSTALL, KindError
from meshlab.kind.versions import ISTIO_VERSION, parse_version
from meshlab.xds.debounce import DebounceOptions

PROFILES = {"sidecar": "default", "ambient": "ambient"}
NAMESPACE = "istio-system"


def istioctl_version(cluster: KindCluster) -> str:
    """The client version ``istioctl`` reports; KindError unless it is the pinned release's minor."""
    out = cluster.runner.run("check istioctl", "istioctl", "version", "--remote=false")
    if cluster.runner.dry_run:
        return ISTIO_VERSION
    found = re.search(r"(\d+\.\d+\.\d+\S*)", out)
    if not found:
        raise KindError("check istioctl", f"could not read a version from `istioctl version`: {out.strip()!r}", INSTALL["istioctl"])
    if parse_version(found.group(1))[:2] != parse_version(ISTIO_VERSION)[:2]:
        raise KindError("check istioctl", f"istioctl is {found.group(1)}; the book follows Istio {ISTIO_VERSION}", INSTALL["istioctl"])
    return found.group(1)


def install_args(mode: str, debounce: DebounceOptions | None = None) -> list[str]:
    if mode not in PROFILES:
        raise KindError("install Istio", f"data-plane mode {mode!r}", f"one of {', '.join(PROFILES)}")
    args = ["install", "-y", "--set", f"profile={PROFILES[mode]}"]
    if debounce is not None:
        for name, value in debounce.environment().items():
            args += ["--set", f"values.pilot.env.{name}={value}"]
    return args


def install(cluster: KindCluster, mode: str, debounce: DebounceOptions | None = None, timeout_s: int = 600) -> None:
    args = install_args(mode, debounce)
    istioctl_version(cluster)
    cluster.runner.run("install Istio", "istioctl", *args, timeout=timeout_s,
                       fix="`istioctl install` prints the component that failed; `kubectl -n istio-system get pods` and its events say why (often image pulls or too little memory)")
    cluster.rollout("wait for istiod", NAMESPACE, "deploy/istiod")
    if mode == "ambient":
        cluster.rollout("wait for istio-cni", NAMESPACE, "ds/istio-cni-node")
        cluster.rollout("wait for ztunnel", NAMESPACE, "ds/ztunnel")
