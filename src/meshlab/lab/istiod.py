"""A live lab whose control plane is Istio's own istiod (upstream stage): etcd, kube-apiserver and
istiod on the host's loopback, the lab's pods and services written into the API server as a kubelet
and Kubernetes' controllers would write them, and Istio's sidecar injector called by the API server.

What a kubelet and the controllers do, done here by meshlab once, at registration: a Node per lab node
(its kubelet version the API server's, as a kubelet of that release reports), a Namespace per pod
namespace (labelled ``istio-injection=enabled`` when it holds sidecar pods), a Pod per lab pod (its
labels and service account, bound to its node, its IP and Running status written to the status
subresource as a kubelet reports them), a Service per lab service (its ClusterIP the lab's virtual
IP) and an EndpointSlice with the pods' IPs (the EndpointSlice controller's work). Nothing follows
later changes: register again after adding a service.

Injection for real: the MutatingWebhookConfiguration from ``istioctl manifest generate`` is applied
with its webhooks pointing at istiod's webhook port on loopback (``clientConfig.url``: with no
Service and no cluster DNS the API server cannot reach ``istiod.istio-system.svc``); istiod fills in
its CA bundle itself (the configuration carries ``istio.io/rev: default``, istiod's REVISION). So a
Pod created in an enabled namespace comes back from the API server with istio-init and istio-proxy.
The lab's kubelet part then does what the injected istio-init does: meshlab renders its arguments
(``injected_rules``) and applies them in the pod, in place of the rules the lab started it with;
meshlab's sidecar stays the proxy (there is no Envoy here).

    LabIstiod   with LabIstiod(lab, programs) as plane: plane.register(); plane.pod(name); plane.kube;
                plane.istiod. Its processes are the lab's (``lab down`` and ``cleanup`` stop them); its
                addresses are in the lab's state folder (ADDRESSES), for ``lab status``
"""

from __future__ import annotations

import json
import time

import yaml

from meshlab.intercept import build_rules
from meshlab.kind.observe import capture_config_from_init, init_container
from meshlab.lab.cluster import Lab
from meshlab.lab.netns import LabError
from meshlab.lab.spec import APP_PORT, Pod
from meshlab.upstream.istiod import Istiod
from meshlab.upstream.kube import KubeControlPlane
from meshlab.xds.debounce import DebounceOptions

INJECTION_LABEL = {"istio-injection": "enabled"}
#: Where in the lab's state folder ``lab status`` finds the control plane's addresses.
ADDRESSES = "istiod.json"


class LabIstiod:
    def __init__(self, lab: Lab, programs: dict[str, str], debounce: DebounceOptions = DebounceOptions()) -> None:
        """``programs``: the paths of kube-apiserver, etcd, kubectl, pilot-discovery and istioctl."""
        folder = lab.state_dir / "istiod"
        self.lab = lab
        self.kube = KubeControlPlane(programs["kube-apiserver"], programs["etcd"], programs["kubectl"], folder / "kube",
                                     on_start=lambda process: lab.adopt("istiod", process))
        self.istiod = Istiod(programs["pilot-discovery"], programs["istioctl"], self.kube, folder / "istiod", debounce,
                             on_start=lambda process: lab.adopt("istiod", process))

    def __enter__(self) -> LabIstiod:
        if self.lab.rootless or self.lab.datapath != "iptables":
            raise LabError("a lab served by istiod needs root and the iptables datapath (the injected istio-init's "
                           "rules are applied in each pod as iptables rules); start the lab as root without --datapath ebpf")
        self.kube.__enter__()
        try:
            self.istiod.__enter__()
            self._webhook()
            self.register()
            addresses = {"kubeconfig": str(self.kube.kubeconfig), "api_server": self.kube.server, "xds": self.istiod.xds_address,
                         "metrics": f"http://127.0.0.1:{self.istiod.ports['monitoringAddr']}/metrics"}
            (self.lab.state_dir / ADDRESSES).write_text(json.dumps(addresses))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        (self.lab.state_dir / ADDRESSES).unlink(missing_ok=True)
        self.istiod.__exit__()
        self.kube.__exit__()

    def _apply(self, documents: list[dict]) -> None:
        if documents:  # kubectl refuses an apply of nothing
            self.kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(documents))

    def _webhook(self, timeout: float = 60) -> None:
        """The chart's injector webhooks, pointed at istiod on loopback; wait until istiod has given them its CA."""
        configuration = next(d for d in self.istiod.manifest if d["kind"] == "MutatingWebhookConfiguration")
        for webhook in configuration["webhooks"]:
            path = webhook["clientConfig"]["service"].get("path", "/inject")
            webhook["clientConfig"] = {"url": f"https://127.0.0.1:{self.istiod.ports['httpsAddr']}{path}"}
        self._apply([configuration])
        name, deadline = configuration["metadata"]["name"], time.monotonic() + timeout
        while not all(w.get("clientConfig", {}).get("caBundle") for w in self._get("mutatingwebhookconfiguration", name)["webhooks"]):
            if time.monotonic() > deadline:
                raise LabError(f"istiod did not put its CA into the webhook configuration {name} within {timeout:.0f} s")
            time.sleep(0.2)

    def _get(self, kind: str, name: str, namespace: str | None = None) -> dict:
        scope = ["-n", namespace] if namespace else []
        return json.loads(self.kube.kubectl(*scope, "get", kind, name, "-o", "json"))

    def register(self) -> None:
        """Write the lab's namespaces, pods (with their status), services and EndpointSlices."""
        pods = list(self.lab.pods.values())
        namespaces = {}
        for pod in pods:
            labels = namespaces.setdefault(pod.k8s_namespace, {})
            if pod.sidecar:
                labels.update(INJECTION_LABEL)
        self._apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}} for name, labels in namespaces.items()])
        self._nodes()
        existing = set(self.kube.kubectl("get", "pods", "-A", "-o", "jsonpath={range .items[*]}{.metadata.name}.{.metadata.namespace} {end}").split())
        for pod in pods:
            if f"{pod.name}.{pod.k8s_namespace}" not in existing:
                self.kube.kubectl("create", "-f", "-", stdin=yaml.safe_dump(self._pod(pod)))  # the API server calls the injector
                if pod.sidecar:  # what the injected istio-init then does in the pod: its rules replace the lab's
                    pod.namespace.run(["iptables-restore"], stdin=self.injected_rules(pod.name))
            status = {"status": {"phase": "Running", "podIP": pod.ip, "podIPs": [{"ip": pod.ip}], "hostIP": "127.0.0.1",
                                 "conditions": [{"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}]}}
            self.kube.kubectl("-n", pod.k8s_namespace, "patch", "pod", pod.name, "--subresource=status", "--type=merge", "-p", json.dumps(status))
        self._apply([document for name, service in self.lab.services.items() for document in self._service(name, service)])

    def _nodes(self) -> None:
        """A Node per lab node, with the kubelet version a kubelet reports (the API server's own): istiod's
        injector reads it to decide on native sidecars (pkg/kube/inject/webhook.go, DetectNativeSidecar)."""
        version = self.kube.kubectl("version", "-o", "json")
        kubelet = json.loads(version)["serverVersion"]["gitVersion"]
        names = [f"{self.lab.prefix}-node{node}" for node in range(self.lab.node_count)]
        self._apply([{"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}} for name in names])
        for name in names:
            status = {"status": {"nodeInfo": {"kubeletVersion": kubelet}, "conditions": [{"type": "Ready", "status": "True"}]}}
            self.kube.kubectl("patch", "node", name, "--subresource=status", "--type=merge", "-p", json.dumps(status))

    def _pod(self, pod: Pod) -> dict:
        labels = {"app": pod.name, **pod.labels}
        if not pod.sidecar:
            labels["sidecar.istio.io/inject"] = "false"
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod.name, "namespace": pod.k8s_namespace, "labels": labels},
                "spec": {"serviceAccountName": pod.service_account, "nodeName": f"{self.lab.prefix}-node{pod.node}",
                         "containers": [{"name": "app", "image": "meshlab/app", "ports": [{"containerPort": port} for port in pod.ports]}]}}

    def _service(self, name: str, service: dict) -> list[dict]:
        by_ip = {pod.ip: pod for pod in self.lab.pods.values()}
        members = [(by_ip[address.rsplit(":", 1)[0]], int(address.rsplit(":", 1)[1])) for address in service["endpoints"]]
        namespace = members[0][0].k8s_namespace if members else "default"
        target = members[0][1] if members else APP_PORT
        port = {"name": "http", "port": service["port"], "targetPort": target, "protocol": "TCP"}
        return [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
                 "spec": {"clusterIP": service["vip"], "ports": [port]}},
                {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                 "metadata": {"name": f"{name}-meshlab", "namespace": namespace, "labels": {"kubernetes.io/service-name": name}},
                 "addressType": "IPv4", "ports": [{"name": "http", "port": target, "protocol": "TCP"}],
                 "endpoints": [{"addresses": [pod.ip], "conditions": {"ready": True}, "nodeName": f"{self.lab.prefix}-node{pod.node}",
                                "targetRef": {"kind": "Pod", "name": pod.name, "namespace": pod.k8s_namespace}} for pod, _ in members]}]

    def pod(self, name: str) -> dict:
        """The Pod as the API server stores it (injected, if its namespace asked for injection)."""
        pod = self.lab.pod(name)
        return self._get("pod", pod.name, pod.k8s_namespace)

    def injected_rules(self, name: str) -> str:
        """The iptables-restore text the injected istio-init of this pod asks for, rendered by meshlab."""
        args, env = init_container(self.pod(name))
        return build_rules(capture_config_from_init(args, env)).restore_text(4)
