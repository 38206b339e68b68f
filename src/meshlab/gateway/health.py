"""Which upstream hosts a gateway may use: Envoy's active health checking and passive outlier detection.

Both mark a host, never remove it: a host is used while neither flag is set (``balance.Host``), and a
locality whose hosts are flagged loses its share of traffic (``balance``). Envoy Gateway lets a user
configure both with a BackendTrafficPolicy's ``healthCheck.active`` and ``healthCheck.passive``
(api/v1alpha1/healthcheck_types.go, v1.9.0), which it writes into the cluster as Envoy's own
``healthChecks`` and ``outlierDetection``; here they are read in Envoy's protojson terms, with Envoy's
defaults.

**Active** (envoy/config/core/v3/health_check.proto): every ``interval`` the proxy sends each host an
HTTP request (``httpHealthCheck.path``, Host header ``httpHealthCheck.host`` or, empty, the cluster's
name). A host starts unhealthy until its first check passes (Envoy's upstream_impl.cc sets
FAILED_ACTIVE_HC on a new host of a cluster with a health checker; a single success is enough then);
afterwards it turns unhealthy after ``unhealthyThreshold`` failed checks in a row (no answer within
``timeout``, or a refused connection) but at once on an answer whose status is not expected (200
unless ``expectedStatuses`` says otherwise) nor retriable, and healthy again after
``healthyThreshold`` passed checks in a row. Until the cluster has carried traffic, checks are
``noTrafficInterval`` (60 s) apart.

**Passive** (envoy/config/cluster/v3/outlier_detection.proto; the algorithm is Envoy's
source/common/upstream/outlier_detection_impl.cc): every answer is counted per host. ``consecutive5xx``
(5) 5xx answers in a row, or ``consecutiveGatewayFailure`` (5) answers 502/503/504 in a row, eject the
host, if the ejection is enforced (``enforcingConsecutive5xx`` 100%, ``enforcingConsecutiveGatewayFailure``
0%) and ejecting it keeps the ejected share at most ``maxEjectionPercent`` (10%: with fewer than ten hosts
nothing is ejected, unless ``alwaysEjectOneHost``). A failure the proxy itself saw counts as a status:
a refused connection as 503, a timeout as 504, a connection that breaks before the answer as 500
(DetectorHostMonitorImpl::resultToHttpCode: LocalOriginConnectFailed, LocalOriginTimeout,
ExtOriginRequestFailed) (unless
``splitExternalLocalOriginErrors``, which counts them apart, against ``consecutiveLocalOriginFailure``).
Every ``interval`` (10 s) a sweep returns hosts whose ejection is over: ``baseEjectionTime`` (30 s) times
how many times in a row the host was ejected, at most ``maxEjectionTime`` (300 s); a host that then
stays in for an interval has that multiplier lowered by one. A passed active check returns an ejected
host at once (``successfulActiveHealthCheckUnejectHost``). Success-rate and failure-percentage
ejection, and jitter, are not run here: their fields are refused.

    seconds            a protojson Duration ("1.5s") as seconds
    HealthCheck        Envoy's HealthCheck (HTTP), the fields run here; from_envoy(protojson)
    HealthChecker      runs the checks of one cluster's hosts; record() is the state machine
    OutlierDetection   Envoy's OutlierDetection, the fields run here; from_envoy(protojson)
    OutlierDetector    counts one cluster's answers, ejects and returns hosts
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields

from meshlab.gateway.balance import Host

#: Called with a host and one event (a dict) whenever a flag of the host changes.
OnChange = Callable[[Host, dict], None]


def seconds(value: object, where: str) -> float:
    """A protojson Duration (``"1s"``, ``"0.250s"``) in seconds."""
    if not isinstance(value, str) or not re.fullmatch(r"\d+(\.\d{1,9})?s", value):
        raise ValueError(f"{where} must be a protojson Duration such as \"1s\" or \"0.250s\", got {value!r}")
    return float(value[:-1])


def _check_fields(config: object, accepted: set[str], where: str) -> dict:
    if not isinstance(config, dict):
        raise ValueError(f"{where} must be a mapping (Envoy's protojson), got {config!r}")
    unknown = sorted(set(config) - accepted)
    if unknown:
        raise ValueError(f"{where}: field(s) {', '.join(unknown)} are not run by meshlab's gateway; accepted: {', '.join(sorted(accepted))}")
    return config


def _count(config: dict, key: str, where: str, default: int | None = None, top: int | None = None) -> int:
    value = config.get(key, default)
    if value is None:
        raise ValueError(f"{where}: {key} is required")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or (top is not None and value > top):
        raise ValueError(f"{where}: {key} must be a whole number 0-{top if top is not None else 'n'}, got {value!r}")
    return value


# --- active health checking ---------------------------------------------------------------------


@dataclass(frozen=True)
class HealthCheck:
    """An HTTP health check; the four first fields are required in Envoy too."""

    timeout: float
    interval: float
    unhealthy_threshold: int
    healthy_threshold: int
    path: str
    host: str = ""
    method: str = "GET"
    #: Half-open [start, end) ranges; Envoy's default is 200 only.
    expected_statuses: tuple[tuple[int, int], ...] = ((200, 201),)
    retriable_statuses: tuple[tuple[int, int], ...] = ()
    no_traffic_interval: float = 60.0
    unhealthy_interval: float | None = None

    def __post_init__(self) -> None:
        if self.timeout <= 0 or self.interval <= 0:
            raise ValueError(f"a health check needs a positive timeout and interval, got {self.timeout} s and {self.interval} s")
        if self.unhealthy_threshold < 1 or self.healthy_threshold < 1:
            raise ValueError("a health check's unhealthyThreshold and healthyThreshold are at least 1")
        if not self.path.startswith("/"):
            raise ValueError(f"httpHealthCheck.path must start with '/', got {self.path!r}")

    @classmethod
    def from_envoy(cls, config: dict, where: str = "healthCheck") -> HealthCheck:
        """From Envoy's protojson HealthCheck with an ``httpHealthCheck``."""
        _check_fields(config, {"timeout", "interval", "unhealthyThreshold", "healthyThreshold", "httpHealthCheck", "noTrafficInterval", "unhealthyInterval"}, where)
        http = _check_fields(config.get("httpHealthCheck"), {"host", "path", "method", "expectedStatuses", "retriableStatuses"}, f"{where}.httpHealthCheck")
        if "path" not in http:
            raise ValueError(f"{where}.httpHealthCheck: path is required")
        for key in ("timeout", "interval"):
            if key not in config:
                raise ValueError(f"{where}: {key} is required")
        return cls(
            timeout=seconds(config["timeout"], f"{where}.timeout"),
            interval=seconds(config["interval"], f"{where}.interval"),
            unhealthy_threshold=_count(config, "unhealthyThreshold", where),
            healthy_threshold=_count(config, "healthyThreshold", where),
            path=http["path"], host=http.get("host", ""), method=http.get("method", "GET"),
            expected_statuses=_ranges(http.get("expectedStatuses"), f"{where}.httpHealthCheck.expectedStatuses") or ((200, 201),),
            retriable_statuses=_ranges(http.get("retriableStatuses"), f"{where}.httpHealthCheck.retriableStatuses"),
            no_traffic_interval=seconds(config.get("noTrafficInterval", "60s"), f"{where}.noTrafficInterval"),
            unhealthy_interval=seconds(config["unhealthyInterval"], f"{where}.unhealthyInterval") if "unhealthyInterval" in config else None,
        )

    def expected(self, status: int) -> bool:
        return any(start <= status < end for start, end in self.expected_statuses)

    def retriable(self, status: int) -> bool:
        return any(start <= status < end for start, end in self.retriable_statuses)


def _ranges(value: object, where: str) -> tuple[tuple[int, int], ...]:
    """Envoy's Int64Range list ``[{start, end}]`` (half-open), statuses within [100, 600)."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(r, dict) and set(r) == {"start", "end"} for r in value):
        raise ValueError(f"{where} must be a list of {{start, end}} ranges, got {value!r}")
    ranges = tuple((int(r["start"]), int(r["end"])) for r in value)
    if any(not 100 <= start < end <= 600 for start, end in ranges):
        raise ValueError(f"{where}: each range needs 100 <= start < end <= 600, got {value!r}")
    return ranges


@dataclass
class _Session:
    """One host's run of results (Envoy's ActiveHealthCheckSession counters)."""

    pending: bool = True
    healthy_in_a_row: int = 0
    unhealthy_in_a_row: int = 0


class HealthChecker:
    """The active checks of one cluster's hosts. ``probe(host)`` sends one check and returns the
    answer's status, or raises OSError (no connection) or TimeoutError; ``record`` applies a result."""

    def __init__(self, config: HealthCheck, cluster: str, hosts: list[Host], probe: Callable[[Host], Awaitable[int]],
                 on_change: OnChange, had_traffic: Callable[[], bool] = lambda: True, on_pass: Callable[[Host], None] = lambda host: None) -> None:
        """``on_change`` hears every transition; ``on_pass`` every passed check of a healthy host
        (what returns an ejected host: OutlierDetector.health_check_passed)."""
        self.config, self.cluster, self.hosts = config, cluster, hosts
        self.probe, self.on_change, self.had_traffic, self.on_pass = probe, on_change, had_traffic, on_pass
        self.sessions = {id(host): _Session() for host in hosts}
        self._tasks: list[asyncio.Task] = []
        for host in hosts:  # unhealthy until the first check passes
            host.failed_active_hc = True

    def record(self, host: Host, status: int | None, failure: str = "NETWORK") -> None:
        """One check's result: ``status`` None is a failure of kind ``failure`` (NETWORK, NETWORK_TIMEOUT)."""
        session = self.sessions[id(host)]
        pending, session.pending = session.pending, False
        if status is not None and self.config.expected(status):
            session.unhealthy_in_a_row = 0
            if host.failed_active_hc:
                session.healthy_in_a_row += 1
                if pending or session.healthy_in_a_row >= self.config.healthy_threshold:
                    host.failed_active_hc = False
                    self.on_change(host, {"event": "health", "action": "add_healthy", "cluster_name": self.cluster, "host": str(host), "first_check": pending})
            if not host.failed_active_hc:
                self.on_pass(host)
            return
        session.healthy_in_a_row = 0
        if status is not None and not self.config.retriable(status):
            failure = "ACTIVE"  # an unexpected answer: unhealthy at once
        session.unhealthy_in_a_row += 1
        if not host.failed_active_hc and (failure == "ACTIVE" or session.unhealthy_in_a_row >= self.config.unhealthy_threshold):
            host.failed_active_hc = True
            self.on_change(host, {"event": "health", "action": "eject_unhealthy", "cluster_name": self.cluster, "host": str(host),
                                  "failure_type": failure, "status": status})

    async def check(self, host: Host) -> None:
        """Send one check and record its result."""
        try:
            status: int | None = await asyncio.wait_for(self.probe(host), self.config.timeout)
            failure = "NETWORK"
        except TimeoutError:
            status, failure = None, "NETWORK_TIMEOUT"
        except OSError:
            status, failure = None, "NETWORK"
        self.record(host, status, failure)

    def start(self) -> None:
        self._tasks = [asyncio.get_running_loop().create_task(self._run(host)) for host in self.hosts]

    async def first_round(self) -> None:
        """Check every host once (what Envoy waits for before a cluster with health checks is warm)."""
        await asyncio.gather(*(self.check(host) for host in self.hosts))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def next_interval(self, host: Host) -> float:
        """Envoy's choice of wait: noTrafficInterval before any traffic, unhealthyInterval for an unhealthy host."""
        if not self.had_traffic():
            return self.config.no_traffic_interval
        if host.failed_active_hc and self.config.unhealthy_interval is not None:
            return self.config.unhealthy_interval
        return self.config.interval

    async def _run(self, host: Host) -> None:
        while True:
            await asyncio.sleep(self.next_interval(host))
            await self.check(host)


# --- outlier detection --------------------------------------------------------------------------


@dataclass(frozen=True)
class OutlierDetection:
    """Envoy's OutlierDetection with Envoy's defaults (outlier_detection.proto); times in seconds."""

    consecutive_5xx: int = 5
    interval: float = 10.0
    base_ejection_time: float = 30.0
    max_ejection_percent: int = 10
    enforcing_consecutive_5xx: int = 100
    consecutive_gateway_failure: int = 5
    enforcing_consecutive_gateway_failure: int = 0
    split_external_local_origin_errors: bool = False
    consecutive_local_origin_failure: int = 5
    enforcing_consecutive_local_origin_failure: int = 100
    #: None: Envoy's default, 300 s or base_ejection_time, whichever is larger.
    max_ejection_time: float | None = None
    successful_active_health_check_uneject_host: bool = True
    always_eject_one_host: bool = False

    def __post_init__(self) -> None:
        if self.interval <= 0:
            raise ValueError(f"outlierDetection.interval must be positive, got {self.interval} s")
        if self.max_ejection_time is not None and self.max_ejection_time < self.base_ejection_time:
            # Envoy's own words (DetectorImpl::create)
            raise ValueError("outlier detector's max_ejection_time cannot be smaller than base_ejection_time")

    @property
    def ejection_cap(self) -> float:
        return self.max_ejection_time if self.max_ejection_time is not None else max(300.0, self.base_ejection_time)

    @classmethod
    def from_envoy(cls, config: dict, where: str = "outlierDetection") -> OutlierDetection:
        """From Envoy's protojson OutlierDetection (camelCase; Duration strings; wrapped numbers as numbers)."""
        names = {_camel(f.name): f for f in fields(cls)}
        _check_fields(config, set(names), where)
        values: dict = {}
        for key, value in config.items():
            kind = names[key].type
            if kind == "bool":
                if not isinstance(value, bool):
                    raise ValueError(f"{where}: {key} must be true or false, got {value!r}")
                values[names[key].name] = value
            elif kind == "int":
                values[names[key].name] = _count(config, key, where, top=100 if "Percent" in key or key.startswith("enforcing") else None)
            else:
                values[names[key].name] = seconds(value, f"{where}.{key}")
        return cls(**values)


def _camel(name: str) -> str:
    """Envoy's protojson name of a field: consecutive_5xx -> consecutive5xx, base_ejection_time -> baseEjectionTime."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@dataclass
class _Monitor:
    """One host's counters (Envoy's DetectorHostMonitorImpl)."""

    consecutive_5xx: int = 0
    consecutive_gateway_failure: int = 0
    consecutive_local_origin_failure: int = 0
    num_ejections: int = 0
    eject_time_backoff: int = 0
    last_ejection_time: float | None = None
    last_unejection_time: float | None = None


#: How a failure the proxy saw itself reads as a status when local-origin errors are not split
#: (DetectorHostMonitorImpl::resultToHttpCode).
LOCAL_ORIGIN_STATUS = {"connect_failed": 503, "timeout": 504, "reset": 500}


@dataclass
class OutlierDetector:
    """Counts a cluster's answers per host and ejects hosts as Envoy's detector does. Times are
    the caller's clock (``now``), so the detector can be driven by a test as well as by a loop."""

    config: OutlierDetection
    cluster: str
    hosts: list[Host]
    on_change: OnChange
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    monitors: dict[int, _Monitor] = field(init=False)

    def __post_init__(self) -> None:
        self.monitors = {id(host): _Monitor() for host in self.hosts}

    def responded(self, host: Host, status: int, now: float) -> None:
        """An upstream answer (DetectorHostMonitorImpl::putHttpResponseCode)."""
        monitor = self.monitors[id(host)]
        if 500 <= status < 600:
            if status in (502, 503, 504):
                monitor.consecutive_gateway_failure += 1
                if monitor.consecutive_gateway_failure == self.config.consecutive_gateway_failure:
                    self._consecutive_error(host, "CONSECUTIVE_GATEWAY_FAILURE", now)
            else:
                monitor.consecutive_gateway_failure = 0
            monitor.consecutive_5xx += 1
            if monitor.consecutive_5xx == self.config.consecutive_5xx:
                self._consecutive_error(host, "CONSECUTIVE_5XX", now)
        else:
            monitor.consecutive_5xx = monitor.consecutive_gateway_failure = 0

    def connected(self, host: Host) -> None:
        """A connection to the host was made: ends a run of local-origin failures (when split)."""
        if self.config.split_external_local_origin_errors:
            self.monitors[id(host)].consecutive_local_origin_failure = 0

    def failed(self, host: Host, kind: str, now: float) -> None:
        """A failure the proxy saw itself: ``connect_failed``, ``timeout`` or ``reset``."""
        if kind not in LOCAL_ORIGIN_STATUS:
            raise ValueError(f"failure kind {kind!r} is not one of {', '.join(LOCAL_ORIGIN_STATUS)}")
        if not self.config.split_external_local_origin_errors:
            self.responded(host, LOCAL_ORIGIN_STATUS[kind], now)
        elif kind == "reset":  # the connection worked, the exchange on it did not: external origin
            self.responded(host, 503, now)
        else:
            monitor = self.monitors[id(host)]
            monitor.consecutive_local_origin_failure += 1
            if monitor.consecutive_local_origin_failure == self.config.consecutive_local_origin_failure:
                self._consecutive_error(host, "CONSECUTIVE_LOCAL_ORIGIN_FAILURE", now)

    def _consecutive_error(self, host: Host, kind: str, now: float) -> None:
        """DetectorImpl::onConsecutiveErrorWorker: try to eject, then restart that count either way."""
        monitor = self.monitors[id(host)]
        if not host.failed_outlier_check:
            self._eject(host, kind, now)
        attribute = {"CONSECUTIVE_5XX": "consecutive_5xx", "CONSECUTIVE_GATEWAY_FAILURE": "consecutive_gateway_failure",
                     "CONSECUTIVE_LOCAL_ORIGIN_FAILURE": "consecutive_local_origin_failure"}[kind]
        setattr(monitor, attribute, 0)

    def _eject(self, host: Host, kind: str, now: float) -> None:
        """DetectorImpl::ejectHost: the max-ejection-percent guard, then enforcement by chance."""
        ejected = sum(other.failed_outlier_check for other in self.hosts)
        allowed = 100.0 * (ejected + 1) / len(self.hosts) <= min(100, self.config.max_ejection_percent)
        if self.config.always_eject_one_host:
            allowed = allowed or ejected == 0
        event = {"event": "outlier", "type": kind, "cluster_name": self.cluster, "upstream_url": str(host)}
        if not allowed:
            self.on_change(host, {**event, "action": "EJECT", "enforced": False, "overflow": True,
                                  "why": f"ejecting would leave more than maxEjectionPercent {self.config.max_ejection_percent}% of {len(self.hosts)} host(s) ejected"})
            return
        enforcing = {"CONSECUTIVE_5XX": self.config.enforcing_consecutive_5xx, "CONSECUTIVE_GATEWAY_FAILURE": self.config.enforcing_consecutive_gateway_failure,
                     "CONSECUTIVE_LOCAL_ORIGIN_FAILURE": self.config.enforcing_consecutive_local_origin_failure}[kind]
        if self.rng.randrange(100) >= enforcing:
            self.on_change(host, {**event, "action": "EJECT", "enforced": False, "why": f"enforcing is {enforcing}%"})
            return
        monitor = self.monitors[id(host)]
        host.failed_outlier_check = True
        monitor.num_ejections += 1
        monitor.last_ejection_time = now
        if monitor.eject_time_backoff * self.config.base_ejection_time < self.config.ejection_cap + self.config.base_ejection_time:
            monitor.eject_time_backoff += 1
        self.on_change(host, {**event, "action": "EJECT", "enforced": True, "num_ejections": monitor.num_ejections,
                              "ejection_time_s": self.ejection_time(host)})

    def ejection_time(self, host: Host) -> float:
        """How long the host's current ejection lasts: base x backoff, capped."""
        return min(self.config.base_ejection_time * self.monitors[id(host)].eject_time_backoff, self.config.ejection_cap)

    def sweep(self, now: float) -> None:
        """The interval timer (DetectorImpl::onIntervalTimer): return hosts whose time is up; lower the
        backoff of hosts that stayed in for an interval since they were returned."""
        for host in self.hosts:
            monitor = self.monitors[id(host)]
            if host.failed_outlier_check and now - monitor.last_ejection_time >= self.ejection_time(host):
                self._uneject(host, now, "ejection time over")
        for host in self.hosts:
            monitor = self.monitors[id(host)]
            if (not host.failed_outlier_check and monitor.last_unejection_time is not None
                    and now - monitor.last_unejection_time >= self.config.interval and monitor.eject_time_backoff):
                monitor.eject_time_backoff -= 1

    def health_check_passed(self, host: Host, now: float) -> None:
        """A passed active check returns an ejected host (unless configured not to)."""
        if self.config.successful_active_health_check_uneject_host and host.failed_outlier_check and not host.failed_active_hc:
            self._uneject(host, now, "active health check passed")

    def _uneject(self, host: Host, now: float, why: str) -> None:
        monitor = self.monitors[id(host)]
        host.failed_outlier_check = False
        monitor.consecutive_5xx = monitor.consecutive_gateway_failure = monitor.consecutive_local_origin_failure = 0
        monitor.last_unejection_time = now
        self.on_change(host, {"event": "outlier", "action": "UNEJECT", "cluster_name": self.cluster, "upstream_url": str(host),
                              "num_ejections": monitor.num_ejections, "why": why})
