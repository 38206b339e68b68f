"""Could pilot-agent be merged into Envoy? The agent's jobs, one by one: what each needs, what Envoy's own
API offers for it, and what stands in the way. The answer the table gives: Envoy could take over parts
(DNS answers, a readiness path, gRPC credentials), but not the jobs that happen before Envoy exists or
after it must stop (writing its bootstrap, draining and killing it), nor the ones that turn one request
into several (merging three metric sources, turning a tcpSocket probe into an HTTP status).

Sources: Istio 1.30 (istio.io/istio master of 2026-08-26) as named per row; Envoy's API from
go-control-plane envoy v1.38.0 (the generated .pb.go files carry the protos' comments).

    AgentJob    one job: what it needs, what Envoy has, what is missing, sources
    JOBS        the table, in the order the agent does them in a pod's life
    table_text  the table as text for a notebook (one block per job)
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass


@dataclass(frozen=True)
class AgentJob:
    job: str
    needs: str
    envoy_has: str
    missing: str
    sources: str


JOBS = (
    AgentJob("bootstrap", "write Envoy's config file before Envoy starts: node id and metadata from the pod's env and downward API files",
             "nothing: Envoy reads the file it is given with -c",
             "a process that runs before Envoy (the config cannot describe its own making)",
             "pkg/bootstrap/config.go, pkg/envoy/proxy.go (args: -c etc/istio/proxy/envoy-rev.json)"),
    AgentJob("certificates (SDS + CA client)", "a private key and CSR made in the pod, a gRPC client to istiod's CA authenticated by the pod's "
             "service-account JWT, rotation before expiry, then SDS to Envoy",
             "an SDS client only: Envoy asks for secrets by name and uses what it is sent",
             "a CSR/CA client: Envoy consumes certificates, it does not obtain them",
             "security/pkg/nodeagent/cache, security/pkg/nodeagent/sds/sdsservice.go; go-control-plane extensions/transport_sockets/tls/v3"),
    AgentJob("xDS proxy", "one authenticated gRPC connection to istiod; it also carries the DNS name table (NDS) and rewrites Wasm "
             "ECDS resources to local files after fetching OCI images",
             "its own ADS gRPC client with call credentials (e.g. STS); Wasm remote code by HTTP with a sha256",
             "OCI image pulls with pull secrets, and NDS (an Istio-only type) has no consumer in Envoy",
             "pkg/istio-agent/xds_proxy.go, pkg/wasm; go-control-plane config/core/v3/grpc_service.pb.go, extensions/wasm/v3"),
    AgentJob("DNS proxy", "a DNS server on 15053 (UDP and TCP) answering from istiod's name table with Kubernetes' alternate names, "
             "forwarding the rest to resolv.conf's servers",
             "the UDP DNS filter (envoy.filters.udp.dns_filter: inline table, forwarding via c-ares)",
             "TCP DNS, the name table pushed by istiod, Istio's search-domain CNAMEs: the parts are there, the data path is not",
             "pkg/dns/client/dns.go; go-control-plane extensions/filters/udp/dns_filter/v3"),
    AgentJob("health probes", "an HTTP server with Kubernetes probe semantics: the app probed from 127.0.0.6 by httpGet, tcpSocket or grpc, "
             "a redirect answered 200, a failure 500",
             "the HTTP health_check filter (answers from cluster health or passes through)",
             "per-request probing of the app with the kubelet's prober kinds and status mapping",
             "pilot/cmd/pilot-agent/status/server.go, pkg/kube/inject/app_probe.go; go-control-plane extensions/filters/http/health_check/v3"),
    AgentJob("metrics merge", "one scrape answering agent + Envoy + app metrics concatenated, in the app's format, a failed source left out",
             "a route to one upstream (the bootstrap's 15090 listener forwards /stats/prometheus to the admin)",
             "fan-out to several upstreams and concatenation of their bodies",
             "pilot/cmd/pilot-agent/status/server.go handleStats"),
    AgentJob("drain and supervision", "turn the kubelet's SIGTERM into /drain_listeners, a wait (terminationDrainDuration or until no "
             "connections), then kill Envoy; restart-free config reloads",
             "the admin endpoints the agent calls (/drain_listeners, /stats)",
             "a supervisor outside the process being drained and killed",
             "pkg/envoy/agent.go, pkg/envoy/admin.go"),
)


def table_text(jobs: tuple[AgentJob, ...] = JOBS) -> str:
    """The table as plain text blocks (narrow enough for a notebook's 100 columns)."""
    def field(label: str, text: str) -> str:
        return textwrap.fill(text, width=100, initial_indent=f"  {label:<11} ", subsequent_indent=" " * 14)

    return "\n\n".join("\n".join([job.job.upper(), field("needs:", job.needs), field("Envoy has:", job.envoy_has),
                                   field("missing:", job.missing), field("sources:", job.sources)]) for job in jobs)
