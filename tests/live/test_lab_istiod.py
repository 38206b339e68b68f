"""A live lab registered with a real API server and served by Istio's own istiod: pods stored with the
lab's IPs and Running status, injected by istiod's webhook (called by the API server) when their
namespace asks for it, services and EndpointSlices istiod turns into xDS for the lab's endpoints; and
``lab down`` or ``cleanup`` after SIGKILL leaves none of the control plane's processes or files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter

import pytest
import yaml
from live.host import cleanup_after_kill_9
from upstream_programs import program_path

from meshlab.intercept import build_rules
from meshlab.intercept.compare import compare
from meshlab.kind.observe import injected_capture, iptables_state_from_init_log, parse_table
from meshlab.lab import Lab, PodSpec
from meshlab.lab.netns import LabError, LabUsageError
from meshlab.lab.spec import APP_PORT
from meshlab.lab.state import read_state, state_dir
from meshlab.lab.istiod import LAB_PROGRAMS

pytestmark = [pytest.mark.live, pytest.mark.upstream, pytest.mark.skipif(os.geteuid() != 0, reason="the live lab needs root here")]

GRPC_PORT = 7070
GREETER = "greeter.grpc.svc.cluster.local"


def programs() -> dict[str, str]:
    return {name: program_path(name) for name in LAB_PROGRAMS}


@pytest.fixture(scope="module")
def plane():
    from meshlab.lab.istiod import LabIstiod

    specs = [PodSpec("web", k8s_namespace="shop", service_account="web", labels={"version": "v1"}),
             PodSpec("client", k8s_namespace="shop"), PodSpec("plain", sidecar=False, k8s_namespace="legacy"),
             PodSpec("grpcc", sidecar=False, proxyless=True, k8s_namespace="grpc", ports=()),
             *(PodSpec(f"greet{n}", sidecar=False, proxyless=True, k8s_namespace="grpc", app="grpc", ports=(GRPC_PORT,),
                       labels={"app": "greeter", "version": f"v{n}"}) for n in (1, 2))]
    with LabIstiod(Lab("mlist"), programs()).up(specs) as registered:
        registered.add_service("web", "shop", 80, {"app": "web"})
        registered.add_service("greeter", "grpc", GRPC_PORT, {"app": "greeter"}, target_port=GRPC_PORT, protocol="grpc")
        yield registered


def test_the_lab_pods_are_stored_with_their_ips_and_running(plane):
    stored = json.loads(plane.kube.kubectl("get", "pods", "-A", "-o", "json"))["items"]
    seen = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in stored}
    assert set(seen) == {("shop", "web"), ("shop", "client"), ("legacy", "plain"), ("grpc", "grpcc"), ("grpc", "greet1"), ("grpc", "greet2")}
    for name, pod in plane.lab.pods.items():
        status = seen[(pod.k8s_namespace, name)]["status"]
        assert (status["phase"], status["podIP"]) == ("Running", pod.ip)
    assert seen[("shop", "web")]["spec"]["serviceAccountName"] == "web"
    namespaces = json.loads(plane.kube.kubectl("get", "namespaces", "-o", "json"))["items"]
    labels = {n["metadata"]["name"]: n["metadata"].get("labels", {}) for n in namespaces}
    assert labels["shop"].get("istio-injection") == "enabled" and "istio-injection" not in labels["legacy"]
    assert labels["grpc"].get("istio-injection") == "enabled"


def test_the_api_server_has_istiods_webhook_inject_the_sidecar_pods_only(plane):
    web, plain = plane.pod("web"), plane.pod("plain")
    # Kubernetes >= 1.29 has native sidecars, and Istio 1.30 injects istio-proxy as one: an init container
    # that keeps running (restartPolicy Always), started after istio-init and before the app
    assert [c["name"] for c in web["spec"]["initContainers"]] == ["istio-init", "istio-proxy"]
    assert web["spec"]["initContainers"][1]["restartPolicy"] == "Always"
    # decided from the pod's Node's kubelet version (>= 1.33), not for want of a node
    assert "not found in cluster" not in (plane.istiod.folder / "istiod.log").read_text()
    assert [c["name"] for c in web["spec"]["containers"]] == ["app"]
    assert web["metadata"]["annotations"]["sidecar.istio.io/status"]
    assert "initContainers" not in plain["spec"] and [c["name"] for c in plain["spec"]["containers"]] == ["app"]


def test_the_kernel_holds_meshlabs_rendering_of_the_rules_the_real_istio_init_made(plane):
    injected = plane.injected_rules("web")
    # the pod was made by its injected istio-init, run as itself: pilot-agent istio-iptables with the injected arguments
    saved = {pod["name"]: pod for pod in read_state(plane.lab.state_dir).pods}
    assert plane.lab.pod("web").sidecar and "istio-iptables" in plane.pod("web")["spec"]["initContainers"][0]["args"]
    # its capture is the injected one (the lab's state says so), not the lab's default sidecar pod's
    assert saved["web"]["capture"] == injected_capture(plane.pod("web")).istio_fields() != PodSpec("web").capture.istio_fields()
    kernel = plane.lab.iptables_save("web")
    differences = compare(injected, kernel)
    assert differences == [], "\n".join(map(str, differences))
    # its log, as `kubectl logs -c istio-init` would show it, ends with the kernel's state (the kind stage's parser)
    logged = iptables_state_from_init_log(plane.lab.logs("web", "init"))
    assert compare(logged, kernel) == [] and compare(injected, logged) == []
    # what the injector asks for beyond the lab's own default sidecar pod: the proxy's ports stay reachable
    # from outside (Envoy's Prometheus 15090, the agent's health 15021 and merged metrics 15020)
    beyond = compare(build_rules(PodSpec("web").capture).restore_text(4), injected)
    assert [(d.chain, d.found) for d in beyond] == [
        ("ISTIO_INBOUND", f"-p tcp -m tcp --dport {port} -j RETURN") for port in (15090, 15021, 15020)]


def test_istios_own_istio_iptables_renders_the_injected_arguments_as_meshlab_does(plane):
    from meshlab.upstream.iptables import IstioIptables, meshlab_rendering

    capture = injected_capture(plane.pod("web"))
    with IstioIptables(program_path("pilot-agent"), "mlisu") as real:
        theirs = real.dry_run(capture)
    assert theirs.returncode == 0 and theirs.text == meshlab_rendering(capture)


def test_istiod_serves_the_labs_service_with_the_pods_endpoints(plane):
    from meshlab.upstream.istiod import proxyless_node
    from meshlab.xds.pushcount import settle
    from meshlab.xds.walk import walk

    settle(plane.istiod, quiet_s=1.0)
    node, metadata = proxyless_node("client", "shop", plane.lab.pod("client").ip)
    chain = walk(plane.istiod.xds_address, node, "web.shop.svc.cluster.local:80", metadata)
    assert chain[0].names == ("web.shop.svc.cluster.local:80",)
    assert chain[-1].next_names == (f"{plane.lab.pod('web').ip}:{APP_PORT}",)


def test_a_control_plane_killed_with_its_python_is_removed_by_cleanup():
    names = json.dumps(programs())
    cleanup_after_kill_9(f"from meshlab.lab import Lab\nfrom meshlab.lab.istiod import LabIstiod\n"
                         f"LabIstiod(Lab('mlisk'), {names}).up(1)", "mlisk")


def meshlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "meshlab.cli", *args], capture_output=True, text=True, timeout=300, check=False)


def test_the_cli_starts_a_lab_served_by_istiod_shows_it_and_takes_it_down():
    for program in programs().values():
        assert os.path.exists(program)  # built: the command finds them as the test did
    try:
        up = meshlab("lab", "up", "--prefix", "mlisc", "--pods", "2", "--control-plane", "istiod", "--debounce-after", "50ms", "--debounce-max", "2s")
        assert up.returncode == 0, up.stderr
        assert "served by the real istiod" in up.stdout
        status = json.loads(meshlab("lab", "status", "--prefix", "mlisc", "--json").stdout)
        plane = status["control_plane"]
        kubectl = [programs()["kubectl"], "--kubeconfig", plane["kubeconfig"]]
        pods = json.loads(subprocess.run([*kubectl, "get", "pods", "-o", "json"], capture_output=True, text=True, check=True).stdout)["items"]
        assert {p["metadata"]["name"]: p["status"]["podIP"] for p in pods} == {p["name"]: p["ip"] for p in status["pods"]}
        assert all("istio-proxy" in [c["name"] for c in p["spec"]["initContainers"]] for p in pods)
        assert "control plane: istiod" in meshlab("lab", "status", "--prefix", "mlisc").stdout
        started = read_state(state_dir("mlisc")).processes
        assert {owner for owner, _ in started} >= {"istiod"}
        (istiod,) = [process for owner, process in started if process.role == "istiod"]
        environment = dict(item.split("=", 1) for item in open(f"/proc/{istiod.pid}/environ").read().split("\0") if "=" in item)
        assert (environment["PILOT_DEBOUNCE_AFTER"], environment["PILOT_DEBOUNCE_MAX"]) == ("50ms", "2s")
    finally:
        down = meshlab("lab", "down", "--prefix", "mlisc")
    assert down.returncode == 0, down.stderr
    assert not any(process.alive() for _, process in started) and not state_dir("mlisc").exists()


def test_the_cli_refuses_istiod_with_the_ebpf_datapath_and_makes_nothing():
    refused = meshlab("lab", "up", "--prefix", "mlisb", "--control-plane", "istiod", "--datapath", "ebpf")
    assert refused.returncode == 2
    assert "--control-plane istiod injects sidecars" in refused.stderr and "--datapath iptables" in refused.stderr
    assert not state_dir("mlisb").exists()


def test_the_lab_nodes_are_registered_with_the_kubelet_version_istiods_injector_reads(plane):
    nodes = json.loads(plane.kube.kubectl("get", "nodes", "-o", "json"))["items"]
    assert [(n["metadata"]["name"], n["status"]["nodeInfo"]["kubeletVersion"]) for n in nodes] == [("mlist-node0", "v1.35.4")]


def test_a_proxyless_pod_gets_istios_grpc_agent_template_no_rules_and_the_agents_bootstrap(plane):
    stored = plane.pod("grpcc")
    containers = {c["name"]: c for c in stored["spec"]["containers"]}
    assert list(containers) == ["app", "istio-proxy"] and "initContainers" not in stored["spec"]
    assert {e["name"]: e.get("value") for e in containers["app"]["env"]}["GRPC_XDS_BOOTSTRAP"] == "/etc/istio/proxy/grpc-bootstrap.json"
    assert {e["name"]: e.get("value") for e in containers["istio-proxy"]["env"]}["ISTIO_META_GENERATOR"] == "grpc"
    assert "ISTIO_" not in plane.lab.iptables_save("grpcc")
    boot = json.loads(plane.bootstrap_path("grpcc").read_text())
    assert boot["node"]["id"] == f"sidecar~{plane.lab.pod('grpcc').ip}~grpcc.grpc~grpc.svc.cluster.local"
    assert boot["xds_servers"][0]["server_uri"] == f"unix://{plane.agent_folder('grpcc') / 'XDS'}"
    with pytest.raises(LabError, match="pod web is not proxyless"):
        plane.bootstrap_path("web")


def test_a_proxyless_client_in_a_pod_follows_istiods_routes_to_the_pods_behind_the_service(plane):
    from meshlab.upstream.istiod import version_routing
    from meshlab.xds.harness import collect, run_clients
    from meshlab.xds.pushcount import settle

    in_pod, target = plane.lab.pod("grpcc").namespace.argv, f"{GREETER}:{GRPC_PORT}"
    for weights in ({"v1": 75, "v2": 25}, {"v1": 0, "v2": 100}):
        plane.kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(version_routing(GREETER, "grpc", ["v1", "v2"], weights)))
        settle(plane.istiod, quiet_s=1.0)
        (client,) = run_clients(plane.bootstrap_path("grpcc"), [target], 400, interval_ms=2, wait=False, within=in_pod)
        time.sleep(0.5)
        status = plane.istiod.proxy_status()
        (records,) = collect([client])
        answered = Counter(r.get("backend") or r.get("error") for r in records)
        # istiod serves the pod's client by its node id; the sidecar pods have no proxy here (meshlab's stands in)
        (row,) = parse_table(status)  # the kind stage's reader of istioctl's table, on the real one
        assert (row["NAME"], row["CLUSTER"], row["ISTIOD"], row["VERSION"]) == ("grpcc.grpc", "Kubernetes", "istiod-meshlab", "1.30.3")
        assert row["SUBSCRIBED TYPES"].startswith("4 (") and set(row["SUBSCRIBED TYPES"][3:-1].split(",")) == {"LDS", "RDS", "CDS", "EDS"}
        if weights["v1"]:
            assert set(answered) == {"greet1", "greet2"} and 0.65 <= answered["greet1"] / 400 <= 0.85, answered
        else:
            assert answered == {"greet2": 400}


def test_a_service_lists_the_pods_its_selector_picks_through_the_real_endpointslice_controller(plane):
    slices = json.loads(plane.kube.kubectl("-n", "grpc", "get", "endpointslices", "-l", "kubernetes.io/service-name=greeter", "-o", "json"))
    (piece,) = slices["items"]
    assert piece["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "endpointslice-controller.k8s.io"
    listed = {e["targetRef"]["name"]: (e["addresses"], e["nodeName"]) for e in piece["endpoints"]}
    assert listed == {name: ([plane.lab.pod(name).ip], "mlist-node0") for name in ("greet1", "greet2")}
    assert piece["ports"] == [{"name": "grpc", "port": GRPC_PORT, "protocol": "TCP"}]
    with pytest.raises(LabUsageError, match=r"selector \{'app': 'nothing'\} selects no pod of namespace grpc .*greet1: \{'app': 'greeter'"):
        plane.add_service("none", "grpc", 80, {"app": "nothing"})
