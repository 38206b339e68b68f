"""The agent's SDS server: Envoy gets its workload certificate and the mesh's root over a Unix socket,
from the agent, and never holds the CA's credentials or talks to the CA itself.

In Istio the agent generates the private key, sends a CSR to istiod's CA, and serves the result to
Envoy as two secrets named by convention (pkg/security/security.go, Istio 1.30): ``default`` (a
tls_certificate: the SVID chain and its key) and ``ROOTCA`` (a validation_context: trusted_ca). Both
go inline as PEM bytes (security/pkg/nodeagent/sds/sdsservice.go toEnvoySecret). The socket is
``./var/run/secrets/workload-spiffe-uds/socket`` (meshlab.agent.bootstrap.SDS_SOCKET). Here the
certificates come from meshlab's own CA (meshlab.identity.authority), so the CSR step is a call.

    SECRET_TYPE      the type URL of envoy.extensions.transport_sockets.tls.v3.Secret
    WorkloadSecrets  the PEM an agent serves: from_svid(svid, bundle)
    envoy_secret     ("default" | "ROOTCA", WorkloadSecrets) -> tls.v3.Secret
    SdsServer        SecretDiscoveryService (StreamSecrets, FetchSecrets) on a Unix socket; rotate() pushes
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.secret.v3 import sds_pb2_grpc
from google.protobuf import any_pb2

from meshlab.identity.authority import X509Svid

SECRET_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
WORKLOAD_CERTIFICATE = "default"  # pkg/security/security.go WorkloadKeyCertResourceName
ROOT_CERTIFICATE = "ROOTCA"  # pkg/security/security.go RootCertReqResourceName


@dataclass(frozen=True)
class WorkloadSecrets:
    chain_pem: bytes
    key_pem: bytes
    root_pem: bytes

    @classmethod
    def from_svid(cls, svid: X509Svid, bundle: list[x509.Certificate]) -> WorkloadSecrets:
        chain, key = svid.pem_files()
        return cls(chain, key, b"".join(certificate.public_bytes(Encoding.PEM) for certificate in bundle))


def envoy_secret(name: str, secrets: WorkloadSecrets) -> secret_pb2.Secret:
    """The secret Envoy asked for by name; any other name is refused (Istio's agent would read it as a file
    reference ``file-cert:...``/``file-root:...``, which meshlab does not serve)."""
    def inline(data: bytes) -> base_pb2.DataSource:
        return base_pb2.DataSource(inline_bytes=data)

    if name == WORKLOAD_CERTIFICATE:
        return secret_pb2.Secret(name=name, tls_certificate=common_pb2.TlsCertificate(
            certificate_chain=inline(secrets.chain_pem), private_key=inline(secrets.key_pem)))
    if name == ROOT_CERTIFICATE:
        return secret_pb2.Secret(name=name, validation_context=common_pb2.CertificateValidationContext(trusted_ca=inline(secrets.root_pem)))
    raise KeyError(f"unknown SDS resource {name!r}: this agent serves {WORKLOAD_CERTIFICATE!r} and {ROOT_CERTIFICATE!r}")


class SdsServer(sds_pb2_grpc.SecretDiscoveryServiceServicer):
    """Serves ``secrets`` on ``socket_path`` (gRPC over a Unix socket). A stream gets a response for each
    request naming resources it has not been sent yet at this version, and a push on rotate(); a request
    that only acknowledges (same names, the last nonce) gets nothing, as xDS's ACK rules say."""

    def __init__(self, socket_path: str | Path, secrets: WorkloadSecrets) -> None:
        self.socket_path = Path(socket_path)
        self.secrets = secrets
        self.version = 1
        self._streams: list[queue.Queue] = []
        self._lock = threading.Lock()
        self._server: grpc.Server | None = None

    def start(self) -> SdsServer:
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        self.socket_path.unlink(missing_ok=True)
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        sds_pb2_grpc.add_SecretDiscoveryServiceServicer_to_server(self, self._server)
        self._server.add_insecure_port(f"unix:{self.socket_path}")
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait()
            self._server = None
        self.socket_path.unlink(missing_ok=True)

    def __enter__(self) -> SdsServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def rotate(self, secrets: WorkloadSecrets) -> None:
        """New certificates (Istio rotates before expiry): every open stream gets them at a new version."""
        with self._lock:
            self.secrets, self.version = secrets, self.version + 1
            for stream in self._streams:
                stream.put(None)

    def _response(self, names: list[str], context: grpc.ServicerContext) -> discovery_pb2.DiscoveryResponse:
        try:
            resources = [any_pb2.Any(type_url=SECRET_TYPE, value=envoy_secret(name, self.secrets).SerializeToString()) for name in names]
        except KeyError as error:
            context.abort(grpc.StatusCode.NOT_FOUND, error.args[0])
        return discovery_pb2.DiscoveryResponse(version_info=str(self.version), type_url=SECRET_TYPE, resources=resources, nonce=f"{self.version}-{'.'.join(names)}")

    def FetchSecrets(self, request: discovery_pb2.DiscoveryRequest, context: grpc.ServicerContext) -> discovery_pb2.DiscoveryResponse:  # noqa: N802 (gRPC's name)
        return self._response(list(request.resource_names), context)

    def StreamSecrets(self, request_iterator: Iterator[discovery_pb2.DiscoveryRequest],  # noqa: N802 (gRPC's name)
                      context: grpc.ServicerContext) -> Iterator[discovery_pb2.DiscoveryResponse]:
        events: queue.Queue = queue.Queue()
        with self._lock:
            self._streams.append(events)

        def read() -> None:
            try:
                for request in request_iterator:
                    events.put(request)
            except grpc.RpcError:  # the client cancelled: the stream is over
                pass
            events.put(StopIteration)

        threading.Thread(target=read, daemon=True).start()
        names: list[str] = []
        sent: tuple[int, tuple[str, ...]] | None = None
        try:
            while context.is_active():
                event = events.get()
                if event is StopIteration:
                    return
                if event is not None:
                    names = list(event.resource_names)
                if names and sent != (self.version, tuple(names)):
                    sent = (self.version, tuple(names))
                    yield self._response(names, context)
        finally:
            with self._lock:
                self._streams.remove(events)
