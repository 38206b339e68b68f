"""Istio's own istio-iptables (``pilot-agent istio-iptables``) run beside meshlab's rendering: the
same configuration given to both, as flags and environment to the real program, and the two outputs
set side by side.

The real program does not take everything as a flag: it decides IPv6 from the pod's own address
(the first non-loopback, non-link-local one) and reads the DNS servers to capture from
``/etc/resolv.conf``. So each dry run happens in a scratch network namespace (``ip netns exec``)
holding one interface (a veth pair) with an IPv4 or an IPv6 address, where ``ip netns exec`` shows the
program ``/etc/netns/<namespace>/resolv.conf`` as ``/etc/resolv.conf``. With ``--dry-run`` and
``DRY_RUN_FILE_PATH`` it writes what it would have executed, in the format of Istio's goldens.

    argv_and_environment   a CaptureConfig as pilot-agent istio-iptables flags and environment
    meshlab_rendering      what ``meshlab intercept istio-iptables`` prints for the very same flags and environment
                           (the resolvers and the IPv6 switch, which the real program reads from the pod, as flags)
    IstioIptables          the real program in its scratch namespaces: dry_run(config) -> its text, or its error
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from meshlab.intercept import flags, render_commands
from meshlab.intercept.config import CaptureConfig
from meshlab.intercept.flags import VALUE_FLAGS
from meshlab.lab.netns import MACHINE, NetNS

#: Fields Istio reads only from the environment (tools/istio-iptables/pkg/constants).
ENVIRONMENT = {"owner_groups_include": "ISTIO_OUTBOUND_OWNER_GROUPS", "owner_groups_exclude": "ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE",
               "host_ipv4_loopback_cidr": "ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR"}
#: The scratch namespaces' own addresses (documentation ranges: RFC 5737, RFC 3849); nothing is sent.
POD_ADDRESS = {4: "192.0.2.10/24", 6: "2001:db8::10/64"}


def argv_and_environment(config: CaptureConfig) -> tuple[list[str], dict[str, str]]:
    """Every flag set explicitly (``--flag=value``, empty values too), the env-only fields as variables
    (``--dry-run`` is the caller's to add)."""
    argv = [f"{long}={getattr(config, attribute)}" for _, long, attribute, _ in VALUE_FLAGS]
    argv += (["--redirect-dns"] if config.redirect_dns else []) + (["--drop-invalid"] if config.drop_invalid else [])
    return argv, {variable: getattr(config, attribute) for attribute, variable in ENVIRONMENT.items()}


def meshlab_rendering(config: CaptureConfig) -> str:
    """meshlab's golden-format text for the flags the real program gets, through meshlab's own flag parser."""
    argv, environment = argv_and_environment(config)
    argv += ["--dry-run", f"--dns-servers-v4={','.join(config.dns_servers_v4)}", f"--dns-servers-v6={','.join(config.dns_servers_v6)}"]
    parser = argparse.ArgumentParser()
    flags.add_arguments(parser)
    return render_commands(flags.config_from(parser.parse_args(argv + (["--enable-ipv6"] if config.enable_ipv6 else [])), environment)) + "\n"


@dataclass
class DryRun:
    """What the real program did: its exit code, the golden-format text it wrote, and its log."""

    returncode: int
    text: str
    log: str


@dataclass
class Applied:
    """The real program run for real in a fresh pod namespace: exit code, log, and the kernel's
    iptables-save and ip6tables-save of that namespace afterwards."""

    returncode: int
    log: str
    saved: dict[int, str]


class IstioIptables:
    """``with IstioIptables(pilot_agent, prefix) as real: real.dry_run(config)``: scratch namespaces
    (``<prefix>-ip4``, ``<prefix>-ip6``, ``<prefix>-apply``) and their resolv.conf, all removed on exit."""

    def __init__(self, pilot_agent: str, prefix: str = "mlup") -> None:
        self.pilot_agent, self.prefix = pilot_agent, prefix
        self.namespaces: dict[int, NetNS] = {}
        self.created: list[NetNS] = []
        self.folder = Path(tempfile.mkdtemp(prefix=f"meshlab-{prefix}-"))

    def __enter__(self) -> IstioIptables:
        try:
            for family in (4, 6):
                self.namespaces[family] = self._pod_namespace(f"{self.prefix}-ip{family}", family)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        for namespace in self.created:
            self._remove(namespace)
        self.created.clear()
        self.namespaces.clear()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _pod_namespace(self, name: str, family: int) -> NetNS:
        """A namespace whose one interface has an address of ``family``: what the program takes for the pod's IP."""
        namespace = MACHINE.create(name)
        self.created.append(namespace)
        namespace.run(["ip", "link", "add", "pod0", "type", "veth", "peer", "name", "pod0-peer"])
        namespace.run(["ip", "-6", "address", "add", POD_ADDRESS[6], "dev", "pod0", "nodad"] if family == 6 else
                      ["ip", "address", "add", POD_ADDRESS[4], "dev", "pod0"])
        namespace.run(["ip", "link", "set", "pod0", "up"])
        Path(f"/etc/netns/{namespace.name}").mkdir(parents=True, exist_ok=True)
        return namespace

    def _remove(self, namespace: NetNS) -> None:
        shutil.rmtree(f"/etc/netns/{namespace.name}", ignore_errors=True)
        MACHINE.delete(namespace.name)

    def _run(self, namespace: NetNS, config: CaptureConfig, extra: list[str], variables: dict[str, str]) -> subprocess.CompletedProcess:
        servers = list(config.dns_servers_v4) + list(config.dns_servers_v6)
        Path(f"/etc/netns/{namespace.name}/resolv.conf").write_text("".join(f"nameserver {server}\n" for server in servers) or "\n")
        argv, environment = argv_and_environment(config)
        return subprocess.run(namespace.argv([self.pilot_agent, "istio-iptables", *argv, *extra]), capture_output=True, text=True,
                              env={**os.environ, **environment, **variables}, timeout=60, check=False)

    def dry_run(self, config: CaptureConfig) -> DryRun:
        output = self.folder / "dry-run.txt"
        output.unlink(missing_ok=True)  # the program opens it without truncating
        done = self._run(self.namespaces[6 if config.enable_ipv6 else 4], config, ["--dry-run"], {"DRY_RUN_FILE_PATH": str(output)})
        return DryRun(done.returncode, output.read_text() if output.exists() else "", done.stdout + done.stderr)

    def apply(self, config: CaptureConfig) -> Applied:
        """Run the program for real (``--network-namespace`` the fresh pod namespace), then read the kernel."""
        namespace = self._pod_namespace(f"{self.prefix}-apply", 6 if config.enable_ipv6 else 4)
        try:
            done = self._run(namespace, config, [f"--network-namespace=/run/netns/{namespace.name}"], {})
            saved = {family: namespace.run([tool], check=False).stdout for family, tool in ((4, "iptables-save"), (6, "ip6tables-save"))}
            return Applied(done.returncode, done.stdout + done.stderr, saved)
        finally:
            self.created.remove(namespace)
            self._remove(namespace)
