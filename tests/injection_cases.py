"""Pods with Istio's traffic annotations and the capture each asks for (istio-init's args once injected)."""

from __future__ import annotations

from meshlab.intercept import CaptureConfig

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "httpbin", "namespace": "default", "labels": {"app": "httpbin"}},
       "spec": {"serviceAccountName": "httpbin", "containers": [{"name": "httpbin", "image": "mccutchen/go-httpbin:v2.15.0", "ports": [{"containerPort": 8080}]}]}}
#: What an injected pod gets without annotations: istio-init's args in Istio's injection template.
INJECTED = CaptureConfig(proxy_port="15001", inbound_capture_port="15006", proxy_uid="1337", inbound_interception_mode="REDIRECT",
                         outbound_ip_ranges_include="*", inbound_ports_include="*", inbound_ports_exclude="15090,15021,15020")
ANNOTATIONS = [
    ({}, {}),
    ({"traffic.sidecar.istio.io/excludeInboundPorts": "9090"}, {"inbound_ports_exclude": "15090,15021,9090,15020"}),
    ({"traffic.sidecar.istio.io/includeInboundPorts": "8080,8443"}, {"inbound_ports_include": "8080,8443"}),
    ({"traffic.sidecar.istio.io/excludeOutboundPorts": "5432,6379"}, {"outbound_ports_exclude": "5432,6379"}),
    ({"traffic.sidecar.istio.io/includeOutboundPorts": "3306"}, {"outbound_ports_include": "3306"}),
    ({"traffic.sidecar.istio.io/includeOutboundIPRanges": "10.96.0.0/12"}, {"outbound_ip_ranges_include": "10.96.0.0/12"}),
    ({"traffic.sidecar.istio.io/excludeOutboundIPRanges": "169.254.169.254/32"}, {"outbound_ip_ranges_exclude": "169.254.169.254/32"}),
    ({"sidecar.istio.io/interceptionMode": "TPROXY"}, {"inbound_interception_mode": "TPROXY"}),
    ({"traffic.sidecar.istio.io/excludeInterfaces": "eth1"}, {"exclude_interfaces": "eth1"}),
    ({"traffic.sidecar.istio.io/kubevirtInterfaces": "net1"}, {"reroute_virtual_interfaces": "net1"}),
]
