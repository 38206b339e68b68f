"""A real Kubernetes control plane on loopback, as controller-runtime's envtest runs one: etcd and
kube-apiserver (Kubernetes v1.35.4, built by the upstream stage), no nodes, no kubelet, no scheduler;
and, if given, kube-controller-manager running one controller, the EndpointSlice controller, which
turns each Service's selector and the Pods it selects into EndpointSlices. Objects written to it are
stored and watched exactly as in a cluster; nothing runs them. That is what istiod needs: it reads
Pods, Services, EndpointSlices, Namespaces and Istio's custom resources through the API server and
never talks to a kubelet.

The API server authenticates the admin with a static token (``--token-auth-file``, group
system:masters), serves on a certificate it generates for itself (``--cert-dir``: a self-signed CA and
a serving certificate for 127.0.0.1 and localhost, whose chain file the kubeconfig trusts), signs
service-account tokens with a key pair written here, and authorises with RBAC. The ServiceAccount
admission plugin is off: it refuses a Pod whose service account object does not exist, and nothing
here creates them (the controller-manager's service-account controller would; it is not run). The
controller-manager uses the admin's kubeconfig, does no leader election (it is alone), and serves its
health on a loopback port.

    KubeError         a step failed; names it and what the program said
    KubeControlPlane  with KubeControlPlane(apiserver, etcd, kubectl, folder[, controller_manager=...]) as kube: kube.kubectl(...);
                      kube.kubeconfig is the admin's; everything is stopped (by PID) and removed on exit
    status_of         the HTTP status of a GET, 0 while nothing answers (readiness probes)
"""

from __future__ import annotations

import secrets
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from meshlab.lab.processes import ProcessRecord
from meshlab.ports import free_port
from meshlab.upstream.daemons import Daemons
from meshlab.upstream.run import run

#: The Service IP range the API server allocates from (kind's default, and the lab's cluster DNS,
#: 10.96.0.254, lies inside it).
SERVICE_RANGE = "10.96.0.0/16"

#: The controller-manager's name for the EndpointSlice controller (its --controllers list, v1.35).
ENDPOINTSLICE_CONTROLLER = "endpointslice-controller"
#: TLS to a server whose certificate is being made here, on loopback: not checked.
_UNCHECKED = ssl.create_default_context()
_UNCHECKED.check_hostname, _UNCHECKED.verify_mode = False, ssl.CERT_NONE

KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: meshlab
  cluster:
    server: {server}
    certificate-authority: {ca}
users:
- name: admin
  user:
    token: {token}
contexts:
- name: meshlab
  context: {{cluster: meshlab, user: admin}}
current-context: meshlab
"""


class KubeError(RuntimeError):
    """The control plane did not do what was asked; the message names the step and the program's words."""


class KubeControlPlane(Daemons):
    """etcd and kube-apiserver on loopback ports, their state in ``folder`` (0700: it holds keys)."""

    def __init__(self, apiserver: str, etcd: str, kubectl: str, folder: Path,
                 on_start: Callable[[ProcessRecord], None] = lambda process: None, controller_manager: str | None = None) -> None:
        """``on_start`` hears of each process as it starts (a live lab records it, so its cleanup stops it).
        With ``controller_manager``, the EndpointSlice controller runs too."""
        super().__init__(folder, on_start)
        self.programs = {"kube-apiserver": apiserver, "etcd": etcd, "kubectl": kubectl}
        self.controller_manager = controller_manager
        self.token = secrets.token_hex(16)
        self.port = 0

    @property
    def kubeconfig(self) -> Path:
        return self.folder / "kubeconfig"

    @property
    def certificate(self) -> Path:
        """The API server's serving certificate chain, which it generates in ``--cert-dir``: what clients trust."""
        return self.folder / "certificates" / "apiserver.crt"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _etcd(self) -> str:
        client, peer = free_port(), free_port()
        data = self.folder / "etcd"
        process = self.start("etcd", [
            self.programs["etcd"], "--name", "meshlab", "--data-dir", str(data),
            "--listen-client-urls", f"http://127.0.0.1:{client}", "--advertise-client-urls", f"http://127.0.0.1:{client}",
            "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-cluster", f"meshlab=http://127.0.0.1:{peer}",
            "--unsafe-no-fsync",  # a lab's etcd: its data is thrown away at the end
        ])
        url = f"http://127.0.0.1:{client}"
        self.wait_ready("etcd", process, lambda: status_of(f"{url}/health") == 200, timeout=30, error=KubeError)
        return url

    def _keys(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (self.folder / "sa.key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        (self.folder / "sa.pub").write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        (self.folder / "tokens.csv").write_text(f"{self.token},admin,admin-uid,system:masters\n")
        for name in ("sa.key", "tokens.csv"):
            (self.folder / name).chmod(0o600)

    def _apiserver(self, etcd: str) -> None:
        self.port = free_port()
        process = self.start("kube-apiserver", [
            self.programs["kube-apiserver"], "--etcd-servers", etcd,
            "--bind-address", "127.0.0.1", "--secure-port", str(self.port), "--cert-dir", str(self.certificate.parent),
            "--token-auth-file", str(self.folder / "tokens.csv"), "--authorization-mode", "RBAC",
            "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file", str(self.folder / "sa.pub"),
            "--service-account-signing-key-file", str(self.folder / "sa.key"),
            "--service-cluster-ip-range", SERVICE_RANGE, "--allow-privileged",
            "--disable-admission-plugins", "ServiceAccount",
        ])
        self.wait_ready("kube-apiserver", process, lambda: self._readyz() == 200, timeout=90, error=KubeError)
        self.kubeconfig.write_text(KUBECONFIG.format(server=self.server, ca=self.certificate, token=self.token))
        self.kubeconfig.chmod(0o600)

    def _readyz(self) -> int:
        """The API server's /readyz status (its certificate is not checked: it is being made)."""
        return status_of(f"{self.server}/readyz", {"Authorization": f"Bearer {self.token}"}, _UNCHECKED)

    def _endpointslice_controller(self) -> None:
        port, kubeconfig = free_port(), str(self.kubeconfig)
        process = self.start("kube-controller-manager", [
            self.controller_manager, "--kubeconfig", kubeconfig, "--controllers", ENDPOINTSLICE_CONTROLLER, "--leader-elect=false",
            "--bind-address", "127.0.0.1", "--secure-port", str(port), "--cert-dir", str(self.folder / "controller-manager"),
            "--authentication-kubeconfig", kubeconfig, "--authorization-kubeconfig", kubeconfig,
        ])
        # /healthz is served without authorization (--authorization-always-allow-paths' default)
        self.wait_ready("kube-controller-manager", process, lambda: status_of(f"https://127.0.0.1:{port}/healthz", context=_UNCHECKED) == 200,
                        timeout=60, error=KubeError)

    def setup(self) -> None:
        self.folder.chmod(0o700)
        self._keys()
        self._apiserver(self._etcd())
        if self.controller_manager:
            self._endpointslice_controller()

    def kubectl(self, *args: str, stdin: str | None = None, timeout: float = 120) -> str:
        """Run the real kubectl against this API server as the admin; its output, or KubeError."""
        argv = [self.programs["kubectl"], "--kubeconfig", str(self.kubeconfig), *args]
        return run(argv, f"kubectl {' '.join(args[:3])}", KubeError, timeout=timeout, stdin=stdin).stdout


def status_of(url: str, headers: dict[str, str] | None = None, context: ssl.SSLContext | None = None) -> int:
    """The HTTP status of a GET, 0 when nothing answers yet."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5, context=context) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, ValueError):
        return 0
