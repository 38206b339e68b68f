"""What istio-iptables executes, in the format of Istio's golden test files.

Istio's ``TestIptables`` records the commands the tool runs: the state checks (``iptables-save``,
``ip6tables-save``), the iptables-restore input, the ip6tables-restore input when IPv6 is on,
and the final ``iptables-save`` (plus ``ip6tables-save``), joined by newlines with no trailing
newline. ``render_commands`` produces exactly that text, so it can be compared with Istio's own
golden files byte for byte.

    render_commands   the golden-format text for a configuration
"""

from __future__ import annotations

from meshlab.intercept.capture import build_rules
from meshlab.intercept.config import CaptureConfig


def render_commands(config: CaptureConfig) -> str:
    rules = build_rules(config)
    parts = ["iptables-save", "ip6tables-save", rules.restore_text(4).rstrip("\n")]
    if config.enable_ipv6:
        parts.append(rules.restore_text(6).rstrip("\n"))
    parts.append("iptables-save")
    if config.enable_ipv6:
        parts.append("ip6tables-save")
    return "\n".join(part for part in parts if part)
