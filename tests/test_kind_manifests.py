"""The kind stage's configuration and manifests, validated offline: core resources against the
Kubernetes 1.35 schemas kubernetes-validate ships, the ServiceEntries against Istio's own CRD
schema (tests/data/kind/istio-crds), the kind Cluster against kind's v1alpha4 fields."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from meshlab.kind import config, manifests
from meshlab.kind.runner import KindError
from meshlab.kind.versions import ISTIO_KUBERNETES_VERSIONS, KUBERNETES_VERSION, NODE_IMAGE, parse_version

DATA = Path(__file__).parent / "data" / "kind"
KUBERNETES = ".".join(KUBERNETES_VERSION.split(".")[:2])


def service_entry_schema() -> dict:
    crd = yaml.safe_load((DATA / "istio-crds" / "serviceentries.yaml").read_text())
    assert crd["spec"]["names"]["kind"] == "ServiceEntry"
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_the_node_image_is_a_kubernetes_version_the_pinned_istio_supports():
    tag = NODE_IMAGE.split(":", 1)[1].split("@")[0]
    assert parse_version(tag) == parse_version(KUBERNETES_VERSION)
    assert KUBERNETES in ISTIO_KUBERNETES_VERSIONS
    assert kubernetes_validate.latest_version() >= KUBERNETES  # the schemas we validate against exist


def test_cluster_config_is_one_control_plane_two_workers_with_loopback_node_ports():
    cluster = config.cluster_config()
    assert (cluster["kind"], cluster["apiVersion"], cluster["name"]) == ("Cluster", "kind.x-k8s.io/v1alpha4", "meshlab")
    assert [node["role"] for node in cluster["nodes"]] == ["control-plane", "worker", "worker"]
    assert {node["image"] for node in cluster["nodes"]} == {NODE_IMAGE}
    mappings = cluster["nodes"][0]["extraPortMappings"]
    assert [(m["containerPort"], m["hostPort"], m["listenAddress"], m["protocol"]) for m in mappings] == [(30080, 30080, "127.0.0.1", "TCP"), (30081, 30081, "127.0.0.1", "TCP")]
    # only fields kind's v1alpha4 Cluster and Node types have
    assert set(cluster) <= {"kind", "apiVersion", "name", "nodes", "networking", "featureGates", "runtimeConfig", "kubeadmConfigPatches", "containerdConfigPatches"}
    for node in cluster["nodes"]:
        assert set(node) <= {"role", "image", "labels", "extraMounts", "extraPortMappings", "kubeadmConfigPatches"}
    assert yaml.safe_load(config.cluster_config_yaml()) == cluster


@pytest.mark.parametrize(("kwargs", "said"), [
    ({"name": "Mesh_Lab"}, "cluster name 'Mesh_Lab' is not accepted"),
    ({"node_image": "kindest/node:v1.35.8"}, "has no digest"),
    ({"node_ports": {8080: 8080}}, "NodePort 8080 is outside 30000-32767"),
    ({"node_ports": {30080: 70000}}, "host port 70000"),
    ({"workers": -1}, "-1 workers"),
])
def test_bad_cluster_settings_are_refused_naming_the_setting(kwargs, said):
    with pytest.raises(KindError, match=said) as caught:
        config.cluster_config(**kwargs)
    assert caught.value.fix


@pytest.mark.parametrize("mode", ["sidecar", "ambient"])
def test_workloads_are_valid_kubernetes_objects(mode):
    objects = manifests.workloads(f"meshlab-{mode}", mode)
    assert [o["kind"] for o in objects] == ["Namespace", "ServiceAccount", "Service", "Deployment", "ServiceAccount", "Deployment"]
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES, strict=True)
    assert objects[0]["metadata"]["labels"] == manifests.MODES[mode]


def test_a_wrong_type_in_a_core_object_is_caught_by_the_schema():
    service = manifests.httpbin("x")[1]
    service["spec"]["ports"][0]["port"] = "8000"
    with pytest.raises(kubernetes_validate.ValidationError, match="'8000' is not of type 'integer'"):
        kubernetes_validate.validate(service, KUBERNETES, strict=True)


def test_service_entries_match_istios_crd_schema():
    schema = service_entry_schema()
    entries = manifests.service_entries(3, "meshlab-sidecar")
    assert len({e["metadata"]["name"] for e in entries}) == 3
    for entry in entries:
        assert entry["apiVersion"] == "networking.istio.io/v1"
        jsonschema.validate({"spec": entry["spec"]}, schema)


@pytest.mark.parametrize(("change", "said"), [
    (lambda spec: spec.update(resolution="SOMETIMES"), "'SOMETIMES' is not one of"),
    (lambda spec: spec.update(hosts=[]), "should be non-empty|is too short"),
    (lambda spec: spec["ports"][0].pop("name"), "'name' is a required property"),
    (lambda spec: spec.pop("hosts"), "'hosts' is a required property"),
])
def test_istios_schema_catches_a_broken_service_entry(change, said):
    spec = manifests.service_entries(1, "x")[0]["spec"]
    change(spec)
    with pytest.raises(jsonschema.ValidationError, match=said):
        jsonschema.validate({"spec": spec}, service_entry_schema())


@pytest.mark.parametrize(("call", "said"), [
    (lambda: manifests.namespace("x", "proxyless"), "data-plane mode 'proxyless'"),
    (lambda: manifests.httpbin("x", 8080), "NodePort 8080"),
    (lambda: manifests.service_entries(0, "x"), "0 ServiceEntries"),
])
def test_bad_manifest_arguments_are_refused(call, said):
    with pytest.raises(KindError, match=said):
        call()
