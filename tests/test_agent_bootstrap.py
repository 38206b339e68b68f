"""meshlab's Envoy bootstrap: a well-formed envoy.config.bootstrap.v3.Bootstrap, and, on the upstream
stage, the same node, admin, ADS, static clusters, listeners and stats matcher as the bootstrap the real
pilot-agent writes (run without Envoy: its ``binaryPath`` is a script that copies the ``-c`` file)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2
from envoy.config.route.v3 import route_pb2
from google.protobuf import json_format
from upstream_programs import program_path

from meshlab.agent.bootstrap import ProxyNode, bootstrap, bootstrap_json
from meshlab.identity.authority import TrustDomainAuthority
from meshlab.identity.spiffeid import TrustDomain, parse_id
from meshlab.upstream.source import cached_source
from meshlab.upstream.versions import ISTIO

#: with three of the ISTIO_META_* the injector sets (the others: POD_PORTS, NODE_NAME, OWNER)
NODE = ProxyNode(pod="web-1", namespace="shop", ip="10.0.0.5", service_account="web",
                 meta={"INTERCEPTION_MODE": "REDIRECT", "WORKLOAD_NAME": "web", "APP_CONTAINERS": "web,worker"})


def test_the_node_id_is_istios_four_parts():
    assert NODE.id == "sidecar~10.0.0.5~web-1.shop~shop.svc.cluster.local"
    assert NODE.cluster == "web.shop"  # the workload's name
    assert ProxyNode(pod="web-1", namespace="shop", ip="10.0.0.5").cluster == "istio-proxy.shop"


def test_the_bootstrap_json_parses_back_into_envoys_message():
    parsed = json_format.Parse(bootstrap_json(NODE), bootstrap_pb2.Bootstrap())
    assert parsed == bootstrap(NODE)
    assert parsed.dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name == "xds-grpc"
    assert {c.name for c in parsed.static_resources.clusters} == {"prometheus_stats", "agent", "sds-grpc", "xds-grpc"}


def test_a_misspelt_field_is_refused_by_envoys_schema():
    with pytest.raises(json_format.ParseError, match="admin_port"):
        json_format.ParseDict({"admin_port": 15000}, bootstrap_pb2.Bootstrap())


FAKE_ENVOY = """import shutil, sys
args = sys.argv[1:]
shutil.copy(args[args.index("-c") + 1], sys.argv[0] + ".json")
"""


def canonical(section: dict, message) -> dict:
    """A section of bootstrap JSON as Envoy's message reads it (defaults such as protocol TCP dropped)."""
    return json_format.MessageToDict(json_format.ParseDict(section, message), preserving_proto_field_name=True)


def real_bootstrap(tmp_path: Path) -> dict:
    """The real pilot-agent's bootstrap for NODE: run in a fresh network namespace (so no host address
    lands in INSTANCE_IPS and its 15020 binds nowhere shared), with file-mounted workload certificates
    (no CA), controlPlaneAuthPolicy NONE (no istiod root certificate) and a fake Envoy."""
    agent = program_path("pilot-agent")
    istio = cached_source(ISTIO)
    if istio is None:
        pytest.skip(f"Istio's source is not in the Go module cache (fix: go mod download {ISTIO.path}@{ISTIO.version})")
    template = istio / "tools/packaging/common/envoy_bootstrap.json"  # what the istio-proxy image has at ./var/lib/istio/envoy
    (tmp_path / "var/lib/istio/envoy").mkdir(parents=True)
    (tmp_path / "var/lib/istio/envoy/envoy_bootstrap_tmpl.json").write_bytes(template.read_bytes())
    certs = tmp_path / "var/run/secrets/workload-spiffe-credentials"
    certs.mkdir(parents=True)
    authority = TrustDomainAuthority(TrustDomain("cluster.local"))
    chain, key = authority.sign_x509_svid(parse_id("spiffe://cluster.local/ns/shop/sa/web"), dt.timedelta(hours=1)).pem_files()
    (certs / "cert-chain.pem").write_bytes(chain)
    (certs / "key.pem").write_bytes(key)
    (certs / "root-cert.pem").write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in authority.x509_bundle()))
    fake = tmp_path / "fake-envoy"
    fake.write_text(f"#!{sys.executable}\n{FAKE_ENVOY}")
    fake.chmod(0o755)
    env = {"PATH": os.environ["PATH"], "INSTANCE_IP": NODE.ip, "POD_NAME": NODE.pod, "POD_NAMESPACE": NODE.namespace,
           "SERVICE_ACCOUNT": NODE.service_account, "ISTIO_META_CLUSTER_ID": NODE.cluster_id, "ISTIO_META_MESH_ID": NODE.mesh_id,
           **{f"ISTIO_META_{key}": value for key, value in NODE.meta.items()},
           "PROXY_CONFIG": json.dumps({"discoveryAddress": "127.0.0.1:15012", "controlPlaneAuthPolicy": "NONE", "binaryPath": str(fake)})}
    done = subprocess.run(["unshare", "--net", "sh", "-c", f'ip link set lo up && exec "{agent}" proxy sidecar'],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    written = Path(f"{fake}.json")
    if not written.exists():
        raise AssertionError(f"pilot-agent wrote no bootstrap (exit {done.returncode}): {done.stderr[-1500:]}")
    return json.loads(written.read_text())


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the real pilot-agent runs in its own network namespace: needs root")
    return real_bootstrap(tmp_path_factory.mktemp("pilot-agent"))


@pytest.fixture(scope="module")
def ours():
    return json.loads(bootstrap_json(NODE))


@pytest.mark.upstream
def test_the_node_is_the_real_agents(real, ours):
    assert ours["node"]["id"] == real["node"]["id"]
    assert ours["node"]["cluster"] == real["node"]["cluster"]
    real_meta = real["node"]["metadata"]
    for key, value in ours["node"]["metadata"].items():
        if key == "ISTIO_VERSION":  # the build says 1.30.3+<commit>
            assert real_meta[key].startswith(value + "+")
        else:
            assert real_meta[key] == value, key
    # what the real agent adds that meshlab leaves out: its ProxyConfig, and flags meshlab's sidecar has no use for
    assert set(real_meta) - set(ours["node"]["metadata"]) == {"PROXY_CONFIG", "METADATA_DISCOVERY", "ENVOY_SKIP_DEPRECATED_LOGS"}


@pytest.mark.upstream
@pytest.mark.parametrize("section", ["admin", "dynamic_resources"])
def test_admin_and_ads_are_the_real_agents(real, ours, section):
    mine, theirs = ours[section], real[section]
    for key, value in mine.items():
        assert theirs[key] == value, f"{section}.{key}"


@pytest.mark.upstream
def test_the_static_clusters_and_listeners_are_the_real_agents(real, ours):
    theirs = {c["name"]: c for c in real["static_resources"]["clusters"]}
    for cluster in ours["static_resources"]["clusters"]:
        real_cluster = canonical(theirs.pop(cluster["name"]), cluster_pb2.Cluster())
        for key, value in cluster.items():
            assert real_cluster[key] == value, f"{cluster['name']}.{key}"
    assert theirs == {}
    real_listeners = {listener["name"]: listener for listener in real["static_resources"]["listeners"]}
    assert set(real_listeners) == {listener["name"] for listener in ours["static_resources"]["listeners"]}
    for listener in ours["static_resources"]["listeners"]:
        real_listener = real_listeners[listener["name"]]
        assert canonical(real_listener["address"], address_pb2.Address()) == listener["address"]
        real_manager = real_listener["filter_chains"][0]["filters"][0]["typed_config"]
        manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
        assert canonical(real_manager["route_config"], route_pb2.RouteConfiguration()) == manager["route_config"]
        assert real_manager["stat_prefix"] == manager["stat_prefix"]
        assert real_manager["http_filters"][-1] == manager["http_filters"][-1]  # the router (the real 15090 compresses first)


@pytest.mark.upstream
def test_the_stats_matcher_and_tags_are_the_real_agents(real, ours):
    assert ours["stats_config"]["stats_matcher"] == real["stats_config"]["stats_matcher"]
    real_tags = real["stats_config"]["stats_tags"]
    assert all(tag in real_tags for tag in ours["stats_config"]["stats_tags"])
