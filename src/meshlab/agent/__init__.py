"""pilot-agent's jobs in a pod, each as Istio does it, beside meshlab's proxy (chapter 07).

In Istio the istio-proxy container runs two programs: Envoy, and pilot-agent, which starts Envoy and
does everything Envoy cannot do for itself. The modules, one job each:

    bootstrap   the Envoy bootstrap the agent writes: node id and metadata, admin, xds-grpc, sds-grpc, 15090/15021
    sds         the SDS server on a Unix socket: ``default`` (SVID chain + key) and ``ROOTCA``
    dns         the DNS proxy on 15053: the mesh's names answered, the rest forwarded
    probes      the injector's probe rewrite, and the agent's probing of the app
    metrics     the merged Prometheus scrape (agent + proxy + app)
    status      the status server on 15020: /healthz/ready, /app-health/..., /stats/prometheus
    drain       graceful drain on SIGTERM, as a function of Istio's settings
    jobs        "could pilot-agent be merged into Envoy?": per job, what it needs and what Envoy has
    __main__    ``python -m meshlab.agent``: all of them as one process beside a pod's proxy
"""
