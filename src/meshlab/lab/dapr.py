"""Dapr beside the mesh on the live lab: two pods, ``checkout`` and ``orders``, each with a small app and
the real ``daprd`` (v1.14.0, built by the upstream stage) in self-hosted mode, driven from the checkout
pod by Dapr's own Python SDK (``dapr`` on PyPI); optionally with meshlab's sidecar and Istio's rules in
both pods, so the same calls cross the mesh too.

Each daprd reads its resources from the lab's state folder (``dapr/<pod>/``): ``state.in-memory`` and
``pubsub.in-memory`` components, both inside that daprd (a key saved through checkout's daprd is
checkout's; a message published there reaches subscribers behind the same daprd: a shared store or
broker would be a remote component, and the mesh would see daprd's connections to it), and a
Configuration choosing name resolution. Self-hosted daprd resolves app-ids by mDNS (multicast);
the sqlite and consul resolvers are allcomponents only (cmd/daprd/components, v1.14.0). So the lab
uses ``nameresolution.kubernetes``, whose ``template`` option replaces its DNS name by any Go
template of the app-id: here a table of the pods' addresses, the part DNS plays in Kubernetes
(components-contrib nameresolution/kubernetes, v1.14.0-rc.6, the version dapr v1.14.0 pins).

No placement and no Sentry run, which leaves out actors (they need placement; so do workflows, which
run on actors in v1.14) and Dapr's own mTLS (Sentry issues its certificates: daprd logs "mTLS is
disabled"), so daprd-to-daprd gRPC is plaintext on port 50002.

Every process (the apps and the daprds, beside the lab's own) is recorded in the lab's state file,
so ``meshlab lab down --prefix P`` or ``cleanup`` stops it, also after a crash of the Python that
started it.

    CHECKOUT, ORDERS, STORE, PUBSUB, TOPIC   the pods, and the components' and topic's names
    resources           the YAML of one pod's components and Configuration
    DaprApp, serve      the pods' app: answers every call with what it saw of the caller, subscribes, logs JSON lines
    sdk_calls           invoke, save_state, get_state, publish with Dapr's Python SDK, in the process calling it
    Connection          one established TCP connection in a pod, the lab process holding it, its byte counters
    Measurement         latencies of the same call app to app and via the two daprds; medians, ratio, paths
    DaprLab             up, down; sdk, invoke, save_state, get_state, publish, received, wait_received, logs;
                        measure, paths, connections, listening, legs (one call's connections, as the model's legs)
    hop_legs            the model's hops (``meshlab.dapr.request_path``) in the form ``legs`` reads
    main                ``python -m meshlab.lab.dapr app POD PORT`` (the app) or ``sdk CALLS`` (JSON in and out)
"""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
import threading
import time
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from meshlab.dapr import (CALLER_ID_HEADER, DAPR_GRPC_PORT, DAPR_HTTP_PORT, DAPR_INTERNAL_GRPC_PORT, DAPR_METRICS_PORT, Hop, api_path, proxies,
                          request_path)
from meshlab.lab import kubelet
from meshlab.lab.client import HttpClient, Reply
from meshlab.lab.cluster import Lab
from meshlab.lab.composition import Composition
from meshlab.lab.netns import LabError, LabUsageError
from meshlab.lab.spec import APP_PORT, DEFAULT_CAPTURE, DEFAULT_PREFIX, PodSpec

CHECKOUT, ORDERS = "checkout", "orders"
STORE, PUBSUB, TOPIC = "statestore", "pubsub", "orders"
#: Where daprd delivers the topic's messages (the app says so at GET /dapr/subscribe).
EVENTS_ROUTE = f"/events/{TOPIC}"
#: The headers daprd adds that show who called (pkg/messaging/direct_messaging.go, v1.14.0: caller and
#: callee app-id, X-Forwarded-For and Forwarded with the caller's host address) and the W3C trace context.
SEEN_HEADERS = (CALLER_ID_HEADER, "dapr-callee-app-id", "x-forwarded-for", "forwarded", "traceparent")
DAPRD_READY = "dapr initialized. Status: Running"  # pkg/runtime/runtime.go, v1.14.0
READY_TIMEOUT_S = 60.0


def resources(addresses: dict[str, str]) -> dict[str, str]:
    """File name -> YAML for a pod's daprd: the two in-memory components, and a Configuration whose
    name resolution maps each app-id in ``addresses`` to its pod's address (tracing on, so daprd
    writes a traceparent; nothing exports it)."""
    table = "".join(f'{{{{if eq .ID "{app}"}}}}{ip}{{{{end}}}}' for app, ip in addresses.items())
    component = "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  type: {kind}\n  version: v1\n"
    configuration = ("apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: lab\nspec:\n"
                     "  tracing:\n    samplingRate: \"1\"\n"
                     f"  nameResolution:\n    component: kubernetes\n    configuration:\n      template: '{table}:{{{{.Port}}}}'\n")
    return {"statestore.yaml": component.format(name=STORE, kind="state.in-memory"),
            "pubsub.yaml": component.format(name=PUBSUB, kind="pubsub.in-memory"),
            "configuration.yaml": configuration}


LOG_LOCK = threading.Lock()  # the app's threads write whole lines


class DaprApp(BaseHTTPRequestHandler):
    """The app of both pods (what Dapr calls the app: behind daprd's --app-port). Every request is answered with JSON saying what it saw (peer address, the headers
    daprd adds) and logged as one JSON line; GET /dapr/subscribe subscribes to the topic; messages
    delivered to its route are logged as ``message`` records (CloudEvents: id, source, data, traceparent)."""

    protocol_version = "HTTP/1.1"  # keep-alive, as daprd's app channel and the lab's client use
    disable_nagle_algorithm = True  # headers and body are separate writes: Nagle would hold the body for the ACK
    pod = ""

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        path = self.path.split("?")[0]
        seen = {name: self.headers.get(name) for name in SEEN_HEADERS if self.headers.get(name)}
        if self.command == "GET" and path == "/dapr/subscribe":
            answer: object = [{"pubsubname": PUBSUB, "topic": TOPIC, "route": EVENTS_ROUTE}]
        elif path == EVENTS_ROUTE:
            event = json.loads(body or b"{}")
            self._log({"event": "message", **{key: event.get(key) for key in ("id", "source", "topic", "data", "traceparent")}})
            answer = {"status": "SUCCESS"}
        else:
            answer = {"pod": self.pod, "peer": "%s:%s" % self.client_address[:2], "local": "%s:%s" % self.connection.getsockname()[:2],
                      "method": self.command, "path": path, "headers": seen, "body": body.decode("utf-8", "replace")}
            self._log({"event": "request", **answer})
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def _log(self, record: dict) -> None:
        with LOG_LOCK:
            sys.stdout.write(json.dumps(record) + "\n")
            sys.stdout.flush()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
        """Quiet: the JSON records above are the log."""


def serve(pod: str, port: int) -> None:
    """The app until SIGTERM: its ready line first (what the lab waits for)."""
    DaprApp.pod = pod
    server = ThreadingHTTPServer(("0.0.0.0", port), DaprApp)
    server.daemon_threads = True
    print(json.dumps({"event": "ready", "pod": pod, "ports": [port], "pid": os.getpid()}), flush=True)
    server.serve_forever()


def sdk_calls(calls: list[dict]) -> list[dict]:
    """Run ``calls`` with Dapr's Python SDK against the daprd on this host (127.0.0.1: 3500 for
    invocation over HTTP, the SDK's default; 50001 gRPC for the rest). Each call is a dict with
    ``call`` one of invoke, save_state, get_state, publish; each answer a dict."""
    from dapr.clients import DaprClient

    answers = []
    with DaprClient() as client:
        for call in calls:
            kind = call["call"]
            if kind == "invoke":
                reply = client.invoke_method(call["app_id"], call["method"], data=json.dumps(call.get("data", {})),
                                             content_type="application/json", http_verb="POST")
                answers.append({"status": reply.status_code, "body": json.loads(reply.data or b"{}")})
            elif kind == "save_state":
                client.save_state(call["store"], call["key"], json.dumps(call["value"]))
                answers.append({})
            elif kind == "get_state":
                state = client.get_state(call["store"], call["key"])
                answers.append({"value": json.loads(state.data) if state.data else None, "etag": state.etag})
            elif kind == "publish":
                client.publish_event(call["pubsub"], call["topic"], json.dumps(call["data"]), data_content_type="application/json")
                answers.append({})
            else:
                raise ValueError(f"no SDK call {kind!r}; calls are invoke, save_state, get_state, publish")
    return answers


@dataclass(frozen=True)
class Connection:
    """``process``: "<pod> <role>" for a process of the lab (role app, daprd or sidecar; this Python's
    own client threads are "<pod> app", the caller's app), else the command's name."""

    pod: str
    process: str
    local: str
    peer: str
    sent: int  # bytes the peer acknowledged (tcp_info's bytes_acked)
    received: int


@dataclass(frozen=True)
class Measurement:
    """Per-request latencies (µs) over one keep-alive connection from checkout: to the orders app, and to
    checkout's daprd invoking orders through orders' daprd; each names its path in ``meshlab.dapr.PATHS``
    (with sidecars, the app's call is "mesh", Dapr's "dapr+mesh" unless its port is excluded)."""

    repeats: int
    app_path: str
    dapr_path: str
    app_us: list[float]
    dapr_us: list[float]

    @property
    def ratio(self) -> float:
        """Median via Dapr over median app to app."""
        return statistics.median(self.dapr_us) / statistics.median(self.app_us)

    def __str__(self) -> str:
        lines = [f"checkout -> orders, medians of {self.repeats} requests on one keep-alive connection each"]
        for path, latencies in ((self.app_path, self.app_us), (self.dapr_path, self.dapr_us)):
            crossed = proxies(request_path(path))
            lines.append(f"  {path:<10} {statistics.median(latencies):>7.0f} µs  {len(crossed)} proxies{': ' if crossed else ''}{', '.join(crossed)}")
        return "\n".join(lines + [f"  via Dapr / app to app: {self.ratio:.1f}x"])


class DaprLab(Composition):
    """The Dapr lab on a live lab of its own (prefix ``prefix``); ``daprd`` is the upstream stage's binary."""

    def __init__(self, daprd: str, prefix: str = DEFAULT_PREFIX) -> None:
        super().__init__(prefix)
        self.daprd = daprd
        self.lab = Lab(prefix)
        self.meshed = False
        self.dapr_port_excluded = False

    # -- life cycle ------------------------------------------------------------------------
    def up(self, meshed: bool = False, dapr_port_excluded: bool = False, down_at_exit: bool = False) -> DaprLab:
        """Create the two pods (with sidecars and Istio's rules if ``meshed``; ``dapr_port_excluded``
        leaves daprd's port 50002 out of them, in and out), then each pod's app and daprd; wait until
        every daprd is running. Undoes everything on failure."""
        if os.geteuid() != 0:
            raise LabError("the Dapr lab needs root (daprd and its app run inside the lab's pods); run it as root")
        if dapr_port_excluded and not meshed:
            raise LabUsageError("dapr_port_excluded leaves Dapr's port out of the mesh's rules: it needs meshed=True")
        if not (Path(self.daprd).is_file() and os.access(self.daprd, os.X_OK)):
            raise LabUsageError(f"daprd {self.daprd!r} is not an executable file (build it with `meshlab upstream install daprd`)")
        port = str(DAPR_INTERNAL_GRPC_PORT)
        capture = replace(DEFAULT_CAPTURE, inbound_ports_exclude=port, outbound_ports_exclude=port) if dapr_port_excluded else DEFAULT_CAPTURE
        self.meshed, self.dapr_port_excluded = meshed, dapr_port_excluded
        # The lab's echo app listens on no port: each pod's app is this module's, started below.
        self.lab.up([PodSpec(name, sidecar=meshed, capture=capture, ports=()) for name in (CHECKOUT, ORDERS)])
        return self.bring_up(self._start, down_at_exit)

    def _folder(self, pod: str) -> Path:
        return self.lab.state_dir / "dapr" / pod

    def _start(self) -> None:
        addresses = {name: self.lab.pod(name).ip for name in (CHECKOUT, ORDERS)}
        for name in addresses:
            self._folder(name).mkdir(parents=True)
            for file, text in resources(addresses).items():
                (self._folder(name) / file).write_text(text)
        apps = [{"pod": name, "role": "dapr-app", "log": str(self._log(name, "dapr-app"))} for name in addresses]
        for spec in apps:
            self.lab.spawn(spec["pod"], "dapr-app", [sys.executable, "-m", "meshlab.lab.dapr", "app", spec["pod"], str(APP_PORT)],
                           cwd=self._folder(spec["pod"]))
        kubelet.wait_ready(apps, self.lab.state_dir)
        daprds = {}
        for name, ip in addresses.items():
            folder = self._folder(name)
            argv = [self.daprd, "--mode", "standalone", "--app-id", name, "--app-port", str(APP_PORT),
                    "--dapr-http-port", str(DAPR_HTTP_PORT), "--dapr-grpc-port", str(DAPR_GRPC_PORT),
                    "--dapr-internal-grpc-port", str(DAPR_INTERNAL_GRPC_PORT), "--metrics-port", str(DAPR_METRICS_PORT),
                    "--resources-path", str(folder), "--config", str(folder / "configuration.yaml"), "--log-as-json", "--enable-api-logging"]
            daprds[name] = self.lab.spawn(name, "daprd", argv, environment={"DAPR_HOST_IP": ip}, cwd=folder)
        deadline = time.monotonic() + READY_TIMEOUT_S
        waiting = set(daprds)
        while waiting:
            for name in list(waiting):
                if DAPRD_READY in self.logs(name, "daprd"):
                    waiting.discard(name)
                elif daprds[name].poll() is not None:
                    raise LabError(f"daprd of pod {name} exited ({daprds[name].returncode}) before it was running:\n{self.logs(name, 'daprd')[-1500:]}")
            if waiting and time.monotonic() > deadline:
                raise LabError(f"daprd of {', '.join(sorted(waiting))} not running within {READY_TIMEOUT_S:.0f} s; see {self.lab.state_dir}")
            time.sleep(0.05)

    def down(self) -> None:
        """Stop every process of the lab (daprds and apps included) and delete its namespaces (idempotent)."""
        self.lab.down()

    # -- Dapr's SDK, from the checkout pod --------------------------------------------------
    def sdk(self, calls: list[dict], pod: str = CHECKOUT) -> list[dict]:
        """``calls`` made with Dapr's Python SDK by a process in ``pod`` (gRPC's own threads would not
        stay in a namespace a thread entered, so the SDK runs in a process started there)."""
        done = self.lab.exec(pod, [sys.executable, "-m", "meshlab.lab.dapr", "sdk", json.dumps(calls)], timeout=120)
        if done.returncode != 0:
            raise LabError(f"Dapr's SDK in pod {pod} failed: {done.stderr.strip()[-1500:]}")
        return json.loads(done.stdout)

    def invoke(self, method: str = "new", data: dict | None = None, app_id: str = ORDERS) -> dict:
        """Service invocation from checkout: the answer's status and the orders app's JSON (what it saw)."""
        return self.sdk([{"call": "invoke", "app_id": app_id, "method": method, "data": data or {}}])[0]

    def save_state(self, key: str, value: object) -> None:
        self.sdk([{"call": "save_state", "store": STORE, "key": key, "value": value}])

    def get_state(self, key: str) -> dict:
        """The value (None if the key is not there) and its etag."""
        return self.sdk([{"call": "get_state", "store": STORE, "key": key}])[0]

    def publish(self, data: dict) -> None:
        self.sdk([{"call": "publish", "pubsub": PUBSUB, "topic": TOPIC, "data": data}])

    def received(self, pod: str = CHECKOUT) -> list[dict]:
        """The messages ``pod``'s app was delivered (CloudEvent fields), oldest first."""
        return [line for line in self._records(pod) if line["event"] == "message"]

    def wait_received(self, count: int, pod: str = CHECKOUT, timeout: float = 10.0) -> list[dict]:
        """``received``, once it holds at least ``count`` messages (delivery is asynchronous)."""
        deadline = time.monotonic() + timeout
        while len(messages := self.received(pod)) < count:
            if time.monotonic() > deadline:
                raise LabError(f"{pod}'s app received {len(messages)} of {count} messages within {timeout:.0f} s; see {self._log(pod, 'dapr-app')}")
            time.sleep(0.02)
        return messages

    def _records(self, pod: str) -> list[dict]:
        text = self.logs(pod, "dapr-app")
        return [json.loads(line) for line in text[:text.rfind("\n") + 1].splitlines() if line.startswith("{")]

    def logs(self, pod: str, role: str = "daprd") -> str:
        """A pod's ``daprd`` log (JSON lines, API calls included) or its app's (``dapr-app``)."""
        if role not in ("daprd", "dapr-app"):
            raise LabUsageError(f"logs of {role!r}: choose daprd or dapr-app")
        path = self._log(self.lab.pod(pod).name, role)
        return path.read_text() if path.exists() else ""

    # -- measuring and looking ---------------------------------------------------------------
    def _target(self, via_dapr: bool) -> tuple[str, int, str]:
        if via_dapr:
            return "127.0.0.1", DAPR_HTTP_PORT, api_path("invoke", app_id=ORDERS, method="orders")
        return self.lab.pod(ORDERS).ip, APP_PORT, "/orders"

    def _requests(self, via_dapr: bool, count: int) -> list[Reply]:
        host, port, path = self._target(via_dapr)
        replies = self.lab.requests(CHECKOUT, host, port, count, keepalive=True, path=path)
        if wrong := [reply for reply in replies if reply.status != 200 or reply.body.get("pod") != ORDERS]:
            raise LabError(f"checkout -> orders {'via Dapr' if via_dapr else 'direct'}: answered {wrong[0].status}: {wrong[0].body}")
        return replies

    def measure(self, repeats: int = 200) -> Measurement:
        """``repeats`` requests direct, then as many via Dapr (after a warm-up of 20 each), over one
        keep-alive connection each; latencies as the client saw them."""
        if repeats < 1:
            raise LabUsageError(f"repeats is a whole number >= 1, got {repeats}")
        for via_dapr in (False, True):
            self._requests(via_dapr, 20)
        direct, dapr = (self._requests(via_dapr, repeats) for via_dapr in (False, True))
        return Measurement(repeats, *self.paths, [r.latency_us for r in direct], [r.latency_us for r in dapr])

    @property
    def paths(self) -> tuple[str, str]:
        """The model's names (``meshlab.dapr.PATHS``) for the app's own call and Dapr's, in this lab."""
        if not self.meshed:
            return "direct", "dapr"
        return "mesh", "dapr" if self.dapr_port_excluded else "dapr+mesh"

    def connections(self, pod: str) -> list[Connection]:
        """The pod's established TCP connections (``ss -tinp``), each with the lab process holding it and
        its byte counters."""
        roles = {process.pid: f"{owner} {process.role.replace('dapr-app', 'app')}" for owner, process in self.lab.processes}
        roles[os.getpid()] = f"{pod} app"  # the lab's client threads stand in for the caller's app
        found, lines = [], self.lab.exec(pod, ["ss", "-Htinp", "state", "established"]).stdout.splitlines()
        for line, info in zip(lines, lines[1:]):
            fields = line.split()
            if line[:1].isspace() or len(fields) < 4 or not info[:1].isspace():
                continue
            pid, name = re.search(r"pid=(\d+)", line), re.search(r'\(\("([^"]+)"', line)
            process = roles.get(int(pid.group(1))) if pid else None
            counts = {key: int(value) for key, value in re.findall(r"\b(bytes_acked|bytes_received):(\d+)", info)}
            found.append(Connection(pod, process or (name.group(1) if name else "?"), _address(fields[2]), _address(fields[3]),
                                    counts.get("bytes_acked", 0), counts.get("bytes_received", 0)))
        return found

    def listening(self, pod: str) -> set[int]:
        """The TCP ports something listens on in ``pod``."""
        lines = self.lab.exec(pod, ["ss", "-Htln", "state", "listening"]).stdout.splitlines()
        return {int(line.split()[2].rpartition(":")[2]) for line in lines if len(line.split()) >= 3}

    def legs(self, via_dapr: bool) -> set[tuple[str, str, int]]:
        """The legs of one call from checkout to orders, read from the kernel: over a keep-alive
        connection, the established connections of both pods are listed after one request and after
        a second; those whose byte counters moved carried the second, and each whose two ends are lab
        processes is a leg: (source process, target process, the port the target accepted on). A
        captured connection's source still has the original destination as its peer, while the
        proxy that accepted it has its own port: compare with ``meshlab.dapr.request_path``."""
        host, port, path = self._target(via_dapr)

        def look() -> list[Connection]:
            return [connection for pod in (CHECKOUT, ORDERS) for connection in self.connections(pod)]

        def call_twice() -> tuple[list[Connection], list[Connection]]:
            client = HttpClient(host, port)
            try:
                client.get(path)
                before = look()
                client.get(path)
                return before, look()
            finally:
                client.close()

        before, after = self.lab.in_pod(CHECKOUT, call_twice)
        listening = {pod: self.listening(pod) for pod in (CHECKOUT, ORDERS)}
        counted = {(c.pod, c.local, c.peer): (c.sent, c.received) for c in before}
        ends = {self._end(c.pod, c.local): c.process for c in after}
        legs = set()
        for connection in after:
            port = int(connection.local.rpartition(":")[2])
            idle = counted.get((connection.pod, connection.local, connection.peer)) == (connection.sent, connection.received)
            if idle or port not in listening[connection.pod]:
                continue  # it did not carry the second request, or it is the dialling end (its port is not a listener)
            source = ends.get(self._end(connection.pod, connection.peer))
            if source and {source.split()[0], connection.process.split()[0]} <= {CHECKOUT, ORDERS}:
                legs.add((source, connection.process, port))
        return legs

    @staticmethod
    def _end(pod: str, address: str) -> tuple[str, str]:
        """A socket's address, qualified by its pod when it is a loopback one (each pod has its own)."""
        return (pod if address.startswith("127.") else "", address)


def _address(text: str) -> str:
    """``ss``'s address as IPv4 ``a.b.c.d:port`` (a dual-stack listener's sockets show ``[::ffff:a.b.c.d]:port``)."""
    return re.sub(r"^\[::ffff:([0-9.]+)\]", r"\1", text)


def hop_legs(hops: tuple[Hop, ...]) -> set[tuple[str, str, int]]:
    """The model's legs in the form ``DaprLab.legs`` reads them from the kernel."""
    return {(hop.source, hop.target, hop.port) for hop in hops}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["app"] and len(args) == 3:
        serve(args[1], int(args[2]))
        return 0
    if args[:1] == ["sdk"] and len(args) == 2:
        json.dump(sdk_calls(json.loads(args[1])), sys.stdout)
        return 0
    print("usage: python -m meshlab.lab.dapr app POD PORT | sdk CALLS (a JSON list)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
