"""The upstream stage: the upstream projects' own sources and programs, at the versions the book
pins, fetched from their published Go modules into Go's caches (never into the repository), so that
tests and chapters check meshlab against the real thing.

    versions   the pinned modules and programs, what each stands for, the Go they need
    source     where a pinned module's source is (downloading it with ``go mod download``)
    build      go build of a pinned program into meshlab's cache; find a built or released one
    run        running a program, its failure carrying the program's own words
    iptables   pilot-agent's istio-iptables in a scratch network namespace
    injection  istioctl's sidecar injection of a pod
    analyze    istioctl analyze on resources, without a cluster
    spire      a real SPIRE server and agent on loopback
    egctl      Envoy Gateway's translation of Gateway API resources to xDS
"""
