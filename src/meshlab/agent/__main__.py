"""``python -m meshlab.agent``: pilot-agent's jobs as one process beside a pod's proxy.

It writes the bootstrap (``<workdir>/etc/istio/proxy/envoy-rev.json``), serves SDS on
``<workdir>/var/run/secrets/workload-spiffe-uds/socket`` from file-mounted certificates (Istio's
``./var/run/secrets/workload-spiffe-credentials/{cert-chain,key,root-cert}.pem`` mode, where no CA is
called), answers DNS on 127.0.0.1:15053 (names from ``--name-table``, the rest forwarded to the
resolv.conf's nameservers), and serves 15020 (and 15021 with ``--envoy-status``, standing in for Envoy's
forwarding listener). ISTIO_KUBE_APP_PROBERS, ISTIO_PROMETHEUS_ANNOTATIONS, EXIT_ON_ZERO_ACTIVE_CONNECTIONS
and MINIMUM_DRAIN_DURATION are read from the environment, as the injector sets them. When everything
listens it prints one JSON line ``{"event": "ready", "ready": true, ...}``. On SIGTERM it drains the proxy through its admin
(meshlab.agent.drain), SIGKILLs ``--proxy-pid`` at the end of the drain as pilot-agent kills Envoy, prints
``{"drained": [...steps]}`` and exits 0.

    main    argv -> exit status
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from meshlab import goduration
from meshlab.agent.bootstrap import ADMIN_PORT, ENVOY_PROMETHEUS_PORT, ENVOY_STATUS_PORT, STATUS_PORT, ProxyNode, bootstrap_json
from meshlab.agent.dns import DNS_PORT, DnsProxy, LookupTable, NameInfo, resolv_conf
from meshlab.agent.drain import CHECK_INTERVAL, DrainSettings, active_connections, after_check, drain_path
from meshlab.agent.metrics import prometheus_target
from meshlab.agent.sds import SdsServer, WorkloadSecrets
from meshlab.agent.status import ProxyAdmin, StatusServer
from meshlab.filewatch import ChangedFile


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m meshlab.agent", description="pilot-agent's jobs beside a meshlab proxy")
    parser.add_argument("--pod", required=True)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--ip", required=True, help="the pod's IP (INSTANCE_IP)")
    parser.add_argument("--service-account", default="default")
    parser.add_argument("--workdir", type=Path, required=True, help="the proxy's working directory (Istio's relative paths start here)")
    parser.add_argument("--certs", type=Path, help="folder with cert-chain.pem, key.pem, root-cert.pem (no SDS without it)")
    parser.add_argument("--name-table", type=Path, help='JSON {"host": {"ips": [...], "registry": "Kubernetes", "shortname": .., "namespace": ..}}')
    parser.add_argument("--resolv-conf", type=Path, default=Path("/etc/resolv.conf"))
    parser.add_argument("--dns-upstream", action="append", default=[], metavar="HOST:PORT", help="instead of resolv.conf's nameservers")
    parser.add_argument("--envoy-status", action="store_true", help="also serve 15021 (Envoy's listener in Istio)")
    parser.add_argument("--admin-port", type=int, default=ADMIN_PORT)
    parser.add_argument("--prometheus-port", type=int, default=ENVOY_PROMETHEUS_PORT)
    parser.add_argument("--termination-drain-duration", type=float, default=5.0, help="seconds (ProxyConfig.terminationDrainDuration, default 5)")
    parser.add_argument("--proxy-pid", type=int, help="the proxy process, killed when the drain ends")
    return parser.parse_args(argv)


def _upstreams(args: argparse.Namespace) -> list[tuple[str, int]]:
    if args.dns_upstream:
        out = []
        for item in args.dns_upstream:
            host, _, port = item.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"--dns-upstream {item!r}: expected HOST:PORT, e.g. 10.96.0.10:53")
            out.append((host, int(port)))
        return out
    servers, _ = resolv_conf(args.resolv_conf.read_text())
    return [(server, 53) for server in servers]


def _name_table(path: Path | None) -> dict[str, NameInfo]:
    if path is None:
        return {}
    try:
        return {host: NameInfo(tuple(info["ips"]), info.get("registry", "Kubernetes"), info.get("shortname", ""), info.get("namespace", ""))
                for host, info in json.loads(path.read_text()).items()}
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"--name-table {path}: expected {{\"host\": {{\"ips\": [\"10.96.0.20\"], ...}}}} ({error!r})") from error


async def _drain(settings: DrainSettings, proxy: ProxyAdmin, proxy_pid: int | None) -> list[list]:
    """The live drain: the admin call, then the wait the settings choose; the proxy is killed at the end."""
    start = time.monotonic()
    steps = [[0.0, f"POST {drain_path(settings)}", (await asyncio.to_thread(proxy.drain, drain_path(settings))).error or "ok"]]
    if settings.exit_on_zero_active_connections:
        await asyncio.sleep(settings.minimum_drain_duration)
        failures = 0
        while time.monotonic() - start < settings.grace_period:
            await asyncio.sleep(CHECK_INTERVAL)
            scrape = await asyncio.to_thread(proxy.active_connection_stats)
            outcome, failures = after_check(None if scrape.error else active_connections(scrape.body.decode()), failures)
            if outcome:
                steps.append([round(time.monotonic() - start, 1), outcome, "ok"])
                break
    else:
        await asyncio.sleep(settings.termination_drain_duration)
        steps.append([round(time.monotonic() - start, 1), "terminationDrainDuration over: proxy killed", "ok"])
    if proxy_pid is not None:
        try:
            os.kill(proxy_pid, signal.SIGKILL)  # pkg/envoy/proxy.go: on abort, cmd.Process.Kill()
        except ProcessLookupError:
            pass
    return steps


#: How often the agent looks for a new name table (the lab's stand-in for istiod's NDS push).
NAMES_POLL_S = 0.2


async def _follow_names(names_file: ChangedFile, build: Callable[[], LookupTable], dns_proxy: DnsProxy) -> None:
    """Reread the name table when its file changes, as istiod pushes a new one over NDS when services
    change (pkg/istio-agent's NDS handler updates the DNS proxy's table in place)."""
    while True:
        await asyncio.sleep(NAMES_POLL_S)
        if names_file.changed():
            dns_proxy.table = build()


async def _run(args: argparse.Namespace) -> int:
    node = ProxyNode(args.pod, args.namespace, args.ip, args.service_account)
    config = args.workdir / "etc/istio/proxy"
    config.mkdir(parents=True, exist_ok=True)
    (config / "envoy-rev.json").write_text(bootstrap_json(node))
    settings = DrainSettings(termination_drain_duration=args.termination_drain_duration,
                             exit_on_zero_active_connections=os.environ.get("EXIT_ON_ZERO_ACTIVE_CONNECTIONS", "false").lower() == "true",
                             minimum_drain_duration=goduration.seconds(os.environ.get("MINIMUM_DRAIN_DURATION", "5s")))
    proxy = ProxyAdmin(admin_port=args.admin_port, prometheus_port=args.prometheus_port)
    try:
        probers = json.loads(os.environ.get("ISTIO_KUBE_APP_PROBERS") or "{}")
    except ValueError as error:
        raise ValueError(f"ISTIO_KUBE_APP_PROBERS is not JSON ({error}); expected {{\"/app-health/<container>/livez\": {{\"httpGet\": ...}}}}") from error
    status = StatusServer(args.ip, proxy, probers, prometheus_target(os.environ.get("ISTIO_PROMETHEUS_ANNOTATIONS", "")))
    _, search = resolv_conf(args.resolv_conf.read_text()) if args.resolv_conf.exists() else ([], [])
    def names() -> LookupTable:
        return LookupTable.build(_name_table(args.name_table), node.namespace, node.dns_domain, search)

    names_file = ChangedFile(args.name_table)
    names_file.changed()  # noted before the first read: a change while it is read is seen after
    dns_proxy = DnsProxy(names(), _upstreams(args), host="127.0.0.1", port=DNS_PORT)
    sds = None
    try:  # what started is stopped again, whether a later step fails or the drain ends
        if args.certs:
            secrets = WorkloadSecrets(*(Path(args.certs, name).read_bytes() for name in ("cert-chain.pem", "key.pem", "root-cert.pem")))
            sds = SdsServer(args.workdir / "var/run/secrets/workload-spiffe-uds/socket", secrets).start()
        await dns_proxy.start()
        following = asyncio.get_running_loop().create_task(_follow_names(names_file, names, dns_proxy))
        await status.start((STATUS_PORT, ENVOY_STATUS_PORT) if args.envoy_status else (STATUS_PORT,))
        terminated = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, terminated.set)
        print(json.dumps({"event": "ready", "ready": True, "pod": args.pod, "node_id": node.id, "status_port": STATUS_PORT, "envoy_status": args.envoy_status,
                          "dns_port": DNS_PORT, "sds_socket": str(sds.socket_path) if sds else None,
                          "bootstrap": str(config / "envoy-rev.json")}), flush=True)
        await terminated.wait()
        steps = await _drain(settings, proxy, args.proxy_pid)
        following.cancel()
    finally:
        await status.stop()
        await dns_proxy.stop()
        if sds:
            sds.stop()
    print(json.dumps({"drained": steps, "dns": {"answered": dns_proxy.answered, "forwarded": dns_proxy.forwarded}}), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the agent; a setting it cannot use (a missing file, bad JSON, a busy port) ends it with the reason, status 2."""
    try:
        return asyncio.run(_run(_arguments(argv)))
    except (OSError, ValueError) as error:
        print(f"meshlab.agent: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
