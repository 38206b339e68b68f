"""VMs in the mesh: WorkloadGroup, the WorkloadEntry istiod's auto-registration writes, its grace period and
health, and the endpoints a ServiceEntry's workloadSelector (or a Kubernetes Service's selector) selects.

Expected names, annotations and messages are Istio's (pilot/pkg/autoregistration/controller.go,
pkg/config/validation/validation.go, Istio master 2026-08-26); the upstream tests hand the same
WorkloadGroups and the entries meshlab writes to the pinned ``istioctl analyze``.
"""

from __future__ import annotations

import datetime as dt

import pytest
import yaml
from upstream_programs import program_path

from meshlab.multicluster.workloads import (AUTO_REGISTRATION_GROUP, CONNECTED_AT, DISCONNECTED_AT, GRACE_PERIOD, HEALTH_CHECKS_ENABLED,
                                            WORKLOAD_CONTROLLER, Controller, Pod, RegistrationError, Service, ServiceEntry, ServicePort,
                                            WorkloadEntry, WorkloadError, WorkloadGroup, endpoints_of)
from meshlab.upstream.analyze import analyze

T0 = dt.datetime(2026, 8, 26, 10, 0, 0, tzinfo=dt.UTC)
SECOND = dt.timedelta(seconds=1)


def group_yaml(spec: str, name: str = "reviews") -> str:
    return (f"apiVersion: networking.istio.io/v1\nkind: WorkloadGroup\nmetadata: {{name: {name}, namespace: bookinfo}}\nspec:\n"
            + "".join(f"  {line}\n" for line in spec.strip("\n").splitlines()))


#: workload_group.proto's own example, less the probe's header (kept for the validation cases).
REVIEWS = group_yaml("""
metadata:
  labels: {app.kubernetes.io/name: reviews, app.kubernetes.io/version: "1.3.4", app: reviews}
  annotations: {team: books}
template:
  ports: {grpc: 3550, http: 8080}
  serviceAccount: default
probe:
  initialDelaySeconds: 5
  timeoutSeconds: 3
  periodSeconds: 4
  successThreshold: 3
  failureThreshold: 3
  httpGet: {path: /foo/bar, host: 127.0.0.1, port: 3100, scheme: HTTPS}
""")
DETAILS = group_yaml("template: {serviceAccount: details-legacy, labels: {app: details, tier: legacy}}\nmetadata: {labels: {tier: vm}}", "details")
IDENTITY = ("bookinfo", "default")

SERVICE_ENTRY = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews.bookinfo.example]
  location: MESH_INTERNAL
  ports:
  - {number: 9080, name: http, protocol: HTTP, targetPort: 9090}
  - {number: 9443, name: grpc, protocol: GRPC}
  resolution: STATIC
  workloadSelector: {labels: {app: reviews}}
"""


@pytest.fixture
def reviews() -> WorkloadGroup:
    return WorkloadGroup.parse(REVIEWS)


def test_a_workload_group_reads_as_its_proto_describes_it(reviews):
    assert (reviews.name, reviews.namespace, reviews.template.service_account, reviews.template.ports) == (
        "reviews", "bookinfo", "default", {"grpc": 3550, "http": 8080})
    assert reviews.labels["app.kubernetes.io/version"] == "1.3.4" and reviews.probe["httpGet"]["port"] == 3100


def test_registration_writes_the_entry_as_istiod_does(reviews):
    entry = Controller("istiod-7").register(reviews, "10.0.0.7", T0, network="vm-net", labels={"version": "v3", "app": "reviews-vm"},
                                            identity=IDENTITY)
    written = entry.to_yaml()
    assert written["metadata"]["name"] == "reviews-10.0.0.7-vm-net"
    assert written["metadata"]["annotations"] == {AUTO_REGISTRATION_GROUP: "reviews", CONNECTED_AT: "2026-08-26T10:00:00Z",
                                                  WORKLOAD_CONTROLLER: "istiod-7", HEALTH_CHECKS_ENABLED: "true", "team": "books"}
    assert written["metadata"]["ownerReferences"] == [{"apiVersion": "networking.istio.io/v1", "kind": "WorkloadGroup", "name": "reviews",
                                                       "controller": True}]
    assert written["spec"] == {"address": "10.0.0.7", "ports": {"grpc": 3550, "http": 8080}, "network": "vm-net", "serviceAccount": "default",
                               "labels": {"app.kubernetes.io/name": "reviews", "app.kubernetes.io/version": "1.3.4", "app": "reviews-vm",
                                          "version": "v3"}}, "the proxy's own labels win over the group's"
    assert "status" not in written, "no health reported yet"


def test_template_labels_give_way_to_the_groups_and_an_ipv6_address_is_made_a_name():
    entry = Controller().register(WorkloadGroup.parse(DETAILS), "2001:db8::7", T0, identity=("bookinfo", "details-legacy"))
    assert entry.name == "details-2001-db8--7" and entry.labels == {"app": "details", "tier": "vm"}
    assert HEALTH_CHECKS_ENABLED not in entry.annotations, "no probe, no health checks"


def test_a_name_too_long_keeps_its_last_253_characters():
    name = ".".join(["g" * 61] * 4)  # 247 characters, a valid resource name
    group = WorkloadGroup.parse(group_yaml("template: {}", name=name))
    assert Controller().register(group, "10.1.2.3", T0, identity=("bookinfo", "x")).name == (name + "-10.1.2.3")[-253:]


@pytest.mark.parametrize("identity, message", [
    (None, "registration of WorkloadEntry requires a verified identity"),
    (("shop", "default"), 'registration of WorkloadEntry namespace mismatch: "shop" vs "bookinfo"'),
    (("bookinfo", "ratings"), 'registration of WorkloadEntry service account mismatch: "ratings" vs "default"'),
])
def test_a_proxy_whose_certificate_is_not_the_entrys_is_refused(reviews, identity, message):
    controller = Controller()
    with pytest.raises(RegistrationError) as refused:
        controller.register(reviews, "10.0.0.7", T0, identity=identity)
    assert str(refused.value) == message and controller.entries == {}


def test_a_vm_that_reconnects_within_the_grace_period_keeps_its_entry(reviews):
    controller = Controller()
    entry = controller.register(reviews, "10.0.0.7", T0, identity=IDENTITY)
    gone = controller.disconnect("bookinfo", entry.name, T0 + 60 * SECOND)
    assert CONNECTED_AT not in gone.annotations and gone.annotations[DISCONNECTED_AT] == "2026-08-26T10:01:00Z"
    assert controller.cleanup(T0 + 60 * SECOND + GRACE_PERIOD - SECOND / 1000) == []
    back = controller.register(reviews, "10.0.0.7", T0 + 65 * SECOND, identity=IDENTITY)
    assert DISCONNECTED_AT not in back.annotations and back.annotations[CONNECTED_AT] == "2026-08-26T10:01:05Z"
    assert controller.cleanup(T0 + 600 * SECOND) == [] and list(controller.entries) == [("bookinfo", entry.name)]


def test_a_vm_gone_for_the_grace_period_loses_its_entry(reviews):
    assert GRACE_PERIOD == dt.timedelta(seconds=10), "PILOT_WORKLOAD_ENTRY_GRACE_PERIOD's default"
    controller = Controller()
    entry = controller.register(reviews, "10.0.0.7", T0, identity=IDENTITY)
    controller.disconnect("bookinfo", entry.name, T0 + 1.5 * SECOND)
    assert controller.cleanup(T0 + 11.5 * SECOND) == ["bookinfo/reviews-10.0.0.7"] and controller.entries == {}


def test_a_disconnect_older_than_the_last_connect_changes_nothing(reviews):
    controller = Controller()
    entry = controller.register(reviews, "10.0.0.7", T0 + 5 * SECOND, identity=IDENTITY)
    assert controller.disconnect("bookinfo", entry.name, T0) == entry


def test_a_health_checked_vm_serves_only_once_its_probe_succeeds(reviews):
    controller = Controller()
    entry = controller.register(reviews, "10.0.0.7", T0, identity=IDENTITY)
    service = ServiceEntry.parse(SERVICE_ENTRY)
    assert endpoints_of(service, [], list(controller.entries.values())) == [], "no Healthy condition yet counts as unhealthy"
    controller.report_health("bookinfo", entry.name, True)
    assert [e.address for e in endpoints_of(service, [], list(controller.entries.values()))] == ["10.0.0.7", "10.0.0.7"]
    failing = controller.report_health("bookinfo", entry.name, False, "connection refused")
    assert failing.to_yaml()["status"] == {"conditions": [{"type": "Healthy", "status": "False", "message": "connection refused"}]}
    assert endpoints_of(service, [], list(controller.entries.values())) == []


def test_health_reports_need_the_health_check_annotation():
    controller = Controller()
    entry = controller.register(WorkloadGroup.parse(DETAILS), "10.0.0.8", T0, identity=("bookinfo", "details-legacy"))
    with pytest.raises(WorkloadError, match="no proxy.istio.io/health-checks-enabled annotation"):
        controller.report_health("bookinfo", entry.name, True)


def test_a_service_entry_selects_pods_and_vms_alike_pods_first():
    controller = Controller()
    vm = controller.register(WorkloadGroup.parse(group_yaml("template: {ports: {http: 8080}, serviceAccount: reviews}\n"
                                                            "metadata: {labels: {app: reviews}}")), "10.0.0.7", T0, identity=("bookinfo", "reviews"))
    pods = [Pod("reviews-b", "bookinfo", "10.1.0.6", {"app": "reviews"}, ports={"grpc": 7070}),
            Pod("reviews-a", "bookinfo", "10.1.0.5", {"app": "reviews", "version": "v1"}),
            Pod("reviews-starting", "bookinfo", "10.1.0.9", {"app": "reviews"}, ready=False),
            Pod("reviews-elsewhere", "shop", "10.2.0.5", {"app": "reviews"}),
            Pod("ratings", "bookinfo", "10.1.0.7", {"app": "ratings"})]
    found = [(e.kind, e.workload, e.address, e.service_port, e.port) for e in endpoints_of(ServiceEntry.parse(SERVICE_ENTRY), pods, [vm])]
    assert found == [
        ("Pod", "bookinfo/reviews-a", "10.1.0.5", 9080, 9090), ("Pod", "bookinfo/reviews-a", "10.1.0.5", 9443, 9443),
        ("Pod", "bookinfo/reviews-b", "10.1.0.6", 9080, 9090), ("Pod", "bookinfo/reviews-b", "10.1.0.6", 9443, 7070),
        ("WorkloadEntry", "bookinfo/reviews-10.0.0.7", "10.0.0.7", 9080, 8080), ("WorkloadEntry", "bookinfo/reviews-10.0.0.7", "10.0.0.7", 9443, 9443)]


def test_an_entry_addressed_by_host_name_or_unix_socket_is_selected_only_by_a_dns_service_entry():
    vms = [WorkloadEntry("details-vm", "bookinfo", "vm1.vpc01.corp.net", labels={"app": "reviews"}),
           WorkloadEntry("local-app", "bookinfo", "unix:///var/run/app.sock", labels={"app": "reviews"})]
    static = ServiceEntry.parse(SERVICE_ENTRY)
    dns = ServiceEntry.parse(SERVICE_ENTRY.replace("resolution: STATIC", "resolution: DNS"))
    assert endpoints_of(static, [], vms) == []
    assert [(e.address, e.port) for e in endpoints_of(dns, [], vms)] == [("vm1.vpc01.corp.net", 9090), ("vm1.vpc01.corp.net", 9443),
                                                                          ("/var/run/app.sock", 0), ("/var/run/app.sock", 0)]


def test_a_kubernetes_service_selects_workload_entries_too():
    ports = (ServicePort(9080, "http", target_port="web"), ServicePort(9090, "metrics", target_port=15020))
    service = Service("reviews", "bookinfo", {"app": "reviews"}, ports)
    vms = [WorkloadEntry("vm-a", "bookinfo", "10.0.0.7", ports={"web": 8080}, labels={"app": "reviews"}),
           WorkloadEntry("vm-b", "bookinfo", "10.0.0.8", labels={"app": "reviews"}),
           WorkloadEntry("vm-named", "bookinfo", "vm.corp.net", ports={"web": 8080}, labels={"app": "reviews"})]
    found = [(e.workload, e.port) for e in endpoints_of(service, [], vms)]
    assert found == [("bookinfo/vm-a", 8080), ("bookinfo/vm-a", 15020), ("bookinfo/vm-b", 15020)], \
        "a named targetPort the entry lacks skips it; a host name is never a Kubernetes endpoint"


BAD_GROUPS = [
    pytest.param("metadata: {labels: {app: x}}", "template is required", id="no template"),
    pytest.param("template: {}\nprobe: {periodSeconds: -1, tcpSocket: {port: 80}}", "periodSeconds must be non-negative", id="a negative period"),
    pytest.param("template: {}\nprobe: {periodSeconds: 4}", "unknown health check method <nil>", id="a probe without method"),
    pytest.param("template: {}\nprobe: {grpc: {port: 50051}}", "unknown health check method *v1alpha3.ReadinessProbe_Grpc", id="a grpc probe"),
    pytest.param("template: {}\nprobe: {exec: {command: []}}", "exec.command is required", id="exec without command"),
    pytest.param("template: {}\nprobe: {httpGet: {port: 80, scheme: FTP}}", 'httpGet.scheme must be one of "HTTPS", "HTTP"', id="an unknown scheme"),
    pytest.param("template: {}\nprobe: {httpGet: {port: 80, httpHeaders: [{name: 'bad header', value: x}]}}",
                 "header name bad header is not a valid header name", id="a bad header name"),
    pytest.param("template: {}\nmetadata: {labels: {'-app': x}}", 'invalid labels: invalid tag key: "-app"', id="a bad label key"),
]


@pytest.mark.parametrize("spec, message", BAD_GROUPS)
def test_bad_workload_groups_are_refused_in_istios_words(spec, message):
    with pytest.raises(WorkloadError) as refused:
        WorkloadGroup.parse(group_yaml(spec))
    assert str(refused.value).endswith(message)


@pytest.mark.parametrize("text, message", [
    (REVIEWS.replace("template:", "templates:"), "unknown field 'templates'; accepted: metadata, template, probe"),
    (REVIEWS.replace("  httpGet:", "  tcpSocket: {port: 1}\n    httpGet:"), "only one of httpGet, tcpSocket, exec, grpc may be set"),
    (REVIEWS.replace("kind: WorkloadGroup", "kind: WorkloadEntry"), "expected kind WorkloadGroup"),
    (SERVICE_ENTRY.replace("resolution: STATIC", "resolution: STATIC\n  endpoints: [{address: 10.0.0.1}]"),
     "only one of WorkloadSelector or Endpoints is allowed in Service Entry"),
    (SERVICE_ENTRY.replace("resolution: STATIC", "resolution: LOOKUP"), "resolution: 'LOOKUP' is not one of NONE, STATIC, DNS, DNS_ROUND_ROBIN"),
])
def test_bad_resources_are_refused_naming_the_field_and_what_is_accepted(text, message):
    with pytest.raises(WorkloadError) as refused:
        (ServiceEntry if "ServiceEntry" in text else WorkloadGroup).parse(text)
    assert message in str(refused.value)


def test_bad_arguments_are_refused(reviews):
    controller = Controller()
    with pytest.raises(WorkloadError, match="the proxy's address 'vm1' is not an IP address"):
        controller.register(reviews, "vm1", T0, identity=IDENTITY)
    with pytest.raises(WorkloadError, match="workloadentry bookinfo/nope is not found; entries: none"):
        controller.disconnect("bookinfo", "nope", T0)
    with pytest.raises(WorkloadError, match="has no workloadSelector"):
        endpoints_of(ServiceEntry.parse(SERVICE_ENTRY.replace("  workloadSelector: {labels: {app: reviews}}\n", "")), [], [])


@pytest.fixture(scope="module")
def istioctl():
    return program_path("istioctl")


@pytest.mark.upstream
def test_istioctl_refuses_the_workload_groups_meshlab_refuses_with_the_same_words(istioctl):
    documents = [group_yaml(param.values[0], name=f"case-{index}").replace("namespace: bookinfo", "namespace: default")
                 for index, param in enumerate(BAD_GROUPS)]
    findings = {f.resource: f.message for f in analyze(istioctl, "---\n".join(documents)) if f.code == "IST0106"}
    for index, param in enumerate(BAD_GROUPS):
        # istioctl prints a wrapped list of errors ("invalid labels: 1 error occurred:") on its first line only
        theirs = findings.get(f"WorkloadGroup default/case-{index}", "missing").removeprefix("Schema validation error: ")
        assert theirs.replace(" 1 error occurred:", "") in param.values[1], param.id


@pytest.mark.upstream
def test_istioctl_accepts_the_group_the_entries_meshlab_writes_and_the_service_entry(istioctl, reviews):
    controller = Controller()
    entry = controller.register(reviews, "10.0.0.7", T0, network="vm-net", identity=IDENTITY)
    controller.report_health("bookinfo", entry.name, True)
    controller.register(reviews, "2001:db8::7", T0, identity=IDENTITY)
    text = "---\n".join([REVIEWS, SERVICE_ENTRY] + [yaml.safe_dump(e.to_yaml()) for e in controller.entries.values()])
    assert [f for f in analyze(istioctl, text, all_namespaces=True) if f.level == "Error"] == []
