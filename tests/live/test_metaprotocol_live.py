"""The MetaProtocol proxy in the live lab: thrift backends in two pods, the proxy in a third, thrift's
client in a fourth, every pod with its sidecar and Istio's rules. The MetaRouter's 20/80 split and
its rate limit hold across real pod networking."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from meshlab.lab import Lab
from meshlab.metaprotocol.demo import thrift_call

pytestmark = pytest.mark.live

METAROUTER = """
apiVersion: metaprotocol.aeraki.io/v1alpha1
kind: MetaRouter
metadata: {name: hello}
spec:
  hosts: [hello]
  routes:
  - name: canary
    match: {attributes: {method: {exact: sayHello}}}
    route:
    - {destination: {host: hello, subset: v1}, weight: 20}
    - {destination: {host: hello, subset: v2}, weight: 80}
  localRateLimit:
    conditions:
    - match: {attributes: {method: {exact: sayHello}}}
      tokenBucket: {maxTokens: 100, tokensPerFill: 1, fillInterval: 60s}
"""


def started(lab: Lab, pod: str, argv: list[str]) -> tuple[subprocess.Popen, dict]:
    process = subprocess.Popen(lab.pod(pod).namespace.argv(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"{argv} in {pod} did not start: {process.communicate(timeout=10)[1][-800:]}")
    return process, json.loads(line)


def test_the_proxy_routes_thrift_between_lab_pods(tmp_path):
    config = tmp_path / "metarouter.yaml"
    config.write_text(METAROUTER)
    with Lab("mlmp").up(4) as lab:  # pods run the echo app on 8080 and 9090: the backends take 9091
        processes, proxy = [], None
        try:
            for pod, name in (("pod2", "v1"), ("pod3", "v2")):
                processes.append(started(lab, pod, [sys.executable, "-m", "meshlab.metaprotocol.demo", "thrift-backend", "--name", name, "--port", "9091"])[0])
            proxy, ready = started(lab, "pod1", [sys.executable, "-m", "meshlab.cli", "metaprotocol", "proxy", "--config", str(config), "--codec", "thrift",
                                                 "--listen", "0.0.0.0:9000", "--cluster", f"hello|v1={lab.pod('pod2').ip}:9091",
                                                 "--cluster", f"hello|v2={lab.pod('pod3').ip}:9091"])
            processes.append(proxy)
            gateway = lab.pod("pod1").ip
            answers = Counter(lab.in_pod("pod0", thrift_call, 9000, "sayHello", gateway) for _ in range(105))
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=10)
        stopped = json.loads(proxy.stdout.read().splitlines()[-1])
        hops = lab.hops("pod1")
        backends = {f"{lab.pod(pod).ip}:9091" for pod in ("pod2", "pod3")}
    limited = answers.pop("exception: meshlab metaprotocol proxy: rate limited")
    assert limited == 5 and sum(answers.values()) == 100, "the bucket held 100 tokens"
    assert set(answers) == {"v1", "v2"} and 5 <= answers["v1"] <= 40 < answers["v2"], "20/80 (4.8 sd either side of 20)"
    assert stopped["stats"]["routed:canary:hello|v1"] == answers["v1"] and stopped["stats"]["rate_limited"] == 5
    # the gateway pod's sidecar saw the proxy's connections to both backends, and the client's to the proxy
    assert {hop["original_dst"] for hop in hops if hop["direction"] == "outbound"} == backends
    assert any(hop["direction"] == "inbound" and hop["original_dst"] == f"{gateway}:9000" for hop in hops)
