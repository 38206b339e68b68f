"""Transparent interception: Istio's iptables rules, generated from istio-iptables's configuration.

    config    CaptureConfig: istio-iptables's fields, defaults and validation
    rules     Rule and RuleSet: Istio's rule builder and its iptables-restore text
    capture   build_rules: the capture logic of istio-iptables 1.30.3, step by step
    render    render_commands: the commands istio-iptables runs, in Istio's golden format
    flags     the istio-iptables command line
    apply     install and remove the rules in a network namespace
    walk      a connection's first packet through the rules, as netfilter does
    paths     stack and iptables traversals of a request, iptables vs eBPF
    compare   a kernel's saved rules against the generator's, as iptables holds them (order of matches kept)
"""

from meshlab.intercept.capture import build_rules
from meshlab.intercept.config import CaptureConfig, ConfigError
from meshlab.intercept.render import render_commands
from meshlab.intercept.rules import Rule, RuleSet

__all__ = ["CaptureConfig", "ConfigError", "Rule", "RuleSet", "build_rules", "render_commands"]
