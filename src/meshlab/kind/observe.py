"""The truth from a running cluster, and the parsers that turn its text into meshlab's models.

Parsers (pure, tested on recorded text):

    iptables_state_from_init_log  the final ``iptables-save`` an istio-init container logged, in
                                  Istio 1.25+'s format ("Final iptables state (IPv4):") or 1.24's
                                  ("Running command (...): iptables-save" then "Command output:")
    capture_config_from_init      the CaptureConfig for an istio-init container's args and env
    injected_capture              the same, read from an injected pod's istio-init
    parse_prometheus              Prometheus text exposition -> samples
    metric_value                  the sum of a metric's samples matching some labels
    debounce_from_deployment      istiod's DebounceOptions from its Deployment (env, else Istio's defaults)
    debounce_from_env             the same from an environment (a process's /proc/PID/environ)
    parse_table                   a column table such as ``istioctl proxy-status`` prints

Fetchers (each one command through the cluster's Runner):

    pod, pod_names, init_log, node_iptables_save, istiod_metrics, istiod_debounce, proxy_status
"""

from __future__ import annotations

import argparse
import json
import math
import re
from dataclasses import dataclass

from meshlab import goduration
from meshlab.intercept import flags
from meshlab.intercept.config import CaptureConfig, ConfigError
from meshlab.kind.cluster import KindCluster
from meshlab.kind.istio import NAMESPACE
from meshlab.kind.runner import KindError
from meshlab.xds.debounce import DebounceOptions


class ObservationError(ValueError):
    """Text from the cluster that does not say what was expected; the message says what was looked for."""


# --- istio-init logs -------------------------------------------------------------------------
#: Istio's log prefix: time, level, and (for scopes other than default) the scope, tab-separated.
_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z\t(?:debug|info|warn|error|fatal)\t(?:[a-z][\w-]*\t)?(?P<message>.*)$")


def _log_messages(text: str) -> list[str]:
    """Istio log text -> messages; a message's continuation lines (multi-line output) stay with it."""
    messages: list[str] = []
    for line in text.splitlines():
        found = _LOG_LINE.match(line)
        if found:
            messages.append(found.group("message"))
        elif messages:
            messages[-1] += "\n" + line
    return messages


def iptables_state_from_init_log(text: str, family: int = 4) -> str:
    """The last ``iptables-save`` (``ip6tables-save`` for family 6) an istio-init container logged."""
    if family not in (4, 6):
        raise ValueError(f"family must be 4 or 6, got {family!r}")
    final = f"Final iptables state (IPv{family}):"
    save = "ip6tables-save" if family == 6 else "iptables-save"
    messages, state = _log_messages(text), None
    for index, message in enumerate(messages):
        if message.startswith(final):
            state = message[len(final):]
        elif re.match(rf"Running command \([^)]*\): (?:\S*/)?{save}(?: |$)", message) and index + 1 < len(messages) \
                and messages[index + 1].startswith("Command output:"):
            state = messages[index + 1][len("Command output:"):]
    if state is None or "*" not in state:
        raise ObservationError(
            f"no final {save} output in this log: looked for '{final}' (Istio 1.25 and later) and for "
            f"'Running command (...): {save}' followed by 'Command output:' (Istio 1.24 and earlier). "
            "With istio-cni there is no istio-init: the rules are in the istio-cni-node log, or read them on the node")
    return _save_output(state)


def _save_output(text: str) -> str:
    """The iptables-save output at the start of ``text``, up to its last ``# Completed on`` (or
    ``COMMIT``) line: what follows is another writer's line that the log's format did not mark as a
    new message (the real istio-init prints, e.g., Go's automemlimit warning on stderr)."""
    lines = text.strip().splitlines()
    ends = [i for i, line in enumerate(lines) if line.startswith("# Completed on")] or [i for i, line in enumerate(lines) if line == "COMMIT"]
    return "\n".join(lines[: ends[-1] + 1] if ends else lines) + "\n"


#: istio-init flags meshlab does not model but that do not change the rules.
_LOGGING = re.compile(r"^--log_(?:output_level|as_json|caller|stacktrace_level|target|rotate\S*)(?:=.*)?$")


def istio_iptables_args(args: list[str]) -> list[str]:
    """istio-init's args as ``meshlab intercept istio-iptables`` takes them: without the ``istio-iptables``
    (or ``pilot-agent istio-iptables``) in front, and without the logging flags, which change no rule."""
    words = list(args)
    if words[:1] == ["istio-iptables"]:
        words = words[1:]
    elif words[:2] == ["pilot-agent", "istio-iptables"]:
        words = words[2:]
    return [word for word in words if not _LOGGING.match(word)]


def capture_config_from_init(args: list[str], env: dict[str, str] | None = None) -> CaptureConfig:
    """The CaptureConfig an injected istio-init runs with: its args (``istio-iptables -p 15001 ...``)
    and the environment variables istio-iptables reads. A ConfigError names a flag meshlab cannot take."""
    words = istio_iptables_args(args)
    if "--skip-rule-apply" in words:
        raise ConfigError("--skip-rule-apply", "set", "an istio-init that applies rules (with istio-cni the CNI plugin writes them; compare its log instead)")
    parser = argparse.ArgumentParser(prog="istio-iptables", add_help=False, exit_on_error=False)
    flags.add_arguments(parser)
    try:
        parsed, unknown = parser.parse_known_args(words)
    except argparse.ArgumentError as error:
        raise ConfigError("istio-init args", " ".join(args), f"istio-iptables flags ({error})") from None
    if unknown:
        raise ConfigError("istio-init args", " ".join(unknown), "the istio-iptables flags meshlab models (meshlab intercept istio-iptables --help)")
    return flags.config_from(parsed, env or {})


# --- Prometheus text, Go durations, tables ---------------------------------------------------
@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict
    value: float


_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)(?:\s+\d+)?$")
_LABEL = re.compile(r'([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"')


def _unescape(value: str) -> str:
    """A label value's escapes, the only three the exposition format has: \\\\, \\" and \\n."""
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def parse_prometheus(text: str) -> list[Sample]:
    """Prometheus text exposition (what istiod serves on :15014/metrics) -> samples; comments skipped."""
    samples = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        found = _SAMPLE.match(line)
        if not found:
            raise ObservationError(f"metrics line {number} is not 'name{{labels}} value': {line[:80]!r}")
        labels = {key: _unescape(value) for key, value in _LABEL.findall(found.group("labels") or "")}
        try:
            value = float(found.group("value"))
        except ValueError:
            raise ObservationError(f"metrics line {number}: {found.group('value')!r} is not a number") from None
        samples.append(Sample(found.group("name"), labels, value))
    return samples


def metric_value(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum over samples of ``name`` whose labels include ``labels`` (0 when there are none)."""
    return sum(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()) and not math.isnan(s.value))


def debounce_from_deployment(deployment: dict) -> DebounceOptions:
    """istiod's debounce settings: its ``discovery`` container's env, Istio's defaults for the rest."""
    containers = deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
    discovery = next((c for c in containers if c.get("name") == "discovery"), None)
    if discovery is None:
        raise ObservationError("the Deployment has no container named 'discovery' (is this istiod?)")
    return debounce_from_env({item["name"]: item.get("value", "") for item in discovery.get("env", []) if "name" in item})


def debounce_from_env(env: dict[str, str]) -> DebounceOptions:
    """istiod's debounce settings from its environment, Istio's defaults for what it does not set."""
    defaults = DebounceOptions()
    after = _milliseconds(env, "PILOT_DEBOUNCE_AFTER", defaults.debounce_after_ms)
    most = _milliseconds(env, "PILOT_DEBOUNCE_MAX", defaults.debounce_max_ms)
    eds = env.get("PILOT_ENABLE_EDS_DEBOUNCE", str(defaults.enable_eds_debounce)).strip().lower()
    if eds not in ("true", "false", "1", "0"):
        raise ObservationError(f"PILOT_ENABLE_EDS_DEBOUNCE={eds!r} is not a boolean")
    return DebounceOptions(after, most, eds in ("true", "1"))


def _milliseconds(env: dict[str, str], name: str, default: float) -> float:
    if name not in env:
        return default
    try:
        return goduration.seconds(env[name].strip()) * 1000
    except ValueError as error:
        raise ObservationError(f"{name}: {error}") from None


def parse_table(text: str) -> list[dict[str, str]]:
    """A table whose columns are separated by two or more spaces (``istioctl proxy-status``), as rows."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    header = re.split(r"\s{2,}", lines[0].strip())
    rows = []
    for line in lines[1:]:
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) != len(header):
            raise ObservationError(f"row {line.strip()!r} has {len(cells)} columns; the header has {len(header)}: {header}")
        rows.append(dict(zip(header, cells)))
    return rows


# --- fetchers --------------------------------------------------------------------------------
def pod(cluster: KindCluster, namespace: str, name: str) -> dict:
    return json.loads(cluster.kubectl("read pod", "-n", namespace, "get", "pod", name, "-o", "json") or "{}")


def pod_names(cluster: KindCluster, namespace: str, app: str) -> list[str]:
    out = cluster.kubectl("find pods", "-n", namespace, "get", "pods", "-l", f"app={app}", "-o", "jsonpath={.items[*].metadata.name}")
    names = out.split()
    if not names and not cluster.runner.dry_run:
        raise KindError("find pods", f"no pod with label app={app} in namespace {namespace}", f"kubectl -n {namespace} get pods shows what is there")
    return names or [f"<{app}-pod>"]


def init_container(pod_object: dict) -> tuple[list[str], dict[str, str]]:
    """The istio-init container's args and literal env values."""
    for container in pod_object.get("spec", {}).get("initContainers", []):
        if container.get("name") == "istio-init":
            env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
            return list(container.get("args", [])), env
    raise ObservationError("the pod has no istio-init container: not injected, or istio-cni writes its rules")


def injected_capture(pod_object: dict) -> CaptureConfig:
    """What the injected pod's istio-init will capture: its args and env as a CaptureConfig."""
    return capture_config_from_init(*init_container(pod_object))


def init_log(cluster: KindCluster, namespace: str, name: str) -> str:
    return cluster.kubectl("read istio-init log", "-n", namespace, "logs", name, "-c", "istio-init")


#: Prints the first of iptables-save, iptables-nft-save, iptables-legacy-save whose output holds Istio's
#: chains (exit 3 if none does), each run behind the script's arguments (e.g. ``nsenter -t PID -n``).
#: The two backends hide each other's rules, and the tool on a node or in an image need not use the
#: backend istio-init or istio-cni chose.
SAVE_ANY_BACKEND = ('for save in iptables-save iptables-nft-save iptables-legacy-save; do '
                    'out=$("$@" "$save" 2>/dev/null) && case "$out" in *ISTIO_*) printf "%s\\n" "$out"; exit 0;; esac; done; '
                    'echo "no iptables backend shows ISTIO_ chains in this network namespace" >&2; exit 3')


def save_any_backend(*before: str) -> list[str]:
    """``sh -c SAVE_ANY_BACKEND`` with ``before`` (a command prefix, as separate arguments) in front of each save tool."""
    return ["sh", "-c", SAVE_ANY_BACKEND, "sh", *before]


def node_iptables_save(cluster: KindCluster, pod_object: dict) -> str:
    """The pod's rules as the kernel holds them: on its kind node, the first container's PID via
    crictl, then ``nsenter -t PID -n`` the save tool (works for sidecar and ambient pods alike)."""
    node = pod_object.get("spec", {}).get("nodeName", "<node>")
    statuses = pod_object.get("status", {}).get("containerStatuses", [])
    container_id = statuses[0]["containerID"].split("://")[-1] if statuses else "<container-id>"
    pid = cluster.node_exec("find pod's PID", node, "crictl", "inspect", "--output", "go-template", "--template", "{{.info.pid}}", container_id).strip()
    if cluster.runner.dry_run:
        pid = pid or "<pid>"
    elif not pid.isdigit():
        raise ObservationError(f"crictl inspect gave {pid[:80]!r} for the pod's container, not a PID")
    return cluster.node_exec("read pod's rules", node, *save_any_backend("nsenter", "-t", pid, "-n"))


def debug_iptables_save(cluster: KindCluster, namespace: str, name: str, image: str) -> str:
    """The pod's rules seen from an ephemeral container in the pod (``kubectl debug --profile=netadmin``
    gives it NET_ADMIN in the pod's network namespace); ``image`` must carry iptables (Istio's proxyv2 does)."""
    return cluster.kubectl("debug the pod", "-n", namespace, "debug", name, "--profile=netadmin", f"--image={image}", "--quiet", "--attach=true",
                           "--", *save_any_backend(), timeout=180,
                           fix="kubectl debug needs ephemeral containers (Kubernetes >= 1.25) and an image with iptables and sh")


def istiod_pod(cluster: KindCluster) -> str:
    return pod_names(cluster, NAMESPACE, "istiod")[0]


def istiod_metrics(cluster: KindCluster, pod_name: str | None = None) -> list[Sample]:
    """istiod's :15014/metrics through the API server's pod proxy (no port-forward to manage)."""
    text = cluster.kubectl("read istiod metrics", "get", "--raw", f"/api/v1/namespaces/{NAMESPACE}/pods/{pod_name or istiod_pod(cluster)}:15014/proxy/metrics")
    return parse_prometheus(text)


def istiod_debounce(cluster: KindCluster) -> DebounceOptions:
    out = cluster.kubectl("read istiod settings", "-n", NAMESPACE, "get", "deployment", "istiod", "-o", "json")
    return debounce_from_deployment(json.loads(out)) if out else DebounceOptions()


def proxy_status(cluster: KindCluster) -> list[dict[str, str]]:
    return parse_table(cluster.runner.run("proxy status", "istioctl", "proxy-status"))
