"""Envoy's data-plane model as data: the parts of Envoy's configuration a mesh's sidecar runs by.

meshlab has no Envoy binary (none can be had here); its lab sidecar runs what this package describes,
in Envoy's own terms and field names, so that a reader who reads the lab's configuration can read
Envoy's (``istioctl proxy-config``) next.

    listener     which filter chain of a listener takes a connection (Envoy's FilterChainManager)
    httpfilter   the HTTP filter chain's contract: Headers, LocalReply, StreamInfo, HttpFilter, FilterStream
    http1        HTTP/1.1 on both sides of a proxy (h11): what the gateway and the sidecar share
    accesslog    access log lines from Envoy's command operators; Istio's default formats
    configdump   an admin /config_dump from xDS resources, and istioctl proxy-config's tables read from one
"""
