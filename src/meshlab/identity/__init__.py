"""Zero-trust identity as SPIFFE defines it and SPIRE implements it.

    spiffeid     SPIFFE IDs and trust domains, with go-spiffe's rules and error texts
    authority    a trust domain's CA and JWT key: X509-SVIDs, JWT-SVIDs, bundles, verification
    entries      registration entries and selectors; subset matching
    attestation  who is calling: peer credentials, PID-reuse guard, unix and k8s selectors
    server       SPIRE's server side: node attestation (join token, PSAT), minting for attested agents
    workloadapi  the Workload API's schema (messages and service), built from the spec
    agent        SPIRE's agent: the Workload API on a Unix socket, rotation pushed on open streams
    mtls         mutual TLS with X509-SVIDs and authorization by SPIFFE ID
"""
