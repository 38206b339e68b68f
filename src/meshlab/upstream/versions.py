"""The upstream modules the book pins, one place for every version.

Istio tags have no ``v`` and Go sees Istio only as pseudo-versions. Tag 1.30.3 is commit
56df41f63e51 (2026-07-13), but the Go module proxy refuses that pseudo-version ("not available"),
as it does the release-1.30 commits next to it. It serves 9739e10eb9d7 (2026-08-26), a release-1.30
commit after 1.30.3 whose ``tools/istio-iptables`` and ``cni/pkg/iptables`` (code and test goldens)
are byte-identical to the tag's; of what meshlab reads, only the sidecar injection template differs
(annotation values now quoted). Read in istio/istio's history and the module zips, 2026-11-30.

    Module   a Go module at a pinned version, and the release it stands for
    ISTIO    istio.io/istio, standing for Istio 1.30.3
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Module:
    path: str
    version: str
    release: str
    note: str

    @property
    def spec(self) -> str:
        return f"{self.path}@{self.version}"


ISTIO = Module("istio.io/istio", "v0.0.0-20260826214018-9739e10eb9d7", "1.30.3",
               "release-1.30 commit 9739e10eb9d7 (2026-08-26): the proxy refuses 1.30.3's own commit; "
               "istio-iptables and the CNI's iptables code and goldens are identical to 1.30.3's")

MODULES = {module.path: module for module in (ISTIO,)}
