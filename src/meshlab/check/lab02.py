"""Checks for lab 02, "Excluding a port from capture".

The reader writes ``capture_config()`` (capture everything except inbound port 9090) and
``bypassed(reply)`` (did the app see its caller directly?). The first check walks the rules on
the model stage; the second starts a live lab with the reader's configuration, sends requests
to both ports and compares the reader's verdicts with the sidecar's own hop log.

    MISTAKES     the wrong answers the checks recognise
    check_rules  exercise 1, on the model stage
    check_live   exercise 2, in a live lab
"""

from __future__ import annotations

from collections.abc import Callable

from meshlab.check import CheckFailed, Mistake, answer_of, require_stage
from meshlab.intercept import CaptureConfig, build_rules
from meshlab.intercept.walk import Connection, walk

POD_IP, CALLER_IP = "10.244.0.10", "10.244.0.11"
APP_PORT, METRICS_PORT = 8080, 9090

NOTHING_INBOUND = Mistake("capture_config", "leaves inbound_ports_include empty",
                          "inbound_ports_include is empty, so nothing inbound is captured at all (not even 8080): capture '*' and exclude 9090")
OUTBOUND_EXCLUDE = Mistake("capture_config", "excludes 9090 with outbound_ports_exclude (-o)",
                           "outbound_ports_exclude (-o) is about connections the pod opens; for a port the pod serves, use inbound_ports_exclude (-d)")
STILL_CAPTURED = Mistake("capture_config", "does not exclude 9090 at all",
                         "inbound connections to 9090 are still redirected to 15006: exclude the port with inbound_ports_exclude (-d)")
APP_EXCLUDED = Mistake("capture_config", "excludes the app port 8080 too",
                       "inbound connections to the app port 8080 are no longer captured: exclude only 9090")
OUTBOUND_LOST = Mistake("capture_config", "drops outbound_ip_ranges_include='*'",
                        "outbound connections are no longer captured: keep outbound_ip_ranges_include='*'")
PEER_MISREAD = Mistake("bypassed", "misreads which peer address the app saw",
                       "the sidecar connects to the app from 127.0.0.6, a bypassing client arrives with its own pod IP")
MISTAKES = (NOTHING_INBOUND, OUTBOUND_EXCLUDE, STILL_CAPTURED, APP_EXCLUDED, OUTBOUND_LOST, PEER_MISREAD)


def _captured_inbound(config: CaptureConfig, port: int) -> bool:
    result = walk(build_rules(config).restore_text(4), Connection("PREROUTING", CALLER_IP, POD_IP, port, in_interface="eth0"))
    return result.to_port == int(config.inbound_capture_port)


def _captured_outbound(config: CaptureConfig) -> bool:
    result = walk(build_rules(config).restore_text(4), Connection("OUTPUT", POD_IP, "10.96.0.10", 80, out_interface="eth0", uid=0, gids=(0,)))
    return result.to_port == int(config.proxy_port)


def check_rules(capture_config: Callable[[], CaptureConfig]) -> None:
    """Inbound 9090 must bypass the sidecar; inbound 8080 and outbound traffic must still be captured."""
    config = answer_of(capture_config)
    if not isinstance(config, CaptureConfig):
        raise CheckFailed(f"capture_config() must return a CaptureConfig, got {type(config).__name__}")
    if not config.inbound_ports_include:
        raise CheckFailed(NOTHING_INBOUND.hint)
    if "9090" in config.outbound_ports_exclude.split(","):
        raise CheckFailed(OUTBOUND_EXCLUDE.hint)
    if _captured_inbound(config, METRICS_PORT):
        raise CheckFailed(STILL_CAPTURED.hint)
    if not _captured_inbound(config, APP_PORT):
        raise CheckFailed(APP_EXCLUDED.hint)
    if not _captured_outbound(config):
        raise CheckFailed(OUTBOUND_LOST.hint)


def check_live(capture_config: Callable[[], CaptureConfig], bypassed: Callable) -> None:
    """In a live lab with the reader's rules: 9090 reaches the app directly, 8080 through the sidecar,
    and ``bypassed`` tells the two apart as the sidecar's hop log does."""
    require_stage("live")
    from meshlab.lab import Lab, PodSpec

    config = answer_of(capture_config)
    check_rules(lambda: config)
    with Lab("ml2l").up([PodSpec("app", capture=config), PodSpec("client")]) as lab:
        target = lab.pod("app").ip
        replies = {port: lab.request("client", target, port, f"/port-{port}") for port in (METRICS_PORT, APP_PORT)}
        # a hop is logged when its connection closes: wait for the later (8080) request's, which the
        # rules just checked capture; the 9090 connection closed before that request was sent
        lab.wait_for_hop("app", direction="inbound", original_dst=f"{target}:{APP_PORT}")
        inbound = {hop["original_dst"] for hop in lab.hops("app") if hop["direction"] == "inbound"}
    truth = {port: f"{target}:{port}" not in inbound for port in replies}
    if truth != {METRICS_PORT: True, APP_PORT: False}:
        raise CheckFailed(f"the sidecar's log disagrees with the rules: inbound hops seen for {sorted(inbound)}")
    for port, reply in replies.items():
        verdict = answer_of(bypassed, reply)
        if verdict is not truth[port]:
            raise CheckFailed(f"bypassed() said {verdict!r} for port {port}, whose app saw {reply.body['peer']}; {PEER_MISREAD.hint}")
    print(f"port {METRICS_PORT}: the app saw {replies[METRICS_PORT].body['peer']} (bypassed the sidecar)")
    print(f"port {APP_PORT}: the app saw {replies[APP_PORT].body['peer']} (through the sidecar)")
