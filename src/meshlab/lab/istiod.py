"""A live lab whose control plane is Istio's own istiod (upstream stage): etcd, kube-apiserver and
istiod on the host's loopback, the lab's pods and services written into the API server as a kubelet
and Kubernetes' controllers would write them, and Istio's sidecar injector called by the API server.

The order is Kubernetes': a pod exists in the API server, admitted (and injected) by its webhooks,
before a kubelet makes it. So the control plane starts inside ``Lab.up``, as its admission
(``Lab.up(admit=...)``): a Namespace per pod namespace (``istio-injection=enabled`` when it holds
sidecar or proxyless pods), a Node per lab node (with the kubelet version the API server's own, as a
kubelet of that release reports: istiod's injector reads it to choose native sidecars), and every Pod
created with the real kubectl. The API server sends each to istiod's injector (the chart's
MutatingWebhookConfiguration, pointed at istiod's webhook port on loopback: with no Service and no
cluster DNS the API server cannot reach ``istiod.istio-system.svc``); a sidecar pod comes back with
istio-init, whose arguments become the pod's capture (its state says so), and whose command the lab
runs in the pod's namespace when it makes the pod, before the app starts, as a kubelet runs an init
container: ``pilot-agent istio-iptables ...`` with Istio's own pilot-agent (upstream stage). meshlab's
sidecar stays the proxy (there is no Envoy here).

Once the pods have addresses, what a kubelet reports: each Pod's IP and Running status (the status
subresource). A proxyless pod (``PodSpec(proxyless=True)``) is injected with Istio's ``grpc-agent``
template (an istio-proxy container running pilot-agent without Envoy, no istio-init); in its place the
lab writes the gRPC bootstrap that agent writes and runs its xDS socket (``meshlab.lab.xdsrelay``), so
the pod's gRPC clients reach istiod. A Service added through ``add_service`` selects pods by label, and
Kubernetes' own EndpointSlice controller (kube-controller-manager, running that controller alone) lists
them in its EndpointSlices, from the Pods' labels, IPs and Ready conditions the lab reported; pods go with
the whole control plane, at ``down``.

    LAB_PROGRAMS the upstream programs it runs
    LabIstiod   LabIstiod(Lab(prefix), programs).up(specs) as plane: plane.add_service(...); plane.pod(name);
                plane.bootstrap_path(pod); plane.kube; plane.istiod. Its processes are the lab's (``lab down``
                and ``cleanup`` stop them); its addresses are in the lab's state folder (ADDRESSES), for
                ``lab status``
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import yaml

from meshlab.intercept import build_rules
from meshlab.kind.observe import capture_config_from_init, init_container, injected_capture
from meshlab.lab.cluster import Lab
from meshlab.lab.netns import LabError, LabUsageError
from meshlab.lab.spec import APP_PORT, InitContainer, PodSpec
from meshlab.upstream.istiod import PROGRAM_NAMES, Istiod, proxyless_node
from meshlab.upstream.kube import KubeControlPlane
from meshlab.xds.debounce import DebounceOptions
from meshlab.xds.server import bootstrap

INJECTION_LABEL = {"istio-injection": "enabled"}
#: The injection template Istio gives proxyless gRPC pods (the chart's ``grpc-agent``).
PROXYLESS_TEMPLATE = {"inject.istio.io/templates": "grpc-agent"}
#: The upstream programs a lab served by istiod runs: the control plane's, the EndpointSlice controller's
#: (kube-controller-manager), and pilot-agent, which an injected istio-init runs (proxyv2's entrypoint).
LAB_PROGRAMS = (*PROGRAM_NAMES, "kube-controller-manager", "pilot-agent")
#: Where in the lab's state folder ``lab status`` finds the control plane's addresses.
ADDRESSES = "istiod.json"


class LabIstiod:
    def __init__(self, lab: Lab, programs: dict[str, str], debounce: DebounceOptions = DebounceOptions()) -> None:
        """``lab``: not yet up. ``programs``: the path of each of LAB_PROGRAMS."""
        if missing := [name for name in LAB_PROGRAMS if name not in programs]:
            raise LabUsageError(f"a lab served by istiod runs {', '.join(LAB_PROGRAMS)}; not given: {', '.join(missing)}")
        self.lab, self.folder = lab, lab.state_dir / "istiod"
        self.pilot_agent = programs["pilot-agent"]
        self.kube = KubeControlPlane(programs["kube-apiserver"], programs["etcd"], programs["kubectl"], self.folder / "kube",
                                     on_start=lambda process: lab.adopt("istiod", process), controller_manager=programs["kube-controller-manager"])
        self.istiod = Istiod(programs["pilot-discovery"], programs["istioctl"], self.kube, self.folder / "istiod", debounce,
                             on_start=lambda process: lab.adopt("istiod", process))
        self.specs: dict[str, PodSpec] = {}

    def up(self, pods: int | list[PodSpec] = 2, down_at_exit: bool = False, **options) -> LabIstiod:
        """``Lab.up`` (``options`` are its own: nodes, collector) with istiod admitting the pods; then
        their status, and the proxyless pods' bootstraps and xDS sockets. Undoes everything on failure."""
        if self.lab.rootless or options.get("datapath", "iptables") != "iptables" or options.get("proxy_mode", "sidecar") != "sidecar":
            raise LabError("a lab served by istiod needs root, sidecar proxies and the iptables datapath (the injected istio-init's "
                           "rules are applied in each pod as iptables rules); start the lab as root without --datapath ebpf")
        self.lab.up(pods, down_at_exit=down_at_exit, admit=self._admit, **options)
        try:
            self._report_status()
            for spec in self.specs.values():
                if spec.proxyless:
                    self._start_grpc_agent(spec.name)
            addresses = {"kubeconfig": str(self.kube.kubeconfig), "api_server": self.kube.server, "xds": self.istiod.xds_address,
                         "metrics": f"http://127.0.0.1:{self.istiod.ports['monitoringAddr']}/metrics"}
            (self.lab.state_dir / ADDRESSES).write_text(json.dumps(addresses))
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> None:
        """Stop istiod, the API server and etcd (reaped: they are this process's children), then the lab."""
        self.istiod.__exit__()
        self.kube.__exit__()
        self.lab.down()

    def __enter__(self) -> LabIstiod:
        return self

    def __exit__(self, *exc) -> None:
        self.down()

    # -- admission: before the lab makes any pod -----------------------------------------------
    def _admit(self, specs: list[PodSpec]) -> list[PodSpec]:
        """Start the control plane, create the pods in the API server (istiod injects them), and return
        each sidecar pod's spec with the capture its injected istio-init asks for, and that istio-init to run."""
        self.specs = {spec.name: spec for spec in specs}
        try:
            self.kube.__enter__()
            self.istiod.__enter__()
            self._webhook()
            self._namespaces(specs)
            self._nodes()
            self.kube.kubectl("create", "-f", "-", stdin=yaml.safe_dump_all([self._pod(spec) for spec in specs]))
            stored = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in json.loads(self.kube.kubectl("get", "pods", "-A", "-o", "json"))["items"]}
        except BaseException:
            self.istiod.__exit__()
            self.kube.__exit__()
            raise
        return [self._injected(spec, stored[(spec.k8s_namespace, spec.name)]) if spec.sidecar else spec for spec in specs]

    def _injected(self, spec: PodSpec, stored: dict) -> PodSpec:
        """The spec as the injected pod says: its capture, and its istio-init as the image runs it
        (proxyv2's entrypoint is pilot-agent; the container gives its arguments)."""
        args, environment = init_container(stored)
        return replace(spec, capture=capture_config_from_init(args, environment), init=InitContainer((self.pilot_agent, *args), environment))

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

    def _namespaces(self, specs: list[PodSpec]) -> None:
        namespaces: dict[str, dict[str, str]] = {}
        for spec in specs:
            labels = namespaces.setdefault(spec.k8s_namespace, {})
            if spec.sidecar or spec.proxyless:
                labels.update(INJECTION_LABEL)
        self._apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}} for name, labels in namespaces.items()])

    def _node_name(self, node: int) -> str:
        return f"{self.lab.prefix}-node{node}"

    def _nodes(self) -> None:
        """A Node per lab node, with the kubelet version a kubelet reports (the API server's own): istiod's
        injector reads it to decide on native sidecars (pkg/kube/inject/webhook.go, DetectNativeSidecar)."""
        kubelet_version = json.loads(self.kube.kubectl("version", "-o", "json"))["serverVersion"]["gitVersion"]
        nodes = range(self.lab.node_count)  # set by Lab.up before it admits the pods
        self._apply([{"apiVersion": "v1", "kind": "Node", "metadata": {"name": self._node_name(n), "labels": {"kubernetes.io/hostname": self._node_name(n)}}}
                     for n in nodes])
        for node in nodes:
            status = {"status": {"nodeInfo": {"kubeletVersion": kubelet_version}, "conditions": [{"type": "Ready", "status": "True"}]}}
            self.kube.kubectl("patch", "node", self._node_name(node), "--subresource=status", "--type=merge", "-p", json.dumps(status))

    @staticmethod
    def _labels(spec: PodSpec) -> dict[str, str]:
        """A pod's labels in the API server: ``app`` its name unless its spec says otherwise."""
        return {"app": spec.name, **spec.labels}

    def _pod(self, spec: PodSpec) -> dict:
        labels, annotations = self._labels(spec), {}
        if spec.proxyless:
            annotations = dict(PROXYLESS_TEMPLATE)
        elif not spec.sidecar:
            labels["sidecar.istio.io/inject"] = "false"
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": spec.name, "namespace": spec.k8s_namespace, "labels": labels, "annotations": annotations},
                "spec": {"serviceAccountName": spec.service_account, "nodeName": self._node_name(spec.node),
                         "containers": [{"name": "app", "image": f"meshlab/{spec.app}-app", "ports": [{"containerPort": port} for port in spec.ports]}]}}

    # -- the kubelet's part, once the pods run -------------------------------------------------
    def _report_status(self) -> None:
        for pod in self.lab.pods.values():
            status = {"status": {"phase": "Running", "podIP": pod.ip, "podIPs": [{"ip": pod.ip}], "hostIP": "127.0.0.1",
                                 "conditions": [{"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}]}}
            self.kube.kubectl("-n", pod.k8s_namespace, "patch", "pod", pod.name, "--subresource=status", "--type=merge", "-p", json.dumps(status))

    def agent_folder(self, pod: str) -> Path:
        """A proxyless pod's agent files: its xDS socket ``XDS`` and ``grpc-bootstrap.json`` (the agent's
        ./etc/istio/proxy in the istio-proxy container)."""
        return self.folder / "agents" / self.lab.pod(pod).name

    def bootstrap_path(self, pod: str) -> Path:
        """The gRPC bootstrap of a proxyless pod, what its GRPC_XDS_BOOTSTRAP names."""
        spec = self.specs.get(pod)
        if spec is None or not spec.proxyless:
            raise LabError(f"pod {pod} is not proxyless: it has no gRPC bootstrap (start it with PodSpec(..., sidecar=False, proxyless=True))")
        return self.agent_folder(pod) / "grpc-bootstrap.json"

    def _start_grpc_agent(self, name: str) -> None:
        """What the grpc-agent template's pilot-agent does for the pod's gRPC clients: the bootstrap,
        naming the pod as Istio does and its xDS socket as the server, and the socket itself."""
        pod, folder = self.lab.pod(name), self.agent_folder(name)
        folder.mkdir(parents=True)
        socket = folder / "XDS"
        self.lab.spawn(name, "agent", [sys.executable, "-m", "meshlab.lab.xdsrelay", str(socket), self.istiod.xds_address], in_pod=False,
                       wait_ready=True)
        node, metadata = proxyless_node(name, pod.k8s_namespace, pod.ip)
        bootstrap(f"unix://{socket}", node, self.bootstrap_path(name), metadata)

    def add_service(self, name: str, namespace: str, port: int, selector: dict[str, str], target_port: int = APP_PORT, protocol: str = "http",
                    timeout: float = 30) -> str:
        """A Service selecting the namespace's pods by their labels (its ClusterIP the lab's virtual IP; its port named for
        ``protocol``, which is how Istio tells gRPC from HTTP), given to the lab's sidecars too
        (``Lab.add_service``); returns its virtual IP once the EndpointSlice controller has listed every
        selected pod as a ready endpoint."""
        candidates = [spec for spec in self.specs.values() if spec.k8s_namespace == namespace]
        pods = [spec.name for spec in candidates if selector.items() <= self._labels(spec).items()]
        if not selector or not pods:
            labels = "; ".join(f"{spec.name}: {self._labels(spec)}" for spec in candidates) or "none"
            raise LabUsageError(f"service {name}: selector {selector} selects no pod of namespace {namespace} (its pods' labels: {labels})")
        vip = self.lab.add_service(name, port, pods, target_port)
        self._apply([{"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
                      "spec": {"clusterIP": vip, "selector": selector,
                               "ports": [{"name": protocol, "port": port, "targetPort": target_port, "protocol": "TCP"}]}}])
        wanted, deadline = {self.lab.pod(pod).ip for pod in pods}, time.monotonic() + timeout
        while (listed := self.endpoints(name, namespace)) != wanted:
            if time.monotonic() > deadline:
                raise LabError(f"service {name}: the EndpointSlice controller listed {sorted(listed)} within {timeout:.0f} s, "
                               f"not the selected pods' {sorted(wanted)}")
            time.sleep(0.1)
        return vip

    def endpoints(self, service: str, namespace: str) -> set[str]:
        """The ready addresses of the service's EndpointSlices, as the controller wrote them."""
        slices = json.loads(self.kube.kubectl("-n", namespace, "get", "endpointslices", "-l", f"kubernetes.io/service-name={service}", "-o", "json"))
        return {address for piece in slices["items"] for endpoint in piece.get("endpoints") or []
                if endpoint.get("conditions", {}).get("ready") for address in endpoint["addresses"]}

    # -- looking ---------------------------------------------------------------------------------
    def pod(self, name: str) -> dict:
        """The Pod as the API server stores it (injected, if its namespace asked for injection)."""
        pod = self.lab.pod(name)
        return self._get("pod", pod.name, pod.k8s_namespace)

    def injected_rules(self, name: str) -> str:
        """The iptables-restore text the injected istio-init of this pod asks for, rendered by meshlab."""
        return build_rules(injected_capture(self.pod(name))).restore_text(4)
