"""The agent's DNS proxy on 15053: answers the mesh's service names itself and forwards the rest.

Istio's capture rules send a pod's port-53 traffic here (meshlab.intercept: ``--redirect-dns``,
AGENT_DNS_PORT). The agent learns the names from istiod (the NameTable of pkg/dns/proto/nds.proto: host
-> IPs, registry, short name, namespace) and answers for them authoritatively, so an app can resolve a
ServiceEntry host no cluster DNS knows, and the pod's search-domain walk stops after one query. Facts
from Istio 1.30 pkg/dns/client/dns.go:

- A Kubernetes service ``name.ns.svc.<domain>`` is also known as ``name.ns`` and ``name.ns.svc``, and as
  ``name`` only in the proxy's own namespace (generateAltHosts); other registries' hosts only as written.
- Each known name followed by the first search domain (``name.ns.svc.cluster.local.<ns>.svc.cluster.local``,
  what a resolver with ndots:5 asks first) is a CNAME to the name (buildDNSAnswers).
- A known name asked for a type it has no address of (AAAA of an IPv4-only service) gets NOERROR with no
  answers, never NXDOMAIN (issue istio/istio#31250: clients asking A and AAAA at once would give up).
  Only A and AAAA are answered; any other type, and any unknown name, goes to the upstream resolvers.
- Answers are authoritative, TTL 30 s (defaultTTLInSeconds); upstream answers are passed back as they are,
  SERVFAIL if no upstream answers; the upstream resolvers are resolv.conf's nameservers.

    NameInfo        one host's IPs and where it comes from (Istio's NameTable_NameInfo)
    LookupTable     the names the proxy answers for: build(table, namespace, domain, search), lookup(qtype, name)
    resolv_conf     (nameservers, search domains) from a resolv.conf text
    DnsProxy        UDP and TCP DNS server: local answers, else forwarded; start()/stop() on an asyncio loop
"""

from __future__ import annotations

import asyncio
import ipaddress
import struct
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from meshlab.tasks import TaskSet

DNS_PORT = 15053  # pkg/dns/client/dns.go: "localhost:15053"; meshlab.intercept.capture.AGENT_DNS_PORT
TTL = 30  # dns.go defaultTTLInSeconds: low, so a changed service IP is picked up soon
KUBERNETES = "Kubernetes"  # the registry name of Kubernetes services (pkg/config/constants provider.Kubernetes)


@dataclass(frozen=True)
class NameInfo:
    ips: tuple[str, ...]
    registry: str = KUBERNETES
    shortname: str = ""
    namespace: str = ""


def _fqdn(name: str) -> str:
    return name.lower() if name.endswith(".") else f"{name.lower()}."


class LookupTable:
    """Precomputed answers: names -> A and AAAA records, plus search-domain CNAMEs, as dns.go builds them."""

    def __init__(self) -> None:
        self.hosts: set[str] = set()
        self.v4: dict[str, list[str]] = {}
        self.v6: dict[str, list[str]] = {}
        self.cname: dict[str, str] = {}

    @classmethod
    def build(cls, table: dict[str, NameInfo], namespace: str, domain: str, search: list[str]) -> LookupTable:
        """``domain`` is the proxy's DNS domain (``<ns>.svc.cluster.local``); ``search`` the pod's search domains."""
        parts = domain.split(".")
        if parts and parts[0] == namespace:  # dns.go: only the ".svc.cluster.local" piece is kept
            parts = parts[1:]
        suffix = ".".join(parts)
        lookup = cls()
        for hostname, info in table.items():
            for address in info.ips:
                ipaddress.ip_address(address)  # a malformed IP is refused here, not served
            if info.registry == KUBERNETES and not hostname.endswith("."):
                names = {_fqdn(hostname)}
                if suffix and hostname.endswith(suffix):
                    names |= {f"{info.shortname}.{info.namespace}.", f"{info.shortname}.{info.namespace}.{parts[0]}."}
                    if info.namespace == namespace:
                        names.add(f"{info.shortname}.")
            else:
                names = {_fqdn(hostname)}
            v4 = [a for a in info.ips if ipaddress.ip_address(a).version == 4]
            v6 = [a for a in info.ips if ipaddress.ip_address(a).version == 6]
            for name in names:
                name = name.lower()
                lookup.hosts.add(name)
                if v4:
                    lookup.v4[name] = v4
                if v6:
                    lookup.v6[name] = v6
                if search and not name.endswith(_fqdn(search[0])):
                    expanded = name + _fqdn(search[0])
                    if expanded not in names:
                        lookup.cname[expanded] = name
                        lookup.hosts.add(expanded)
        return lookup

    def lookup(self, qtype: int, name: str) -> tuple[list[dns.rrset.RRset], bool]:
        """The records for ``name`` (a CNAME first if it was a search-domain expansion) and whether the name is
        known at all; ``(_, False)`` means: ask upstream. Wildcard hosts (``*.example.com``) match any label below."""
        name = _fqdn(name)
        question = name
        found = name in self.hosts
        if not found:
            labels = name.rstrip(".").split(".")
            for index in range(len(labels)):
                wildcard = "*." + ".".join(labels[index + 1:]) + "."
                if wildcard in self.hosts:
                    name, found = wildcard, True
                    break
        if not found or qtype not in (dns.rdatatype.A, dns.rdatatype.AAAA):
            return [], False
        out = []
        if name in self.cname:
            target = self.cname[name]
            out.append(dns.rrset.from_text(question, TTL, dns.rdataclass.IN, dns.rdatatype.CNAME, target))
            question, name = target, target
        addresses = (self.v4 if qtype == dns.rdatatype.A else self.v6).get(name, [])
        if addresses:
            out.append(dns.rrset.from_text_list(question, TTL, dns.rdataclass.IN, qtype, addresses))
        return (out if addresses else []), True


def resolv_conf(text: str) -> tuple[list[str], list[str]]:
    """``nameserver`` and ``search`` lines of a resolv.conf (the last ``search`` wins, as in resolv.conf(5))."""
    servers, search = [], []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            servers.append(fields[1])
        elif fields and fields[0] == "search":
            search = fields[1:]
    return servers, search


def _wire(response: dns.message.Message, request: dns.message.Message, tcp: bool) -> bytes:
    """The response within the client's size (512 bytes over UDP without EDNS): too big, it goes out
    truncated (TC set, no records), and the client asks again over TCP, as dns.go's Truncate makes it."""
    limit = 65535 if tcp else (max(request.payload, 512) if request.edns >= 0 else 512)
    try:
        return response.to_wire(max_size=limit)
    except dns.exception.TooBig:
        response.answer, response.authority, response.additional = [], [], []
        response.flags |= dns.flags.TC
        return response.to_wire()


class DnsProxy:
    """Answers from ``table`` or forwards to ``upstreams`` ((ip, port) pairs, tried in order), on UDP and
    TCP at ``host``:``port``. ``answered`` and ``forwarded`` count queries, so a lab can show who replied."""

    def __init__(self, table: LookupTable, upstreams: list[tuple[str, int]], host: str = "127.0.0.1", port: int = DNS_PORT, timeout: float = 5) -> None:
        if not upstreams:
            raise ValueError("a DNS proxy needs at least one upstream resolver (resolv.conf's nameserver lines); none given")
        self.table, self.upstreams, self.host, self.port, self.timeout = table, upstreams, host, port, timeout
        self.answered = self.forwarded = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._replies = TaskSet()  # one per UDP query

    async def start(self) -> DnsProxy:
        loop = asyncio.get_running_loop()
        proxy, replies = self, self._replies

        class Udp(asyncio.DatagramProtocol):
            def connection_made(self, transport) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, address) -> None:
                replies.spawn(self.reply(data, address))

            async def reply(self, data: bytes, address) -> None:
                response = await proxy.resolve(data, tcp=False)
                if response is not None:
                    self.transport.sendto(response, address)

        self._udp, _ = await loop.create_datagram_endpoint(Udp, local_addr=(self.host, self.port))
        self._tcp = await asyncio.start_server(self._serve_tcp, self.host, self.port, reuse_address=True)
        return self

    async def stop(self) -> None:
        if self._udp:
            self._udp.close()
        await self._replies.cancel()
        if self._tcp:
            self._tcp.close()
            await self._tcp.wait_closed()

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                response = await self.resolve(await reader.readexactly(length), tcp=True)
                if response is None:
                    break
                writer.write(struct.pack("!H", len(response)) + response)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def resolve(self, wire: bytes, tcp: bool) -> bytes | None:
        try:
            request = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None  # not DNS: dropped, as a resolver would
        if not request.question:
            response = dns.message.make_response(request)
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire()
        question = request.question[0]
        answers, found = self.table.lookup(question.rdtype, question.name.to_text())
        if found:
            self.answered += 1
            response = dns.message.make_response(request)
            response.flags |= dns.flags.AA
            response.answer = answers  # empty: NOERROR with no data (the name exists, not this type)
            return _wire(response, request, tcp)
        self.forwarded += 1
        return await asyncio.to_thread(self._upstream, request, tcp)

    def _upstream(self, request: dns.message.Message, tcp: bool) -> bytes:
        for host, port in self.upstreams:
            try:
                query = dns.query.tcp if tcp else dns.query.udp
                return _wire(query(request, host, port=port, timeout=self.timeout), request, tcp)
            except (dns.exception.DNSException, OSError):
                continue
        response = dns.message.make_response(request)
        response.set_rcode(dns.rcode.SERVFAIL)
        return response.to_wire()
