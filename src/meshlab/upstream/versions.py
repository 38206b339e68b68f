"""The upstream modules and programs the book pins, one place for every version.

Istio tags have no ``v`` and Go sees Istio only as pseudo-versions. Tag 1.30.3 is commit
56df41f63e51 (2026-07-13), but the Go module proxy refuses that pseudo-version ("not available"),
as it does the release-1.30 commits next to it. It serves 9739e10eb9d7 (2026-08-26), a release-1.30
commit after 1.30.3 whose ``tools/istio-iptables`` and ``cni/pkg/iptables`` (code and test goldens)
are byte-identical to the tag's; of what meshlab reads, only the sidecar injection template differs
(annotation values now quoted). Read in istio/istio's history and the module zips, 2026-11-30.

That commit pins five modules the proxy refuses too; a wrapper module builds Istio's programs with
each replaced by the nearest version it serves (``ISTIO_REPLACEMENTS``; one of them with go.sum lines
the checksum database does not give, ``ISTIO_SUMS``). Programs are stamped with
the release they stand for, so ``pilot-agent version -s`` says ``1.30.3+9739e10eb9d7``.

    Module               a Go module at a pinned version, and the release it stands for
    Program              a command built from a module: its package, how it says its version
    ISTIO                istio.io/istio, standing for Istio 1.30.3
    ISTIO_REPLACEMENTS   the refused dependencies and what replaces each
    SPIRE                github.com/spiffe/spire v1.13.3
    ENVOY_GATEWAY        github.com/envoyproxy/gateway v1.9.0
    GATEWAY_API          sigs.k8s.io/gateway-api v1.6.1, the Gateway API Envoy Gateway v1.9.0 pins
    DAPR                 github.com/dapr/dapr v1.14.0, whose go.mod's own replace lines the wrapper repeats
    GO_CONTAINERREGISTRY github.com/google/go-containerregistry v0.22.1: crane, a real OCI registry and client
    KUBERNETES           k8s.io/kubernetes v1.35.4, its staging modules replaced by their published versions
    ETCD                 go.etcd.io/etcd/server/v3 v3.6.5, the etcd Kubernetes v1.35.4 pins
    PROGRAMS             pilot-agent, pilot-discovery, istioctl, spire-server, spire-agent, egctl, daprd, crane,
                         kube-apiserver, kubectl, kube-controller-manager, etcd, by name
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Module:
    path: str
    version: str
    release: str
    note: str
    #: ``replace`` lines for dependencies the module proxy refuses: module -> (version, why)
    replacements: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: the module's own go.mod has ``replace`` lines its build needs (``go install pkg@version`` refuses
    #: such a module): the wrapper repeats them, read from that go.mod in Go's module cache at build time
    own_replaces: bool = False
    #: go.sum lines for replacements the checksum database does not answer for, each taken from the
    #: go.sum of an upstream commit that pins that version (the wrapper's go.sum starts with them)
    sums: tuple[str, ...] = ()

    @property
    def spec(self) -> str:
        return f"{self.path}@{self.version}"

    @property
    def commit(self) -> str | None:
        """The commit of a pseudo-version (v0.0.0-<time>-<commit>), None for a tagged release."""
        return self.version.rsplit("-", 1)[-1] if self.version.startswith("v0.0.0-") else None


ISTIO_REPLACEMENTS = {
    "github.com/envoyproxy/go-control-plane/envoy": (
        "v1.38.0", "pinned 98966259b99a (2026-04-09) is refused; v1.38.0 (2026-04-23) is 11 commits after it"),
    "github.com/envoyproxy/go-control-plane/contrib": (
        "v1.36.1-0.20260713214202-ca8ce173c36f", "pinned 98966259b99a is refused; the nearest served commit"),
    "istio.io/api": ("v1.30.8", "pinned v1.30.4-0.20260824163423-69099aec2678 is refused; v1.30.8 is the 1.30 release the proxy serves"),
    "istio.io/client-go": ("v1.30.8", "its pinned pseudo-version is refused; v1.30.8 goes with istio.io/api v1.30.8"),
    "github.com/agentgateway/agentgateway/api": (
        "v0.0.0-20260408212224-34871c59e328",
        "pinned 6ae4ab07bb06 (2026-05-06) is refused; 34871c59e328 (2026-04-08) is the one Istio master pinned on "
        "2026-04-23 (b01690e6db7d) and the proxy serves; only pilot-discovery imports it (its agentgateway controller)"),
}

#: The checksum database answers 404 for that agentgateway/api version; these are the lines of Istio's
#: go.sum at b01690e6db7d (2026-04-23), which pins it, and equal what the module proxy serves.
ISTIO_SUMS = (
    "github.com/agentgateway/agentgateway/api v0.0.0-20260408212224-34871c59e328 h1:nsYD9S4tgLjALlzCViCnaRckRztI0LXgLfji2QXADMQ=",
    "github.com/agentgateway/agentgateway/api v0.0.0-20260408212224-34871c59e328/go.mod h1:5NfezCthG8NwhlxD9zOZJq9tm7PmPBK7PowNiwUBZVQ=",
)

ISTIO = Module("istio.io/istio", "v0.0.0-20260826214018-9739e10eb9d7", "1.30.3",
               "release-1.30 commit 9739e10eb9d7 (2026-08-26): the proxy refuses 1.30.3's own commit; "
               "istio-iptables and the CNI's iptables code and goldens are identical to 1.30.3's",
               ISTIO_REPLACEMENTS, sums=ISTIO_SUMS)

#: Kubernetes' staging modules: k8s.io/kubernetes requires each at v0.0.0 and replaces it with its own
#: ./staging folder, which a module built from the proxy cannot have; each is published as k8s.io/<name>
#: at v0.<minor>.<patch> (the list is the ``=> ./staging/...`` lines of v1.35.4's go.mod).
KUBERNETES_STAGING = (
    "api", "apiextensions-apiserver", "apimachinery", "apiserver", "cli-runtime", "client-go", "cloud-provider",
    "cluster-bootstrap", "code-generator", "component-base", "component-helpers", "controller-manager", "cri-api",
    "cri-client", "csi-translation-lib", "dynamic-resource-allocation", "endpointslice", "externaljwt", "kms",
    "kube-aggregator", "kube-controller-manager", "kube-proxy", "kube-scheduler", "kubectl", "kubelet", "metrics",
    "mount-utils", "pod-security-admission", "sample-apiserver", "sample-cli-plugin", "sample-controller",
)

KUBERNETES = Module("k8s.io/kubernetes", "v1.35.4", "v1.35.4",
                    "the release the proxy serves closest to the book's kind node image (v1.35.x); built as envtest's "
                    "control plane is: kube-apiserver, kubectl and etcd, no kubelet; and kube-controller-manager for its "
                    "EndpointSlice controller",
                    {f"k8s.io/{name}": ("v0.35.4", "k8s.io/kubernetes requires it at v0.0.0 from ./staging; "
                                        "v0.35.4 is the same code published")
                     for name in KUBERNETES_STAGING})
ETCD = Module("go.etcd.io/etcd/server/v3", "v3.6.5", "3.6.5",
              "the etcd Kubernetes v1.35.4 pins (its go.mod); the server module's go.mod has relative replace "
              "lines, so it is built from a wrapper, where they do not apply")

SPIRE = Module("github.com/spiffe/spire", "v1.13.3", "1.13.3",
               "SPIRE's release tag; built from a wrapper module because the proxy refuses the module's version list, "
               "which `go install pkg@version` needs for its deprecation check")
ENVOY_GATEWAY = Module("github.com/envoyproxy/gateway", "v1.9.0", "v1.9.0", "Envoy Gateway's release tag (its go.mod needs Go >= 1.26.6)")
DAPR = Module("github.com/dapr/dapr", "v1.14.0", "1.14.0",
              "Dapr's release tag, the only version of the module the proxy lists (go list -m -versions, 2026-11-30); "
              "its go.mod replaces 8 dependencies (forks, relicensed commits, a retracted version)", own_replaces=True)
GATEWAY_API = Module("sigs.k8s.io/gateway-api", "v1.6.1", "v1.6.1",
                     "the Gateway API's release tag, the version Envoy Gateway v1.9.0's go.mod requires: "
                     "its CRDs (config/crd) and examples are read from the module at test time")
GO_CONTAINERREGISTRY = Module("github.com/google/go-containerregistry", "v0.22.1", "v0.22.1",
                              "go-containerregistry's release tag: `crane registry serve` is a real OCI distribution registry "
                              "and `crane push`/`append` a real client, for pilot-agent's oci:// Wasm module fetching (chapter 10)")
#: The oldest Go that builds every pinned program (Envoy Gateway's go.mod sets the bar).
GO_MIN = "1.26.6"

MODULES = {module.path: module for module in (ISTIO, SPIRE, ENVOY_GATEWAY, GATEWAY_API, DAPR, GO_CONTAINERREGISTRY,
                                              KUBERNETES, ETCD)}


@dataclass(frozen=True)
class Program:
    name: str
    module: Module
    package: str
    version_argv: tuple[str, ...]
    #: ``go build -ldflags -X`` settings that stamp the version (the release build sets them too)
    stamp: dict[str, str] = field(default_factory=dict)
    #: built with cgo (SPIRE's SQLite datastore is go-sqlite3, which needs a C compiler)
    cgo: bool = False
    #: ``go build -tags``: which parts the program is built with (daprd's set of components)
    tags: tuple[str, ...] = ()

    @property
    def version(self) -> str:
        """What the program says its version is: the release, plus the commit when built from one."""
        return f"{self.module.release}+{self.module.commit}" if self.module.commit else self.module.release


def _istio_stamp(module: Module) -> dict[str, str]:
    prefix = "istio.io/istio/pkg/version"
    return {f"{prefix}.buildVersion": f"{module.release}+{module.commit}", f"{prefix}.buildGitRevision": str(module.commit),
            f"{prefix}.buildStatus": "Clean", f"{prefix}.buildTag": module.release}


def _kubernetes_stamp(module: Module) -> dict[str, str]:
    """What Kubernetes' release build (hack/lib/version.sh) sets in component-base/version."""
    major, minor, _ = module.release.lstrip("v").split(".")
    prefix = "k8s.io/component-base/version"
    return {f"{prefix}.gitVersion": module.release, f"{prefix}.gitMajor": major, f"{prefix}.gitMinor": minor,
            f"{prefix}.gitTreeState": "clean"}


PROGRAMS = {program.name: program for program in (
    Program("pilot-agent", ISTIO, "istio.io/istio/pilot/cmd/pilot-agent", ("version", "-s"), _istio_stamp(ISTIO)),
    Program("pilot-discovery", ISTIO, "istio.io/istio/pilot/cmd/pilot-discovery", ("version", "-s"), _istio_stamp(ISTIO)),
    Program("istioctl", ISTIO, "istio.io/istio/istioctl/cmd/istioctl", ("version", "--remote=false", "-s"), _istio_stamp(ISTIO)),
    Program("spire-server", SPIRE, "github.com/spiffe/spire/cmd/spire-server", ("--version",),
            {"github.com/spiffe/spire/pkg/common/version.gittag": SPIRE.release}, cgo=True),
    Program("spire-agent", SPIRE, "github.com/spiffe/spire/cmd/spire-agent", ("--version",),
            {"github.com/spiffe/spire/pkg/common/version.gittag": SPIRE.release}, cgo=True),
    Program("egctl", ENVOY_GATEWAY, "github.com/envoyproxy/gateway/cmd/egctl", ("version", "--remote=false"),
            {"github.com/envoyproxy/gateway/internal/cmd/version.envoyGatewayVersion": ENVOY_GATEWAY.release}),
    # Dapr's Makefile (v1.14.0) stamps pkg/buildinfo.version (what `daprd --version` prints) and the logger's
    # DaprVersion (a field of every log line), builds with CGO_ENABLED=0 and a tag choosing the components:
    # allcomponents by default, stablecomponents for the stable ones only (cmd/daprd/components/*.go; built
    # with neither, daprd panics at start asking for one). stablecomponents has state.in-memory,
    # pubsub.in-memory and nameresolution.mdns and .kubernetes; .sqlite and .consul are allcomponents only.
    Program("daprd", DAPR, "github.com/dapr/dapr/cmd/daprd", ("--version",),
            {"github.com/dapr/dapr/pkg/buildinfo.version": DAPR.release, "github.com/dapr/kit/logger.DaprVersion": DAPR.release},
            tags=("stablecomponents",)),
    # crane's version is the -X stamp below, as its release build sets it (cmd/crane/cmd/version.go, v0.22.1).
    Program("crane", GO_CONTAINERREGISTRY, "github.com/google/go-containerregistry/cmd/crane", ("version",),
            {"github.com/google/go-containerregistry/cmd/crane/cmd.Version": GO_CONTAINERREGISTRY.release}),
    Program("kube-apiserver", KUBERNETES, "k8s.io/kubernetes/cmd/kube-apiserver", ("--version",), _kubernetes_stamp(KUBERNETES)),
    Program("kubectl", KUBERNETES, "k8s.io/kubernetes/cmd/kubectl", ("version", "--client"), _kubernetes_stamp(KUBERNETES)),
    Program("kube-controller-manager", KUBERNETES, "k8s.io/kubernetes/cmd/kube-controller-manager", ("--version",),
            _kubernetes_stamp(KUBERNETES)),
    Program("etcd", ETCD, "go.etcd.io/etcd/server/v3", ("--version",)),
)}
