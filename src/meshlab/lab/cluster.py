"""The embedded live lab: a node, its pods, their sidecars and Istio's rules, on your own kernel.

A node is a network namespace holding a bridge; a pod is a network namespace wired to it
(``meshlab.lab.network``) with, if meshed, Istio's own rules from ``meshlab.intercept`` applied
with iptables-restore (or made by the pod's init container, the injected istio-init of a lab served by
istiod: ``meshlab.lab.istiod``), a sidecar process as uid 1337 and the demo app. In ``per-node`` proxy mode the pods have
no sidecars; one shared proxy per node (the same proxy code) captures its pods' traffic in the
node's namespace, as Linkerd 1's per-host proxy or Istio ambient's ztunnel do. A service is a
stable virtual address whose connections the proxies send to its endpoints, as Envoy does with EDS.

Everything the lab creates carries its prefix (``ml`` unless told otherwise): namespaces are
``<prefix>-node0``, ``<prefix>-<pod>``; processes are recorded with PID and start time in the
lab's state file (``meshlab.lab.state``), so ``down`` and ``cleanup`` (``meshlab.lab.teardown``,
also after a crash) end exactly what the lab started and delete exactly what it created. A failure
during ``up`` removes what was created before it.

Without root the same lab runs inside a user namespace that one holder process keeps open
(``meshlab.lab.rootless``); its state folder is then ``/tmp/meshlab-<uid>/<prefix>``.

    Lab   up, down, status, exec, logs, hops, counters, requests, services; a context manager
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from meshlab.ebpf.datapath import EbpfDatapath, EbpfError
from meshlab.intercept import build_rules
from meshlab.lab import hops, kubelet, network, rootless
from meshlab.lab.admin import ADMIN_PORT
from meshlab.lab.client import Reply, local_http, send
from meshlab.lab.composition import Composition
from meshlab.lab.netns import Host, LabError, LabUsageError, NetNS
from meshlab.lab.processes import ProcessRecord, record, stop
from meshlab.lab.spec import (APP_PORT, COLLECTOR_POD, COLLECTOR_PORT, DATAPATHS, DEFAULT_PREFIX, FIRST_POD_HOST, LOG_ROLES, MAX_NODES, MAX_PODS, PROXY_MODES,
                              SERVICE_NETWORK, SIDECAR_GID, SIDECAR_UID, Pod, PodSpec, capture_for)
from meshlab.lab.state import LabState, read_state
from meshlab.lab.teardown import cleanup


class Lab(Composition):
    """One live lab, identified by its prefix. ``Lab(prefix).up(...)`` creates it; ``Lab.attach(prefix)``
    opens one that is already running (from another process, e.g. the CLI)."""

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        super().__init__(prefix)
        self.proxy_mode, self.node_count, self.datapath = "sidecar", 1, "iptables"
        self.ebpf = EbpfDatapath(self.state_dir, prefix)
        self.pods: dict[str, Pod] = {}
        self.processes: list[tuple[str, ProcessRecord]] = []
        self.services: dict[str, dict] = {}
        self._executors: dict[str, ThreadPoolExecutor] = {}
        self._lock = threading.Lock()

    # -- life cycle ------------------------------------------------------------------------
    def up(self, pods: int | list[PodSpec] = 2, down_at_exit: bool = False, nodes: int = 1, proxy_mode: str = "sidecar", datapath: str = "iptables",
           collector: bool = False, admit: Callable[[list[PodSpec]], list[PodSpec]] | None = None) -> Lab:
        """Create the nodes and pods, apply the rules, start apps and proxies; undo everything on failure.

        ``pods`` is a count (spread over the nodes in turn) or PodSpecs. ``proxy_mode`` "sidecar"
        gives meshed pods their own sidecar; "per-node" gives every node one shared proxy instead.
        ``datapath`` "ebpf" sends meshed pods' outbound connections to their sidecar with
        cgroup/connect4 instead of iptables, and short-circuits local socket pairs with sk_msg
        (inbound capture stays Istio's PREROUTING rules).
        ``down_at_exit`` stops the lab when this Python process exits (for notebooks, whose cells
        cannot share a ``with`` block); the CLI leaves it off, since its lab outlives the command.
        ``collector`` adds a pod ``collector`` running a telemetry collector (Envoy's ALS and OTLP on
        4317), where the data-plane pods' access logs and spans can go (``meshlab.lab.proxyconfig``).
        ``admit``, if given, sees the pods' specs once the lab's state folder exists and before any pod is
        made, and returns them as admitted, as an admission webhook changes a pod before a kubelet sees it
        (``meshlab.lab.istiod``: istiod's injector sets each sidecar pod's capture); what it starts, it
        adopts (``adopt``), so that a failure later takes it down with the rest."""
        specs = [PodSpec(f"pod{i}", node=i % nodes) for i in range(pods)] if isinstance(pods, int) else list(pods)
        if collector:
            specs.append(PodSpec(COLLECTOR_POD, sidecar=False, ports=()))
        if not 1 <= len(specs) <= MAX_PODS:
            raise LabUsageError(f"a lab has 1 to {MAX_PODS} pods, not {len(specs)}")
        if len({spec.name for spec in specs}) != len(specs):
            raise LabUsageError("pod names must be unique")
        if not 1 <= nodes <= MAX_NODES or any(not 0 <= spec.node < nodes for spec in specs):
            raise LabUsageError(f"a lab has 1 to {MAX_NODES} nodes, and every pod's node must be one of them (0-{nodes - 1})")
        if proxy_mode not in PROXY_MODES:
            raise LabUsageError(f"proxy mode {proxy_mode!r} is not one of {', '.join(PROXY_MODES)}")
        if datapath not in DATAPATHS:
            raise LabUsageError(f"datapath {datapath!r} is not one of {', '.join(DATAPATHS)}")
        if datapath == "ebpf" and proxy_mode != "sidecar":
            raise LabUsageError("the eBPF datapath works with sidecars (proxy mode 'sidecar') only")
        if proxy_mode == "per-node":
            specs = [replace(spec, sidecar=False) for spec in specs]
        specs = [replace(spec, capture=capture_for(datapath, spec.capture)) for spec in specs]
        if any(spec.dataplane for spec in specs):
            # The HTTP side and the agent need more than the standard library (a lab without root runs without
            # them): imported only for such labs. A pod with an agent gets Istio's DNS capture too
            # (ISTIO_META_DNS_CAPTURE): its DNS goes to the agent's 15053.
            from meshlab.lab.agent import CLUSTER_DNS

            specs = [replace(spec, capture=replace(spec.capture, redirect_dns=True, dns_servers_v4=(CLUSTER_DNS,))) if spec.dataplane else spec
                     for spec in specs]
        if self.rootless:
            if datapath == "ebpf":
                raise LabUsageError("the eBPF datapath needs root (it loads BPF programs and makes a cgroup); without root use --datapath iptables")
            if reason := rootless.unavailable():
                raise LabError(f"the live lab needs root, or user namespaces to run without it: {reason}; fix: {rootless.FIX}")
        self.refuse_existing(in_use=rootless.holder_of(self.state_dir) is not None)
        self.proxy_mode, self.node_count, self.datapath = proxy_mode, nodes, datapath

        def build() -> None:
            self.state_dir.mkdir(exist_ok=True)
            self.state_dir.chmod(0o755)  # the sidecars, as uid 1337, read services.json
            if self.rootless:
                self.host = rootless.start_holder(self.state_dir)
            self._write_services()
            admitted = admit(specs) if admit is not None else specs
            for node in range(nodes):
                network.create_node(self.host, self.prefix, node)
            if nodes > 1:
                network.create_fabric(self.host, self.prefix, nodes)
            hosts = dict.fromkeys(range(nodes), FIRST_POD_HOST)
            for index, spec in enumerate(admitted):
                self._create_pod(spec, f"{network.POD_NETWORK}.{spec.node}.{hosts[spec.node]}", index)
                hosts[spec.node] += 1
            if proxy_mode == "per-node":
                for node in range(nodes):
                    network.capture_at_node(self.host, self.prefix, node)
            if datapath == "ebpf":
                try:
                    self.ebpf.up()
                except EbpfError as error:
                    raise LabError(f"the eBPF datapath could not start: {error}") from None
            if any(spec.dataplane for spec in specs):
                from meshlab.lab.proxyconfig import configure_pods  # the HTTP side's control plane: only for such labs

                configure_pods(self)  # each data-plane sidecar finds its inbound listener when it starts
            self._start_processes(admitted)
            self._save()
        return self.bring_up(build, down_at_exit)

    def down(self) -> None:
        """Stop every process the lab started and delete every namespace it created (idempotent)."""
        for executor in self._executors.values():
            executor.shutdown(wait=False, cancel_futures=True)
        self._executors.clear()
        cleanup(self.prefix, [process for _, process in self.processes])
        self.pods.clear()
        self.processes.clear()

    @property
    def rootless(self) -> bool:
        """True when this process is not root: the lab then lives in a user namespace."""
        return os.geteuid() != 0

    @classmethod
    def attach(cls, prefix: str = DEFAULT_PREFIX) -> Lab:
        """The running lab with this prefix, from its state file."""
        lab = cls(prefix)
        state = read_state(lab.state_dir)
        if state is None:
            raise LabUsageError(f"no lab with prefix {prefix!r} is running (start one with `meshlab lab up --prefix {prefix}`)")
        if lab.rootless:
            holder = rootless.holder_of(lab.state_dir)
            if holder is None:
                raise LabError(f"lab {prefix!r} lost the process holding its namespaces; remove what is left with `meshlab lab cleanup --prefix {prefix}`")
            lab.host = Host(holder.pid)
        lab.pods = {pod["name"]: Pod(**{**pod, "ports": tuple(pod["ports"])}, host=lab.host) for pod in state.pods}
        lab.proxy_mode, lab.node_count, lab.datapath = state.proxy_mode, state.nodes, state.datapath
        lab.processes, lab.services = state.processes, state.services
        return lab

    def spawn(self, pod: str, role: str, argv: list[str], in_pod: bool = True, environment: dict[str, str] | None = None,
              cwd: Path | None = None, wait_ready: bool = False) -> subprocess.Popen:
        """Start a program of ``pod`` in its network namespace (``ip netns exec`` execs it: the PID is the
        program's) or, with ``in_pod`` False, on the host; it logs to the pod's log of ``role`` and is
        adopted, so ``down`` and ``cleanup`` end it. With ``wait_ready``, returns once its log says it is
        ready, as the lab's own processes do (``kubelet.wait_ready``)."""
        namespace = self.pod(pod).namespace
        with self._log(pod, role).open("w") as log:  # the child keeps its own copy of the handle
            process = subprocess.Popen(namespace.argv(argv) if in_pod else argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                       cwd=cwd, env={**os.environ, **(environment or {})}, start_new_session=True)
        self.adopt(pod, record(process.pid, role))
        if wait_ready:
            kubelet.wait_ready([{"pod": pod, "role": role, "log": str(self._log(pod, role))}], self.state_dir)
        return process

    def adopt(self, owner: str, process: ProcessRecord) -> None:
        """Record a process started for this lab by someone else (SPIRE's server and agent, say), so that
        ``down`` and ``cleanup`` (which read the state file) stop it too."""
        self.processes.append((owner, process))
        self._save()

    # -- building --------------------------------------------------------------------------
    def node_netns(self, node: int) -> NetNS:
        return NetNS(network.node_name(self.prefix, node), self.host)

    def _create_pod(self, spec: PodSpec, ip: str, index: int) -> None:
        pod = network.wire_pod(self.host, self.prefix, spec.name, spec.node, ip, index)
        if spec.sidecar and spec.init is not None:
            environment = [f"{name}={value}" for name, value in spec.init.environment.items()]
            done = pod.run(["env", *environment, *spec.init.argv], check=False, timeout=60)
            self._log(spec.name, "init").write_text(done.stdout + done.stderr)  # what `kubectl logs -c istio-init` shows
            if done.returncode != 0:
                raise LabError(f"pod {spec.name}: its init container {' '.join(spec.init.argv[:2])} failed (exit {done.returncode}): "
                               f"{(done.stderr or done.stdout).strip()[-1500:]}")
        elif spec.sidecar:
            # What istio-init does: Istio's rules, in the pod's namespace, before any app starts.
            rules = build_rules(spec.capture).restore_text(4)
            if self.rootless:
                rules = rootless.owner_as_mark(rules, spec.capture.proxy_uid.split(","), spec.capture.proxy_gid.split(","))
            pod.run(["iptables-restore", "--noflush"], stdin=rules)
        self.pods[spec.name] = Pod(spec.name, pod.name, ip, spec.ports, spec.sidecar, spec.capture.istio_fields() if spec.sidecar else {}, spec.node,
                                   spec.k8s_namespace, spec.service_account, dict(spec.labels), spec.dataplane, self.host)

    def _start_processes(self, specs: list[PodSpec]) -> None:
        # Without root the proxy cannot become uid 1337 (unmapped); it marks its sockets instead.
        proxy = {"uid": None, "gid": None, "mark": rootless.PROXY_MARK} if self.rootless else {"uid": SIDECAR_UID, "gid": SIDECAR_GID, "mark": None}
        processes = []
        for spec in specs:
            pod = self.pods[spec.name]
            cgroup = str(self.ebpf.cgroup) if self.datapath == "ebpf" and spec.sidecar else None
            processes.append({"role": "app", "pod": pod.name, "netns": pod.netns, "log": str(self._log(pod.name, "app")), "ports": list(pod.ports),
                              "app": spec.app, "cgroup": cgroup})
            if spec.sidecar:
                dataplane = {"dataplane": str(self.dataplane_file(pod.name))} if spec.dataplane else {}
                processes.append({"role": "sidecar", "pod": pod.name, "netns": pod.netns, "log": str(self._log(pod.name, "sidecar")),
                                  **proxy, "services": str(self.state_dir / "services.json"), "cgroup": cgroup, **dataplane})
            if spec.name == COLLECTOR_POD and not spec.sidecar:
                processes.append({"role": "collector", "pod": pod.name, "netns": pod.netns, "log": str(self._log(pod.name, "collector"))})
        if any(spec.dataplane for spec in specs):
            from meshlab.lab.agent import process_specs

            processes += process_specs(self, [self.pods[spec.name] for spec in specs if spec.dataplane])
        if self.proxy_mode == "per-node":
            for node in range(self.node_count):
                name = f"node{node}"
                processes.append({"role": "node-proxy", "pod": name, "netns": self.node_netns(node).name, "log": str(self._log(name, "node-proxy")),
                                  **proxy, "services": str(self.state_dir / "services.json")})
        try:
            for pod, process in kubelet.launch(self.host, processes):
                self.processes.append((pod, process))
        finally:
            self._save()  # what started is recorded before anything else can fail
        kubelet.wait_ready(processes, self.state_dir)

    def dataplane_file(self, pod: str) -> Path:
        """The pod's data-plane file: its inbound listener and extension configs (``meshlab.lab.dataplane``)."""
        return self.state_dir / f"{pod}-dataplane.json"

    def collector_address(self) -> str | None:
        """Where the collector pod listens (ALS and OTLP), None without one."""
        pod = self.pods.get(COLLECTOR_POD)
        return f"{pod.ip}:{COLLECTOR_PORT}" if pod is not None and not pod.sidecar else None

    def collected(self) -> list[dict]:
        """What the collector pod received (access log entries and spans), oldest first."""
        if self.collector_address() is None:
            raise LabUsageError(f"lab {self.prefix!r} has no collector pod; start it with collector=True")
        text = self.logs(COLLECTOR_POD, "collector")
        return [record for record in map(json.loads, text.splitlines()) if record.get("event") in ("access_log", "span")]

    def admin(self, pod: str, path: str, method: str = "GET") -> tuple[int, str]:
        """One call to the pod's proxy admin on 127.0.0.1:15000 (Envoy's admin API), from inside the pod."""
        if not self.pod(pod).dataplane:
            raise LabUsageError(f"pod {pod} has no admin port: it was not started with dataplane=True")
        return self.in_pod(pod, local_http, ADMIN_PORT, path, method)

    def _save(self) -> None:
        LabState(self.prefix, self.datapath, self.proxy_mode, self.node_count, [pod.saved() for pod in self.pods.values()],
                 self.processes, self.services).write(self.state_dir)

    # -- services --------------------------------------------------------------------------
    def add_service(self, name: str, port: int, pods: list[str], target_port: int = APP_PORT) -> str:
        """A ClusterIP service: returns its virtual IP; sidecars send its connections to the pods."""
        unknown = [pod for pod in pods if pod not in self.pods]
        if unknown:
            raise LabUsageError(f"service {name}: no pod {unknown[0]!r}; pods are {', '.join(self.pods)}")
        vip = self.services.get(name, {}).get("vip") or f"{SERVICE_NETWORK}.{10 + len(self.services)}"
        self.services[name] = {"vip": vip, "port": port, "endpoints": [f"{self.pods[p].ip}:{target_port}" for p in pods]}
        self._write_services()
        if any(pod.dataplane for pod in self.pods.values()):
            from meshlab.lab.agent import write_names

            write_names(self)  # the agents' DNS proxies answer from it
        self._save()
        return vip

    def _write_services(self) -> None:
        table = {f"{s['vip']}:{s['port']}": s["endpoints"] for s in self.services.values()}
        path = self.state_dir / "services.json"
        path.write_text(json.dumps(table))
        path.chmod(0o644)

    # -- looking and poking ----------------------------------------------------------------
    def pod(self, name: str) -> Pod:
        if name not in self.pods:
            raise LabUsageError(f"no pod {name!r} in lab {self.prefix!r}; pods are {', '.join(self.pods) or 'none'}")
        return self.pods[name]

    def status(self) -> dict:
        """The pods; with ``control_plane`` when the real istiod serves the lab (meshlab.lab.istiod wrote its addresses)."""
        status = {
            "prefix": self.prefix,
            "datapath": self.datapath,
            "proxy_mode": self.proxy_mode,
            "pods": [{"name": p.name, "ip": p.ip, "app_port": p.app_port, "sidecar": p.sidecar, "node": f"node{p.node}"} for p in self.pods.values()],
        }
        addresses = self.state_dir / "istiod.json"
        if addresses.exists():
            status["control_plane"] = {"name": "istiod", **json.loads(addresses.read_text())}
        return status

    def exec(self, pod: str, command: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a command inside a pod's network namespace (as root)."""
        return subprocess.run(self.pod(pod).namespace.argv(command), capture_output=True, text=True, timeout=timeout, check=False)

    def logs(self, pod: str, role: str) -> str:
        """A pod's ``app``, ``sidecar`` or ``init`` (its init container's) log, a node's ``node-proxy`` log (``logs("node0", "node-proxy")``),
        or a gateway pod's ``gateway`` log (a lab of several clusters, ``meshlab.lab.clusters``)."""
        if role not in LOG_ROLES:
            raise LabUsageError(f"logs of {role!r}: choose {', '.join(LOG_ROLES)}")
        if role == "gateway":
            if not self._log(self.pod(pod).name, role).exists():
                raise LabUsageError(f"pod {pod} runs no gateway")
        elif role == "node-proxy":
            if self.proxy_mode != "per-node" or pod not in self.proxy_names():
                raise LabUsageError(f"no node proxy {pod!r}; this lab's proxies are {', '.join(self.proxy_names())}")
        elif role == "sidecar" and not self.pod(pod).sidecar:
            raise LabUsageError(f"pod {pod} has no sidecar")
        else:
            self.pod(pod)
        path = self._log(pod, role)
        return path.read_text() if path.exists() else ""

    def proxy_names(self) -> list[str]:
        """Pods with sidecars, or nodes (node0, ...) in per-node mode: what hops() and kill_proxy() take."""
        if self.proxy_mode == "per-node":
            return [f"node{n}" for n in range(self.node_count)]
        return [pod.name for pod in self.pods.values() if pod.sidecar]

    def _proxy_role(self, name: str) -> str:
        return "node-proxy" if self.proxy_mode == "per-node" else "sidecar"

    def hops(self, proxy: str) -> list[dict]:
        """A proxy's hop records (one per finished connection), oldest first: a pod's sidecar, or a node's proxy."""
        return hops.parse(self.logs(proxy, self._proxy_role(proxy)))

    def wait_for_hop(self, proxy: str, timeout: float = 5.0, since: float | None = None, **fields) -> dict:
        """The hop of ``proxy`` whose fields equal ``fields`` (opened at or after ``since``, if given),
        waited for (``meshlab.lab.hops.wait_for``). Matching by content, not by position, keeps an earlier
        connection that closes late from being taken for this one."""
        return hops.wait_for(lambda: self.hops(proxy), f"{proxy} (its log is in {self.state_dir})", timeout, since, **fields)

    def sidecar_hops(self, reply: Reply, client: str, server: str) -> tuple[dict, dict]:
        """The (outbound, inbound) hops one request made through the client's and the server's sidecars.

        The app saw the inbound sidecar's upstream socket as its peer; that sidecar accepted from the
        outbound sidecar's upstream socket: the two addresses chain the hops to this very request."""
        inbound = self.wait_for_hop(server, direction="inbound", upstream_source=reply.body["peer"])
        outbound = self.wait_for_hop(client, direction="outbound", upstream_source=inbound["downstream"])
        return outbound, inbound

    def proxy_memory(self) -> dict[str, dict[str, int]]:
        """Resident (RSS) and proportional (PSS, shared pages split among sharers) memory of each proxy, in kB."""
        memory = {}
        for owner, process in self.processes:
            if process.role in ("sidecar", "node-proxy") and process.alive():
                rollup = Path(f"/proc/{process.pid}/smaps_rollup").read_text()
                values = {line.split(":")[0]: int(line.split()[1]) for line in rollup.splitlines()[1:]}
                memory[owner] = {"rss_kb": values["Rss"], "pss_kb": values["Pss"]}
        return memory

    def kill_proxy(self, proxy: str) -> None:
        """End one proxy process (what a crash would do); its pods' captured traffic then has nowhere to go."""
        role = self._proxy_role(proxy)
        matches = [process for owner, process in self.processes if owner == proxy and process.role == role]
        if not matches:
            raise LabUsageError(f"no proxy {proxy!r}; proxies are {', '.join(self.proxy_names())}")
        stop(matches[0])

    def counters(self, pod: str) -> dict:
        """The sidecar's counters, summed from its hop log: connections and bytes per direction, errors."""
        return hops.counters(self.hops(pod))

    def iptables_save(self, pod: str, table: str = "nat") -> str:
        """The pod's rules as the kernel holds them, with packet counters (``iptables-save -c``)."""
        return self.pod(pod).namespace.run(["iptables-save", "-c", "-t", table]).stdout

    def in_pod(self, pod: str, function, *args):
        """Run ``function(*args)`` on a thread inside the pod's network namespace (as uid 0, the app's side)."""
        name = self.pod(pod).netns
        with self._lock:
            if name not in self._executors:
                self._executors[name] = ThreadPoolExecutor(1, thread_name_prefix=name, initializer=self.pod(pod).namespace.enter)
        return self._executors[name].submit(function, *args).result(timeout=120)

    def request(self, pod: str, host: str, port: int = APP_PORT, path: str = "/", headers: dict[str, str] | None = None) -> Reply:
        """One HTTP request from ``pod`` on a new connection."""
        return self.requests(pod, host, port, 1, keepalive=False, path=path, headers=headers)[0]

    def requests(self, pod: str, host: str, port: int = APP_PORT, count: int = 100, keepalive: bool = True, path: str | None = None,
                 headers: dict[str, str] | None = None) -> list[Reply]:
        """``count`` requests from ``pod``, over one keep-alive connection or a new connection each,
        to ``path`` (or to /0, /1, ...).

        The client is a thread of this process inside the pod's namespace, except where a thread
        cannot be: with the eBPF datapath a meshed pod's client must be a process in the lab's cgroup
        (the programs see only those sockets), and a rootless lab's namespaces can only be entered by
        processes started inside its user namespace. Then it runs as ``python -m meshlab.lab.client``."""
        if not (self.rootless or self._in_cgroup(pod)):
            return self.in_pod(pod, send, host, port, count, keepalive, path, headers)
        if headers:
            raise LabUsageError("request headers are sent from a client thread; this lab's client runs as a process (rootless or eBPF)")
        argv = [sys.executable, "-m", "meshlab.lab.client", host, str(port), "--count", str(count)]
        argv += ([] if keepalive else ["--new-connections"]) + ([] if path is None else ["--path", path])
        done = self.exec(pod, self.in_cgroup_argv(argv) if self._in_cgroup(pod) else argv)
        if done.returncode != 0:
            raise ConnectionError(f"client in pod {pod} failed: {done.stderr.strip()[-500:]}")
        return [Reply(**reply) for reply in json.loads(done.stdout)]

    def _in_cgroup(self, pod: str) -> bool:
        return self.datapath == "ebpf" and self.pod(pod).sidecar

    def in_cgroup_argv(self, argv: list[str]) -> list[str]:
        """``argv`` run by a shell that first moves itself into the lab's eBPF cgroup."""
        return ["sh", "-c", 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"', "sh", str(self.ebpf.cgroup), *argv]

    def loopback_packets(self, pod: str, port: int, exchange) -> tuple[int, int]:
        """Run ``exchange()`` while tcpdump watches the pod's ``lo`` for TCP port ``port``; returns
        (packets seen, packets carrying payload). Redirected sk_msg data never reaches ``lo``.

        The exchange starts once tcpdump says "listening on"; afterwards its lines are read until none
        has come for a moment (it writes each packet as it sees it, ``-U``)."""
        capture = subprocess.Popen(self.pod(pod).namespace.argv(["tcpdump", "-i", "lo", "-nn", "-q", "-l", "-U", f"tcp port {port}"]),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines: queue.Queue[str] = queue.Queue()
        listening = threading.Event()

        def read_packets() -> None:
            for line in capture.stdout:
                lines.put(line)

        def read_status() -> None:
            for line in capture.stderr:
                if "listening on" in line:
                    listening.set()

        for reader in (read_packets, read_status):
            threading.Thread(target=reader, daemon=True).start()
        seen = []
        try:
            if not listening.wait(10):
                raise LabError(f"tcpdump in pod {pod} did not start listening within 10 s")
            exchange()
            while True:
                try:
                    seen.append(lines.get(timeout=0.3))
                except queue.Empty:
                    break
        finally:
            capture.terminate()
            capture.wait(timeout=10)
        lengths = [int(length) for length in re.findall(r"tcp (\d+)", "".join(seen))]
        return len(lengths), sum(length > 0 for length in lengths)

    def ebpf_stats(self) -> dict[str, int]:
        if self.datapath != "ebpf":
            raise LabUsageError(f"lab {self.prefix!r} runs the {self.datapath} datapath; start one with --datapath ebpf")
        return self.ebpf.stats()
