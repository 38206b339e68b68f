"""SPIRE's agent: attests its node to the server, then serves the SPIFFE Workload API on a Unix socket.

The socket is open to every local user, as SPIRE's is: *who* may have an identity is decided by
attestation, not by file permissions. Python's gRPC server cannot tell who is on the other end of
a Unix socket (``context.peer()`` is just ``unix:``), so the agent owns the public socket itself:
at accept it reads the caller's SO_PEERCRED and start time, then relays the bytes to its gRPC
server on a private loopback port. The relay's source port names the connection there, and the
servicer maps each call back to the caller recorded at accept.

Every call must carry ``workload.spiffe.io: true`` (a browser or an SSRF'd HTTP client cannot add
it) or gets INVALID_ARGUMENT; a caller whose selectors match no entry gets PERMISSION_DENIED.
X509-SVIDs are renewed at half their lifetime and pushed on every open FetchX509SVID stream.

    Agent          node attestation (join token), the Workload API, rotation; asyncio
    AgentThread    the same on its own loop thread, for tests, notebooks and the CLI
    Decision       one attestation: caller, selectors, identities granted (the agent's log)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path

import grpc
from google.protobuf import json_format

from meshlab.identity.attestation import AttestationError, Caller, PodAttestor, unix_selectors
from meshlab.identity.authority import JwtSvidError, X509Svid, new_key, spiffe_id_of, utcnow
from meshlab.identity.entries import RegistrationEntry, Selector, load_entries
from meshlab.identity.server import SpireServer
from meshlab.identity.spiffeid import SpiffeIdError, TrustDomain
from meshlab.identity.workloadapi import HEADER, METHODS, SERVICE, messages
from meshlab.loopthread import LoopThread
from meshlab.tasks import TaskSet

NO_IDENTITY = "no identity issued"
MISSING_HEADER = "security header missing from request"


@dataclass(frozen=True)
class Decision:
    """One attestation, as the agent logs it: the caller, every selector found for it, and the
    identities granted (none, with the reason, when refused)."""

    pid: int
    uid: int
    selectors: tuple[str, ...]
    granted: tuple[str, ...]
    refused: str | None = None


class Agent:
    def __init__(self, server: SpireServer, socket_path: Path, pods: PodAttestor | None = None, rotation_check_s: float = 0.1,
                 discover_workload_path: bool = False) -> None:
        self.server, self.socket_path, self.pods = server, Path(socket_path), pods
        self.discover_workload_path = discover_workload_path
        self.rotation_check_s = rotation_check_s
        self.id = None
        self.svid: X509Svid | None = None
        self.decisions: list[Decision] = []
        self.rotations = 0
        self._svids: dict[RegistrationEntry, tuple[X509Svid, dt.datetime]] = {}  # entry -> (SVID, renew at)
        self._callers: dict[int, Caller] = {}  # relay source port -> caller seen at accept
        self._changed: asyncio.Condition | None = None
        self._grpc: grpc.aio.Server | None = None
        self._relay: asyncio.AbstractServer | None = None
        self._tasks = TaskSet()

    # -- node attestation -----------------------------------------------------------------------
    def attest(self, join_token: str) -> None:
        """Prove the node to the server with a join token; until then the agent serves nobody."""
        key = new_key()
        certificate = self.server.attest_join_token(join_token, key.public_key())
        self.id = spiffe_id_of(certificate)
        self.svid = X509Svid(self.id, (certificate,), key)

    # -- serving --------------------------------------------------------------------------------
    async def start(self) -> None:
        if self.id is None:
            raise RuntimeError("the agent has not attested its node: call attest(join_token) first")
        self._changed = asyncio.Condition()
        self._grpc = grpc.aio.server()
        self._grpc.add_generic_rpc_handlers([self._handlers()])
        port = self._grpc.add_insecure_port("127.0.0.1:0")
        await self._grpc.start()
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        self.socket_path.unlink(missing_ok=True)
        self._relay = await asyncio.start_unix_server(lambda r, w: self._accept(r, w, port), path=str(self.socket_path))
        os.chmod(self.socket_path, 0o777)  # every local user may ask; attestation decides
        self._tasks.spawn(self._rotate())

    async def stop(self) -> None:
        if self._relay:
            self._relay.close()
        await self._tasks.cancel()
        if self._grpc:
            await self._grpc.stop(grace=None)
        self.socket_path.unlink(missing_ok=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int) -> None:
        caller = Caller.at_accept(writer.get_extra_info("socket"))
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            writer.close()
            return
        source = up_writer.get_extra_info("sockname")[1]
        self._callers[source] = caller
        try:
            await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        finally:
            self._callers.pop(source, None)

    # -- attestation ----------------------------------------------------------------------------
    def selectors(self, caller: Caller) -> set[Selector]:
        found = unix_selectors(caller, self.discover_workload_path)
        if self.pods is not None:
            found |= self.pods.selectors(caller)
        return found

    async def _identities(self, context) -> list[RegistrationEntry]:
        """The entries matching the caller of this call, or the call aborted with the reason."""
        await _require_header(context)
        caller = self._callers.get(int(context.peer().rsplit(":", 1)[1]))
        if caller is None:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "caller unknown: connect through the agent's socket")
        credentials = caller.credentials
        try:
            caller.check()
            selectors = self.selectors(caller)
        except AttestationError as error:
            self.decisions.append(Decision(credentials.pid, credentials.uid, (), (), str(error)))
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{NO_IDENTITY}: {error}")
        entries = [entry for entry in self.server.entries_for(self.id) if entry.matches(selectors)]
        self.decisions.append(Decision(credentials.pid, credentials.uid, tuple(sorted(map(str, selectors))),
                                       tuple(str(entry.spiffe_id) for entry in entries), None if entries else NO_IDENTITY))
        if not entries:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, NO_IDENTITY)
        return entries

    # -- X509-SVIDs and rotation ----------------------------------------------------------------
    def _svid_for(self, entry: RegistrationEntry) -> X509Svid:
        cached = self._svids.get(entry)
        if cached is None or _due(cached[1]):
            key = new_key()  # the agent's key; the server signs only its public half
            certificate = self.server.mint_x509_svid(self.id, entry, key.public_key())
            # renew at half the lifetime, counted from now (the certificate's notBefore is backdated)
            cached = self._svids[entry] = (X509Svid(entry.spiffe_id, (certificate,), key), utcnow() + dt.timedelta(seconds=entry.ttl_s / 2))
        return cached[0]

    async def _rotate(self) -> None:
        """Renew every cached SVID at half its lifetime and wake the open streams."""
        while True:
            await asyncio.sleep(self.rotation_check_s)
            stale = [entry for entry, (_, renew_at) in self._svids.items() if _due(renew_at)]
            if stale:
                for entry in stale:
                    self._svid_for(entry)
                self.rotations += len(stale)
                async with self._changed:
                    self._changed.notify_all()

    def _x509_response(self, entries: list[RegistrationEntry]):
        bundle = self.server.authority.x509_bundle_der()
        svids = [self._svid_for(entry) for entry in entries]
        return messages["X509SVIDResponse"](svids=[messages["X509SVID"](spiffe_id=str(svid.spiffe_id), x509_svid=svid.chain_der(),
                                                                       x509_svid_key=svid.key_der(), bundle=bundle) for svid in svids])

    # -- the Workload API -----------------------------------------------------------------------
    async def fetch_x509_svid(self, request, context):
        entries = await self._identities(context)
        sent = None
        while True:
            response = self._x509_response(entries)
            current = tuple(svid.x509_svid for svid in response.svids)
            if current != sent:
                sent = current
                yield response
            async with self._changed:
                await self._changed.wait()

    async def fetch_x509_bundles(self, request, context):
        await _require_header(context)
        yield messages["X509BundlesResponse"](bundles={str(self.server.trust_domain.id): self.server.authority.x509_bundle_der()})
        await asyncio.Event().wait()  # bundles do not change here; keep the stream open as SPIRE does

    async def fetch_jwt_svid(self, request, context):
        if not request.audience:
            await _require_header(context)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "audience must be specified")
        entries = await self._identities(context)
        if request.spiffe_id:
            entries = [entry for entry in entries if str(entry.spiffe_id) == request.spiffe_id]
            if not entries:
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{NO_IDENTITY}: the caller has no identity {request.spiffe_id}")
        return messages["JWTSVIDResponse"](svids=[messages["JWTSVID"](spiffe_id=str(entry.spiffe_id), svid=self.server.mint_jwt_svid(self.id, entry, list(request.audience)))
                                                  for entry in entries])

    async def fetch_jwt_bundles(self, request, context):
        await _require_header(context)
        yield messages["JWTBundlesResponse"](bundles={str(self.server.trust_domain.id): json.dumps(self.server.authority.jwks()).encode()})
        await asyncio.Event().wait()

    async def validate_jwt_svid(self, request, context):
        await _require_header(context)
        for field, value in (("audience", request.audience), ("svid", request.svid)):
            if not value:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{field} must be specified")
        try:
            spiffe_id, claims = self.server.authority.validate_jwt_svid(request.svid, request.audience)
        except (JwtSvidError, SpiffeIdError) as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        response = messages["ValidateJWTSVIDResponse"](spiffe_id=str(spiffe_id))
        json_format.ParseDict(claims, response.claims)
        return response

    def _handlers(self) -> grpc.GenericRpcHandler:
        behaviours = {"FetchX509SVID": self.fetch_x509_svid, "FetchX509Bundles": self.fetch_x509_bundles, "FetchJWTSVID": self.fetch_jwt_svid,
                      "FetchJWTBundles": self.fetch_jwt_bundles, "ValidateJWTSVID": self.validate_jwt_svid}
        handlers = {}
        for method, (request, response, streaming) in METHODS.items():
            make = grpc.unary_stream_rpc_method_handler if streaming else grpc.unary_unary_rpc_method_handler
            handlers[method] = make(behaviours[method], request_deserializer=messages[request].FromString, response_serializer=messages[response].SerializeToString)
        return grpc.method_handlers_generic_handler(SERVICE, handlers)


def _due(renew_at: dt.datetime) -> bool:
    return utcnow() >= renew_at


async def _require_header(context) -> None:
    if (HEADER[0], HEADER[1]) not in tuple(context.invocation_metadata() or ()):
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, MISSING_HEADER)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


def attested_agent(trust_domain: TrustDomain, socket_path: Path, entries: Path | str | list, pods: PodAttestor | None = None,
                   discover_workload_path: bool = False) -> Agent:
    """A SPIRE-style server and one agent that has attested to it with a join token (node attestation
    first, as SPIRE's agent does), the server holding ``entries`` parented to that agent (an EntryError
    names a bad entry). The agent is not serving yet: ``AgentThread(agent).start()`` or ``await agent.start()``."""
    server = SpireServer(trust_domain)
    agent = Agent(server, socket_path, pods, discover_workload_path=discover_workload_path)
    agent.attest(server.create_join_token())
    server.entries = load_entries(entries, agent.id)
    return agent


class AgentThread:
    """An Agent on its own loop thread: ``start()`` after attesting, ``stop()`` when done."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.runner = LoopThread("meshlab-spire-agent")

    def start(self) -> AgentThread:
        self.runner.start()
        self.runner.call(self.agent.start())
        return self

    def stop(self) -> None:
        self.runner.call(self.agent.stop())
        self.runner.stop()

    def decisions(self) -> list[Decision]:
        return self.runner.call(lambda: list(self.agent.decisions))

    def __enter__(self) -> AgentThread:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
