"""Istio's configuration analyzers, offline: ``istioctl analyze --use-kube=false FILES`` reads YAML and
reports what istiod would trip over (a route to a gateway or subset that does not exist, ...), each
finding with its IST code (istio.io/latest/docs/reference/config/analysis).

    Finding              one line of istioctl's report (meshlab.scoping.sidecar's, printed as istioctl prints it)
    analyze              YAML text -> the findings (an empty list when istioctl finds nothing); -A for every namespace
    BROKEN_ROUTE         the book's example of a mistake analyze catches
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from meshlab.scoping.sidecar import Finding
from meshlab.upstream.run import run

#: "Error [IST0101] (VirtualService default/reviews /tmp/x.yaml:6) Referenced gateway not found: ..."
FINDING = re.compile(r"^(?P<level>Error|Warning|Info) \[(?P<code>IST\d{4})\] \((?P<resource>\S+ \S+)[^)]*\) (?P<message>.*)$")


#: A VirtualService routing through a gateway and to a subset that exist nowhere (IST0101 twice).
BROKEN_ROUTE = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  gateways: [missing-gateway]
  http:
  - route:
    - destination: {host: reviews, subset: v9}
"""


class AnalyzeError(RuntimeError):
    """istioctl analyze failed for a reason other than findings (exit 79 means it found some)."""


def analyze(istioctl: str, resources: str, all_namespaces: bool = False) -> list[Finding]:
    """istioctl's findings for ``resources``: in the ``default`` namespace only, as istioctl looks there
    unless told otherwise, or in every namespace (``-A``) with ``all_namespaces``."""
    with tempfile.TemporaryDirectory(prefix="meshlab-analyze-") as folder:
        source = Path(folder) / "config.yaml"
        source.write_text(resources)
        argv = [istioctl, "analyze", "--use-kube=false", *(["-A"] if all_namespaces else []), str(source)]
        done = run(argv, "istioctl analyze", AnalyzeError, accepted=(0, 79))
    findings = [Finding(**m.groupdict()) for m in map(FINDING.match, done.stdout.splitlines()) if m]
    if done.returncode == 79 and not findings:
        raise AnalyzeError(f"istioctl analyze failed (exit 79) without a finding meshlab can read: {done.stdout.strip()[-600:]}")
    return findings
