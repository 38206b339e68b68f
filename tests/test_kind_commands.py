"""Every command sequence of the kind stage, run against stub docker/kind/kubectl/istioctl that
record their arguments and replay recorded output (tests/kind_stubs.py); and the message each
failing step gives."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kind_stubs import StubTools

from meshlab.kind import experiments, istio, observe, stage
from meshlab.kind.cluster import KindCluster
from meshlab.kind.config import cluster_config
from meshlab.kind.runner import KindError, Runner
from meshlab.xds.debounce import DebounceOptions
from meshlab.xds.pushcount import NotSettled, predict_pushes

DATA = Path(__file__).parent / "data" / "kind"
POD = "httpbin-6d8c7b5f4-x2k9p"


@pytest.fixture
def tools(tmp_path):
    return StubTools(tmp_path)


@pytest.fixture
def cluster(tools, tmp_path):
    return KindCluster("meshlab", Runner(paths=tools.paths()), kubeconfig=tmp_path / "kubeconfig")


def test_create_makes_the_cluster_from_the_generated_config_and_waits_for_its_nodes(tools, cluster, tmp_path):
    tools.reply("kind", ["get", "clusters"], stderr="No kind clusters found.\n")
    assert cluster.create() is True
    calls = tools.calls()
    assert tools.commands() == [
        "kind get clusters",
        f"kind create cluster --name meshlab --config=- --kubeconfig {tmp_path}/kubeconfig",
        "kubectl wait --for=condition=Ready nodes --all --timeout=300s",
    ]
    assert yaml.safe_load(calls[1]["stdin"]) == cluster_config(name="meshlab")
    assert calls[2]["kubeconfig"] == str(tmp_path / "kubeconfig")  # never the reader's ~/.kube/config


def test_an_existing_cluster_is_reused_with_its_kubeconfig_exported(tools, cluster, tmp_path):
    tools.reply("kind", ["get", "clusters"], stdout="other\nmeshlab\n")
    assert cluster.create() is False
    assert tools.commands()[:2] == ["kind get clusters", f"kind export kubeconfig --name meshlab --kubeconfig {tmp_path}/kubeconfig"]
    assert not any(c.startswith("kind create") for c in tools.commands())


def test_a_failing_create_names_the_step_what_kind_said_and_the_fix(tools, cluster):
    tools.reply("kind", ["create"], stderr='ERROR: failed to create cluster: node(s) already exist for a cluster with the name "meshlab"\n', code=1)
    with pytest.raises(KindError) as caught:
        cluster.create()
    assert caught.value.step == "create cluster"
    assert 'exited with 1: ERROR: failed to create cluster: node(s) already exist' in caught.value.problem
    assert "kind delete cluster --name meshlab" in caught.value.fix


def test_a_new_cluster_whose_nodes_never_get_ready_is_deleted_and_inotify_named(tools, cluster, tmp_path):
    tools.reply("kubectl", ["wait"], stderr="error: timed out waiting for the condition on nodes/meshlab-worker\n", code=1)
    with pytest.raises(KindError, match="wait for nodes: .*timed out waiting for the condition on nodes/meshlab-worker; the new cluster meshlab was deleted again") as caught:
        cluster.create()
    assert "fs.inotify.max_user_watches=524288" in caught.value.fix
    assert tools.commands()[-1] == f"kind delete cluster --name meshlab --kubeconfig {tmp_path}/kubeconfig"


def test_a_reused_cluster_that_is_not_ready_is_left_alone(tools, cluster):
    tools.reply("kind", ["get", "clusters"], stdout="meshlab\n")
    tools.reply("kubectl", ["wait"], stderr="error: timed out waiting for the condition on nodes/meshlab-worker\n", code=1)
    with pytest.raises(KindError, match="wait for nodes") as caught:
        cluster.create()
    assert "deleted" not in caught.value.problem and not any(c.startswith("kind delete") for c in tools.commands())


def test_a_missing_tool_is_named_with_where_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(KindError, match="find cluster: kind is not installed") as caught:
        KindCluster("meshlab", Runner(), kubeconfig=tmp_path / "k").create()
    assert "kind >= v0.33.0" in caught.value.fix


def test_a_hanging_command_is_reported_with_its_timeout(tools, cluster, tmp_path):
    (tools.bin / "kind").write_text("#!/bin/sh\nsleep 5\n")
    with pytest.raises(KindError, match=r"`kind get clusters` did not finish within 1 s"):
        cluster.runner.run("find cluster", "kind", "get", "clusters", timeout=1)


@pytest.mark.parametrize(("mode", "waits"), [("sidecar", ["deploy/istiod"]), ("ambient", ["deploy/istiod", "ds/istio-cni-node", "ds/ztunnel"])])
def test_istio_install_uses_the_profile_and_waits_for_the_control_plane(tools, cluster, mode, waits):
    tools.reply("istioctl", ["version"], stdout="client version: 1.30.3\n")
    istio.install(cluster, mode, DebounceOptions(debounce_after_ms=50, debounce_max_ms=2000, enable_eds_debounce=False))
    profile = {"sidecar": "default", "ambient": "ambient"}[mode]
    assert tools.commands() == [
        "istioctl version --remote=false",
        f"istioctl install -y --set profile={profile} --set values.pilot.env.PILOT_DEBOUNCE_AFTER=50ms "
        "--set values.pilot.env.PILOT_DEBOUNCE_MAX=2s --set values.pilot.env.PILOT_ENABLE_EDS_DEBOUNCE=false",
        *[f"kubectl -n istio-system rollout status {w} --timeout=300s" for w in waits],
    ]


def test_another_istioctl_release_is_refused_before_installing(tools, cluster):
    tools.reply("istioctl", ["version"], stdout="client version: 1.24.2\n")
    with pytest.raises(KindError, match="istioctl is 1.24.2; the book follows Istio 1.30.3") as caught:
        istio.install(cluster, "sidecar")
    assert "ISTIO_VERSION=1.30.3" in caught.value.fix
    assert not any(c.startswith("istioctl install") for c in tools.commands())


def test_a_failed_install_says_where_to_look(tools, cluster):
    tools.reply("istioctl", ["version"], stdout="client version: 1.30.3\n")
    tools.reply("istioctl", ["install"], stderr="Error: failed to install manifests: errors occurred during operation\n", code=1)
    with pytest.raises(KindError, match="install Istio: .*errors occurred during operation") as caught:
        istio.install(cluster, "sidecar")
    assert "kubectl -n istio-system get pods" in caught.value.fix


def test_teardown_deletes_the_cluster_with_its_own_kubeconfig(tools, tmp_path):
    stage.teardown(Runner(paths=tools.paths()))
    assert tools.commands() == [f"kind delete cluster --name meshlab --kubeconfig {Path.home()}/.kube/kind-meshlab.yaml"]


def sidecar_pod_replies(tools: StubTools) -> None:
    tools.reply("kubectl", ["-n", "meshlab-sidecar", "get", "pods"], stdout=POD)
    tools.reply("kubectl", ["-n", "meshlab-sidecar", "get", "pod", POD], stdout=(DATA / "pod-httpbin-sidecar.json").read_text())
    tools.reply("kubectl", ["-n", "meshlab-sidecar", "logs", POD, "-c", "istio-init"], stdout=(DATA / "istio-init-1.25.log").read_text())
    kernel = (DATA / "pod-iptables-save.txt").read_text()  # read from the kernel, not from the log (README.md)
    tools.reply("kubectl", ["-n", "meshlab-sidecar", "debug", POD], stdout=kernel)
    tools.reply("docker", ["exec", "meshlab-worker2", "crictl"], stdout="4242\n")
    tools.reply("docker", ["exec", "meshlab-worker2", "sh", "-c"], stdout=kernel)


def test_a_sidecar_pods_rules_are_read_three_ways_and_compared(tools, cluster):
    sidecar_pod_replies(tools)
    comparisons = experiments.sidecar_rules(cluster, "meshlab-sidecar")
    assert [c.observed_from for c in comparisons] == ["the istio-init log", "kubectl debug --profile=netadmin", "the kernel (nsenter on the kind node)"]
    assert all(c.identical for c in comparisons), [c.report() for c in comparisons]
    assert comparisons[0].report() == f"{POD}: rules read from the istio-init log, compared with {comparisons[0].expected_from}: identical"
    assert comparisons[0].expected_from == "meshlab intercept istio-iptables --dry-run -p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x '' -b '*' -d 15090,15021,15020"
    shown = subprocess.run([sys.executable, "-m", "meshlab.cli", *shlex.split(comparisons[0].expected_from)[1:]], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "-A ISTIO_OUTPUT -j ISTIO_REDIRECT" in shown.stdout  # the command shown is one a reader can run
    debug, pid, save = tools.calls()[-3:]
    assert debug["args"][:7] == ["-n", "meshlab-sidecar", "debug", POD, "--profile=netadmin", "--image=docker.io/istio/proxyv2:1.30.3", "--quiet"]
    assert debug["args"][-4:] == ["sh", "-c", observe.SAVE_ANY_BACKEND, "sh"] and save["args"][:4] == ["exec", "meshlab-worker2", "sh", "-c"]
    assert " ".join(pid["args"]) == "exec meshlab-worker2 crictl inspect --output go-template --template {{.info.pid}} 4f1c2b7a9e0d4c3b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b"
    assert save["args"][-5:] == ["sh", "nsenter", "-t", "4242", "-n"]  # the PID passed as an argument, never into a shell line


def test_a_pid_that_is_not_a_number_is_refused(tools, cluster):
    tools.reply("docker", ["exec", "meshlab-worker2", "crictl"], stdout="4242; rm -rf /\n")  # earlier replies win
    sidecar_pod_replies(tools)
    pod_object = json.loads((DATA / "pod-httpbin-sidecar.json").read_text())
    with pytest.raises(observe.ObservationError, match="not a PID"):
        observe.node_iptables_save(cluster, pod_object)


def test_a_pod_whose_kernel_rules_differ_is_reported_by_chain(tools, cluster):
    tools.reply("docker", ["exec", "meshlab-worker2", "sh"], stdout="*nat\n:ISTIO_OUTPUT - [0:0]\n-A OUTPUT -j ISTIO_OUTPUT\nCOMMIT\n")  # earlier rules win
    sidecar_pod_replies(tools)
    from_log, from_debug, from_kernel = experiments.sidecar_rules(cluster, "meshlab-sidecar")
    assert from_log.identical and from_debug.identical and not from_kernel.identical
    assert all(d.found is None for d in from_kernel.differences) and {d.chain for d in from_kernel.differences} >= {"ISTIO_INBOUND", "ISTIO_REDIRECT"}


def test_an_ambient_pods_rules_are_compared_with_chapter_04(tools, cluster):
    tools.reply("kubectl", ["-n", "meshlab-ambient", "get", "pods"], stdout=POD)
    pod = (DATA / "pod-httpbin-sidecar.json").read_text()
    tools.reply("kubectl", ["-n", "meshlab-ambient", "get", "pod"], stdout=pod)
    tools.reply("docker", ["exec", "meshlab-worker2", "crictl"], stdout="77\n")
    saved = (DATA / "ambient-pod-iptables-save.txt").read_text()
    tools.reply("docker", ["exec", "meshlab-worker2", "sh"], stdout=saved)
    assert experiments.ambient_rules(cluster, "meshlab-ambient").identical
    without_dns = experiments.ambient_rules(cluster, "meshlab-ambient", redirect_dns=False).differences
    assert [str(d) for d in without_dns][:2] == [
        "nat:ISTIO_OUTPUT rule 2: unexpected: ! -o lo -p udp -m mark ! --mark 0x539/0xfff -m udp --dport 53 -j REDIRECT --to-ports 15053",
        "nat:ISTIO_OUTPUT rule 3: unexpected: ! -d 127.0.0.1/32 -p tcp -m tcp --dport 53 -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15053"]
    assert {(d.table, d.chain) for d in without_dns[2:]} == {("raw", "ISTIO_OUTPUT"), ("raw", "ISTIO_PRERT"), ("raw", "OUTPUT"), ("raw", "PREROUTING")}


def test_the_debounce_experiment_counts_istiods_pushes_and_asks_the_simulator(tools, cluster):
    tools.reply("kubectl", ["-n", "istio-system", "get", "deployment", "istiod"], stdout=(DATA / "deployment-istiod.json").read_text())
    tools.reply("kubectl", ["-n", "istio-system", "get", "pods"], stdout="istiod-7c9d8b6f5-wz4kq")
    metrics = ["get", "--raw", "/api/v1/namespaces/istio-system/pods/istiod-7c9d8b6f5-wz4kq:15014/proxy/metrics"]
    tools.reply("kubectl", metrics, stdout=(DATA / "istiod-metrics-after.txt").read_text(), after=("kubectl", ["apply"]))
    tools.reply("kubectl", metrics, stdout=(DATA / "istiod-metrics-before.txt").read_text())
    result = experiments.debounce_burst(cluster, "meshlab-sidecar", count=10, gap_ms=0, quiet_s=0.3)
    assert (result.measured_pushes, result.predicted_pushes) == (1, 1)
    assert result.settings == DebounceOptions(100, 10_000, True)
    applied = next(c for c in tools.calls() if c["args"][:1] == ["apply"])
    entries = list(yaml.safe_load_all(applied["stdin"]))
    assert [e["kind"] for e in entries] == ["ServiceEntry"] * 10
    assert tools.commands()[-1] == "kubectl -n meshlab-sidecar delete serviceentries -l meshlab.io/experiment=debounce --wait=true"
    assert "istiod pushed 1 time, the simulator predicts 1" in result.report()


def test_a_control_plane_that_never_settles_is_reported(tools, cluster):
    tools.reply("kubectl", ["-n", "istio-system", "get", "pods"], stdout="istiod-7c9d8b6f5-wz4kq")
    tools.reply("kubectl", ["get", "--raw"], stdout=[f"pilot_debounce_time_count {n}\n" for n in range(1, 200)])
    with pytest.raises(NotSettled, match="istiod kept pushing for 1 s; the debounce experiment needs a quiet cluster"):
        experiments.debounce_burst(cluster, "meshlab-sidecar", quiet_s=0.5, settle_timeout_s=1)


def test_a_workload_that_does_not_roll_out_says_where_to_look(tools, cluster):
    tools.reply("istioctl", ["version"], stdout="client version: 1.30.3\n")
    tools.reply("kubectl", ["-n", "meshlab-sidecar", "rollout", "status", "deploy/httpbin"], stderr='error: deployment "httpbin" exceeded its progress deadline\n', code=1)
    with pytest.raises(KindError, match='wait for httpbin: .*exceeded its progress deadline') as caught:
        stage.up(cluster, "sidecar")
    assert "kubectl -n meshlab-sidecar describe deploy/httpbin" in caught.value.fix


def test_spaced_changes_are_predicted_as_one_push_each():
    settings = DebounceOptions(100, 10_000, True)
    assert predict_pushes(settings, [0, 300, 600, 900, 1200]) == 5
    assert predict_pushes(settings, [0, 30, 60, 90]) == 1
    assert predict_pushes(DebounceOptions(100, 250, True), [i * 50 for i in range(20)]) > 1  # DEBOUNCE_MAX releases a busy batch


def test_a_chapter_runs_end_to_end_on_the_stubs(tools, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    tools.reply("istioctl", ["version"], stdout="client version: 1.30.3\n")
    sidecar_pod_replies(tools)
    headers = {"headers": {"Accept": ["*/*"], "Host": ["httpbin:8000"], "X-Forwarded-Client-Cert":
               ["By=spiffe://cluster.local/ns/meshlab-sidecar/sa/httpbin;Hash=0c5f;Subject=\"\";URI=spiffe://cluster.local/ns/meshlab-sidecar/sa/curl"]}}
    tools.reply("kubectl", ["-n", "meshlab-sidecar", "exec", "deploy/curl"], stdout=json.dumps(headers))
    run = stage.run("02", Runner(paths=tools.paths()))
    assert run.ran and run.agreed, run.text()
    assert len(run.findings) == 4 and all(line.endswith(": identical") for line in run.findings[:3])
    assert run.findings[3].endswith("the request crossed both sidecars over mTLS")
    steps = [line.split("  ")[0] for line in run.commands]
    assert steps[:5] == ["find cluster", "create cluster", "wait for nodes", "check istioctl", "install Istio"]
    assert tools.commands()[1].startswith("kind create cluster --name meshlab --config=- --kubeconfig " + str(tmp_path))


def test_a_request_that_skipped_the_sidecars_is_reported(tools, cluster):
    tools.reply("kubectl", ["-n", "meshlab-sidecar", "exec"], stdout=json.dumps({"headers": {"Host": ["httpbin:8000"]}}))
    crossed, seen = experiments.mesh_request(cluster, "meshlab-sidecar")
    assert not crossed and "no X-Forwarded-Client-Cert naming spiffe://cluster.local/ns/meshlab-sidecar/sa/curl" in seen
    tools.reply("kubectl", ["-n", "other"], stdout="<html>")
    with pytest.raises(observe.ObservationError, match="not the JSON expected"):
        experiments.mesh_request(cluster, "other")


def test_without_the_kind_stage_a_chapter_says_why_and_what_it_would_run(monkeypatch):
    from meshlab import doctor
    monkeypatch.setattr(doctor, "check_kind", lambda: doctor.StageReport(False, "docker is not installed", "install Docker"))
    run = stage.run("04")
    assert not run.ran and run.reason == "docker is not installed (fix: install Docker)"
    assert run.agreed is None, "no verdict without a run"
    assert [line.split("  ")[0] for line in run.commands[:2]] == ["find cluster", "create cluster"]
    assert run.text().startswith("kind stage not available here, so nothing was compared") and "docker" not in run.text()
    with pytest.raises(KindError, match="no kind section for chapter '99'"):
        stage.plan("99")


@pytest.mark.parametrize("settings", [DebounceOptions(), DebounceOptions(500, 1_500, False), DebounceOptions(0, 2_500.5, True)])
def test_debounce_settings_go_to_istiods_environment_and_are_read_back(settings):
    environment = settings.environment()
    assert set(environment) == {"PILOT_DEBOUNCE_AFTER", "PILOT_DEBOUNCE_MAX", "PILOT_ENABLE_EDS_DEBOUNCE"}
    assert observe.debounce_from_env(environment) == settings
    assert DebounceOptions().environment()["PILOT_DEBOUNCE_MAX"] == "10s"
