"""Five eras of proxies, each with the idea that defined it and representative proxies.

The eras follow how a proxy's behaviour was expressed: fixed configuration
files, then configuration languages, then embedded scripting, then proxies
built for clusters that change all the time, and finally proxies driven
entirely over an API by a control plane (the cloud-native era, where the
service mesh data plane lives). Years are first public releases.

    Proxy   a representative proxy: first release year and where that is stated
    Era     an era: its idea and its proxies
    ERAS    the five eras in order
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Proxy:
    name: str
    year: int
    note: str
    source: str


@dataclass(frozen=True)
class Era:
    name: str
    idea: str
    proxies: tuple[Proxy, ...]


ERAS: tuple[Era, ...] = (
    Era(
        "configuration files",
        "behaviour is a static file; change it and reload",
        (
            Proxy("Apache httpd (mod_proxy)", 1995, "web server with proxy modules", "Apache HTTP Server project history (first release 1995)"),
            Proxy("Squid", 1996, "caching forward proxy", "Squid project history (1996)"),
            Proxy("HAProxy", 2001, "TCP/HTTP load balancer", "HAProxy project history (first release 2001)"),
        ),
    ),
    Era(
        "configuration languages",
        "a small language decides per request",
        (
            Proxy("NGINX", 2004, "event-driven server; configuration as nested blocks", "nginx.org: first public release 2004"),
            Proxy("Varnish", 2006, "VCL compiled to C for each request's path", "Varnish Cache 1.0 release, 2006"),
        ),
    ),
    Era(
        "scripting",
        "a general-purpose language runs inside the proxy",
        (
            Proxy("OpenResty", 2011, "NGINX with embedded LuaJIT", "OpenResty project history (2011)"),
            Proxy("Kong", 2015, "API gateway built on OpenResty", "Kong open-source release, 2015"),
        ),
    ),
    Era(
        "cluster era",
        "endpoints come from service discovery and change all the time",
        (
            Proxy("Traefik", 2015, "reads routes from Docker and Kubernetes labels", "Traefik project history (2015)"),
            Proxy("Linkerd 1.x", 2016, "Finagle-based per-host proxy (Scala, JVM)", "Linkerd release notes (0.1, Feb 2016)"),
        ),
    ),
    Era(
        "cloud-native era",
        "the proxy is configured only over an API (xDS) by a control plane",
        (
            Proxy("Envoy", 2016, "xDS APIs, hot restart, L7 filters; Istio's data plane; a CNCF project since 13 Sep 2017",
                  "Lyft engineering blog, 'Announcing Envoy', Sep 2016; CNCF announcement of Envoy's acceptance, 13 Sep 2017"),
            Proxy("linkerd2-proxy", 2018, "Rust micro-proxy for Linkerd 2", "linkerd.io, Linkerd 2.0 GA, Sep 2018"),
            Proxy("ztunnel", 2022, "per-node Rust L4 proxy of Istio's ambient mode", "istio.io blog, 'Introducing Ambient Mesh', Sep 2022"),
        ),
    ),
)
