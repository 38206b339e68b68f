"""The agent's DNS proxy, asked by dnspython's stub resolver (search domains and ndots as a pod's
resolv.conf sets them) over UDP and TCP: service names are answered by the proxy with Istio's
expansions, AAAA of an IPv4 service is NOERROR and empty, other names are forwarded to an upstream
resolver on loopback, and SERVFAIL comes back when no upstream answers."""

from __future__ import annotations

import socketserver
import struct
import threading

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver
import pytest
from ports import free_port

from meshlab.agent.dns import DnsProxy, LookupTable, NameInfo, resolv_conf
from meshlab.loopthread import LoopThread

NAMESPACE = "shop"
RESOLV_CONF = """# what the kubelet writes for a pod in namespace shop
nameserver 10.96.0.10
search shop.svc.cluster.local svc.cluster.local cluster.local
options ndots:5
"""
SERVICES = {
    "web.shop.svc.cluster.local": NameInfo(("10.96.1.10",), shortname="web", namespace="shop"),
    "ratings.books.svc.cluster.local": NameInfo(("10.96.2.20", "fd00::20"), shortname="ratings", namespace="books"),
    "api.partner.example": NameInfo(("203.0.113.5",), registry="External"),
    "pool.shop.svc.cluster.local": NameInfo(tuple(f"10.96.3.{n}" for n in range(1, 61)), shortname="pool", namespace="shop"),
}
#: what the "cluster DNS" upstream knows: a name the mesh does not
UPSTREAM = {"mirror.debian.example.": "198.51.100.9"}


class ClusterDns:
    """The upstream resolver, on loopback, UDP and TCP: A records for UPSTREAM, NXDOMAIN for every other
    name (as a cluster's DNS says of names it does not have). ``asked`` counts the queries it got."""

    def __init__(self) -> None:
        self.asked = 0
        owner = self

        def answer(wire: bytes) -> bytes:
            owner.asked += 1
            request = dns.message.from_wire(wire)
            response = dns.message.make_response(request)
            name = request.question[0].name.to_text().lower()
            if name in UPSTREAM and request.question[0].rdtype == dns.rdatatype.A:
                response.answer.append(dns.rrset.from_text(name, 60, "IN", "A", UPSTREAM[name]))
            elif name not in UPSTREAM:
                response.set_rcode(dns.rcode.NXDOMAIN)
            return response.to_wire()

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                sock.sendto(answer(data), self.client_address)

        class Tcp(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                (length,) = struct.unpack("!H", self.rfile.read(2))
                reply = answer(self.rfile.read(length))
                self.wfile.write(struct.pack("!H", len(reply)) + reply)

        self.udp = socketserver.ThreadingUDPServer(("127.0.0.1", 0), Udp)
        self.port = self.udp.server_address[1]
        self.tcp = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Tcp)
        for server in (self.udp, self.tcp):
            threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        for server in (self.udp, self.tcp):
            server.shutdown()
            server.server_close()


@pytest.fixture(scope="module")
def servers():
    loop = LoopThread("dns-test")
    loop.start()
    _, search = resolv_conf(RESOLV_CONF)
    upstream = ClusterDns()
    agent = loop.call(DnsProxy(LookupTable.build(SERVICES, NAMESPACE, f"{NAMESPACE}.svc.cluster.local", search), [("127.0.0.1", upstream.port)], port=free_port()).start())
    yield agent, upstream
    loop.call(agent.stop())
    upstream.stop()
    loop.stop()


def stub(agent: DnsProxy, tcp: bool = False) -> dns.resolver.Resolver:
    """A pod's resolver whose nameserver is the agent (what the DNS capture achieves for port 53)."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port = ["127.0.0.1"], agent.port
    _, resolver.search = resolv_conf(RESOLV_CONF)
    resolver.search = [dns.name.from_text(domain) for domain in resolver.search]
    resolver.ndots, resolver.lifetime = 5, 5
    return resolver


def test_resolv_conf_is_read_for_servers_and_search():
    assert resolv_conf(RESOLV_CONF) == (["10.96.0.10"], ["shop.svc.cluster.local", "svc.cluster.local", "cluster.local"])


@pytest.mark.parametrize("name", ["web", "web.shop", "web.shop.svc", "web.shop.svc.cluster.local."])
@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_a_service_in_the_pods_namespace_resolves_by_every_kubernetes_spelling(servers, name, tcp):
    agent, _ = servers
    answer = stub(agent).resolve(name, "A", search=True, tcp=tcp)
    assert [r.address for r in answer] == ["10.96.1.10"]
    assert answer.response.flags & dns.flags.AA


def test_the_first_search_expansion_is_a_cname_to_the_service(servers):
    agent, upstream = servers
    before = upstream.asked
    request = dns.message.make_query("web.shop.shop.svc.cluster.local.", "A")  # "web.shop" with the first search domain
    response = dns.query.udp(request, "127.0.0.1", port=agent.port, timeout=5)
    assert [(rrset.rdtype, rrset[0].to_text()) for rrset in response.answer] == [(dns.rdatatype.CNAME, "web.shop."), (dns.rdatatype.A, "10.96.1.10")]
    assert upstream.asked == before


def test_a_full_name_is_not_expanded_so_its_first_search_query_goes_upstream(servers):
    agent, upstream = servers  # Istio expands no host that already ends in the first search domain
    before = upstream.asked
    assert [r.address for r in stub(agent).resolve("web.shop.svc.cluster.local", "A", search=True)] == ["10.96.1.10"]
    assert upstream.asked == before + 3  # the name + each of the 3 search domains, NXDOMAIN upstream, then the name itself


def test_a_short_name_of_another_namespace_is_not_the_agents(servers):
    agent, _ = servers
    before = agent.forwarded
    with pytest.raises(dns.resolver.NXDOMAIN):
        stub(agent).resolve("ratings", "A", search=True)
    assert agent.forwarded > before  # each search expansion went upstream, which does not know it either
    assert [r.address for r in stub(agent).resolve("ratings.books", "A", search=True)] == ["10.96.2.20"]


def test_aaaa_of_an_ipv4_service_is_noerror_and_empty(servers):
    agent, _ = servers
    response = dns.query.udp(dns.message.make_query("web.shop.svc.cluster.local.", "AAAA"), "127.0.0.1", port=agent.port, timeout=5)
    assert response.rcode() == dns.rcode.NOERROR and response.answer == [] and response.flags & dns.flags.AA
    assert [r.address for r in stub(agent).resolve("ratings.books.svc.cluster.local.", "AAAA")] == ["fd00::20"]


def test_an_answer_too_big_for_udp_is_truncated_and_the_resolver_retries_over_tcp(servers):
    agent, _ = servers  # 60 A records do not fit 512 bytes
    response = dns.query.udp(dns.message.make_query("pool.shop.svc.cluster.local.", "A"), "127.0.0.1", port=agent.port, timeout=5)
    assert response.flags & dns.flags.TC and response.answer == []
    answer = stub(agent).resolve("pool.shop.svc.cluster.local.", "A")  # dnspython retries over TCP on TC
    assert len(answer) == 60


def test_an_external_registry_host_resolves_only_as_written(servers):
    agent, _ = servers
    assert [r.address for r in stub(agent).resolve("api.partner.example.", "A")] == ["203.0.113.5"]
    response = dns.query.udp(dns.message.make_query("api.shop.", "A"), "127.0.0.1", port=agent.port, timeout=5)
    assert response.rcode() == dns.rcode.NXDOMAIN  # forwarded, and the upstream does not know it


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_other_names_are_forwarded_to_the_upstream_resolver(servers, tcp):
    agent, upstream = servers
    before = upstream.asked
    answer = stub(agent).resolve("mirror.debian.example.", "A", tcp=tcp)
    assert [r.address for r in answer] == ["198.51.100.9"]
    assert not answer.response.flags & dns.flags.AA
    assert upstream.asked == before + 1


def test_no_upstream_answering_is_servfail():
    loop = LoopThread("dns-servfail")
    loop.start()
    try:
        agent = loop.call(DnsProxy(LookupTable(), [("127.0.0.1", free_port())], port=free_port(), timeout=0.5).start())
        response = dns.query.udp(dns.message.make_query("nowhere.example.", "A"), "127.0.0.1", port=agent.port, timeout=5)
        assert response.rcode() == dns.rcode.SERVFAIL
        loop.call(agent.stop())
    finally:
        loop.stop()


def test_a_proxy_without_upstreams_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="nameserver"):
        DnsProxy(LookupTable(), [])


def test_a_malformed_ip_in_the_name_table_is_refused():
    with pytest.raises(ValueError, match="10.0.0.300"):
        LookupTable.build({"x.shop.svc.cluster.local": NameInfo(("10.0.0.300",), shortname="x", namespace="shop")}, "shop", "shop.svc.cluster.local", [])
