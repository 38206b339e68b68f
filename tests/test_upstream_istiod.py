"""Istio's own istiod against a real Kubernetes API server on loopback (etcd, kube-apiserver, kubectl
and pilot-discovery, all built by the upstream stage): the control plane comes up, istiod reads its
settings and ServiceEntries written with kubectl, pushes as meshlab's debounce simulator predicts for
five timelines, and serves gRPC's own xDS client, whose traffic a VirtualService shifts."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from upstream_programs import program_path

from meshlab.kind.manifests import service_entries
from meshlab.kind.observe import parse_table
from meshlab.upstream.istiod import Istiod, loopback_service, proxyless_node
from meshlab.upstream.kube import KubeControlPlane
from meshlab.xds.debounce import DebounceOptions
from meshlab.xds.echo import start_backend
from meshlab.xds.harness import collect, run_clients
from meshlab.xds.pushcount import EXPERIMENT_LABEL, TIMELINES, burst, settle
from meshlab.xds.server import bootstrap
from meshlab.xds.walk import walk

pytestmark = pytest.mark.upstream

DEFAULTS = DebounceOptions(100, 10_000, True)


class Istiods:
    """One API server for the module; one istiod at a time, restarted when a test asks for other settings."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.kube = KubeControlPlane(program_path("kube-apiserver"), program_path("etcd"), program_path("kubectl"), folder / "kube")
        self.kube.__enter__()
        self.running: Istiod | None = None

    def get(self, settings: DebounceOptions = DEFAULTS) -> Istiod:
        if self.running is not None and self.running.settings != settings:
            self.running.__exit__()
            self.running = None
        if self.running is None:
            istiod = Istiod(program_path("pilot-discovery"), program_path("istioctl"), self.kube, self.folder / "istiod", settings)
            self.running = istiod.__enter__()
        return self.running

    def close(self) -> None:
        if self.running is not None:
            self.running.__exit__()
        self.kube.__exit__()


@pytest.fixture(scope="module")
def istiods():
    folder = Path(tempfile.mkdtemp(prefix="meshlab-istiod-"))
    plane = Istiods(folder)
    try:
        yield plane
    finally:
        plane.close()
        shutil.rmtree(folder, ignore_errors=True)


def test_the_api_server_is_kubernetes_1_35_4_and_stores_what_kubectl_writes(istiods):
    kube = istiods.kube
    versions = json.loads(kube.kubectl("version", "-o", "json"))
    assert versions["serverVersion"]["gitVersion"] == versions["clientVersion"]["gitVersion"] == "v1.35.4"
    kube.kubectl("create", "namespace", "mlstore")
    kube.kubectl("-n", "mlstore", "create", "configmap", "note", "--from-literal=said=hello")
    assert kube.kubectl("-n", "mlstore", "get", "configmap", "note", "-o", "jsonpath={.data.said}") == "hello"
    assert "system:masters" in kube.kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.groups}")


def test_istiod_is_ready_with_the_settings_it_was_given_and_writes_its_ca(istiods):
    istiod = istiods.get(DEFAULTS)
    assert istiod.debounce() == DEFAULTS
    names = {sample.name for sample in istiod.metrics()}
    assert {"pilot_debounce_time_count", "pilot_pushcontext_init_seconds_count", "pilot_services"} <= names
    secret = json.loads(istiods.kube.kubectl("-n", "istio-system", "get", "secret", "istio-ca-secret", "-o", "json"))
    assert secret["type"] == "istio.io/ca-root" and "ca-cert.pem" in secret["data"]


@pytest.mark.parametrize(("settings", "count", "gap_ms"), [pytest.param(*row[1:], id=row[0]) for row in TIMELINES])
def test_istiods_debounced_pushes_are_what_the_simulator_predicts(istiods, settings, count, gap_ms):
    istiod = istiods.get(settings)
    istiods.kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mlburst"}}))
    result = burst(istiod, service_entries(count, "mlburst", prefix=f"b{count}x{gap_ms:g}", labels=EXPERIMENT_LABEL), gap_ms)
    print(result.report())
    assert result.settings == settings
    assert result.agrees, result.report()
    assert istiods.kube.kubectl("-n", "mlburst", "get", "serviceentries", "-o", "name") == ""


def test_grpcs_own_xds_client_calls_through_the_real_istiod_and_a_virtualservice_shifts_it(istiods, tmp_path):
    istiod = istiods.get(DEFAULTS)
    servers = {version: start_backend(f"greeter-{version}") for version in ("v1", "v2")}
    try:
        kube = istiods.kube
        kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mlgrpc"}}))
        kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(loopback_service("greeter.example.com", "mlgrpc", 7070, {v: port for v, (_, port) in servers.items()})))
        settle(istiod, quiet_s=1.0)
        node, metadata = proxyless_node("client", "mlgrpc")
        port = int(istiod.xds_address.rsplit(":", 1)[1])
        bootstrap(port, node_id=node, path=tmp_path / "bootstrap.json", metadata=metadata)
        target = ["greeter.example.com:7070"]
        chain = walk(istiod.xds_address, node, target[0], metadata)
        assert [(step.kind, step.names) for step in chain[:2]] == [
            ("LDS", ("greeter.example.com:7070",)), ("RDS", ("outbound|7070||greeter.example.com",))]
        assert chain[2].names == ("outbound|7070||greeter.example.com",)  # no VirtualService yet: the whole service
        assert sorted(chain[3].next_names) == sorted(f"127.0.0.1:{port}" for _, port in servers.values())
        before = run_clients(tmp_path / "bootstrap.json", target, 20)[0]
        assert {r.get("backend") for r in before} == {"greeter-v1", "greeter-v2"}, before[:3]
        kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(loopback_service("greeter.example.com", "mlgrpc", 7070, {v: port for v, (_, port) in servers.items()},
                                                                  {"v1": 0, "v2": 100})))
        settle(istiod, quiet_s=1.0)  # istiod has debounced the change and pushed it
        after = run_clients(tmp_path / "bootstrap.json", target, 20)[0]
        assert {r.get("backend") for r in after} == {"greeter-v2"}, after[:3]

        # while a client stays connected, the real istioctl asks istiod which proxies it serves
        staying = run_clients(tmp_path / "bootstrap.json", target, 10, interval_ms=500, wait=False)
        settle(istiod, quiet_s=1.0)
        said = istiod.proxy_status()
        rows = parse_table(said)
        assert [row["NAME"] for row in rows] == ["client.mlgrpc"], said
        assert (rows[0]["ISTIOD"], rows[0]["VERSION"], rows[0]["SUBSCRIBED TYPES"]) == ("istiod-meshlab", "1.30.3", "4 (CDS,LDS,EDS,RDS)"), said
        collect(staying)
    finally:
        for server, _ in servers.values():
            server.stop(grace=None)


def test_an_api_server_that_cannot_start_is_named_and_nothing_is_left(tmp_path):
    from meshlab.upstream.kube import KubeError

    plane = KubeControlPlane("/bin/false", program_path("etcd"), program_path("kubectl"), tmp_path / "kube")
    with pytest.raises(KubeError, match="kube-apiserver exited with 1; its log ends"):
        plane.__enter__()
    assert plane.processes == [] and not (tmp_path / "kube").exists()
