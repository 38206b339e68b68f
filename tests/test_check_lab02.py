"""Lab 02's checks: the model check names each usual mistake; the live check runs the reader's rules."""

from __future__ import annotations

import pytest

from meshlab.check import CheckFailed, lab02
from meshlab.intercept import CaptureConfig

RIGHT = CaptureConfig(outbound_ip_ranges_include="*", inbound_ports_include="*", inbound_ports_exclude="9090")


def test_the_right_configuration_passes():
    lab02.check_rules(lambda: RIGHT)


def test_capturing_only_the_app_port_also_lets_9090_through():
    lab02.check_rules(lambda: CaptureConfig(outbound_ip_ranges_include="*", inbound_ports_include="8080"))


@pytest.mark.parametrize(
    ("config", "hint"),
    [
        (CaptureConfig(outbound_ip_ranges_include="*"), "nothing inbound is captured at all"),
        (CaptureConfig(outbound_ip_ranges_include="*", inbound_ports_include="*", outbound_ports_exclude="9090"), "use inbound_ports_exclude \\(-d\\)"),
        (CaptureConfig(outbound_ip_ranges_include="*", inbound_ports_include="*"), "9090 are still redirected to 15006"),
        (CaptureConfig(outbound_ip_ranges_include="*", inbound_ports_include="*", inbound_ports_exclude="9090,8080"), "app port 8080 are no longer captured"),
        (CaptureConfig(inbound_ports_include="*", inbound_ports_exclude="9090"), "outbound connections are no longer captured"),
    ],
)
def test_usual_mistakes_get_their_hint(config, hint):
    with pytest.raises(CheckFailed, match=hint):
        lab02.check_rules(lambda: config)


def test_not_a_configuration():
    with pytest.raises(CheckFailed, match="must return a CaptureConfig, got dict"):
        lab02.check_rules(lambda: {"InboundPortsExclude": "9090"})


@pytest.mark.live
def test_live_check_catches_a_wrong_bypass_verdict():
    with pytest.raises(CheckFailed, match="bypassed\\(\\) said True for port 8080, whose app saw 127.0.0.6"):
        lab02.check_live(lambda: RIGHT, lambda reply: True)
