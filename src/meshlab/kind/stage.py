"""The kind stage as the chapters run it: bring up what a chapter needs, compare, report.

``run(chapter)`` does it for real when ``meshlab doctor`` says the kind stage is available;
``plan(chapter)`` runs the very same code with a dry Runner and returns the commands it would have
run; ``plan_script(chapter)`` is that plan as a shell script that fits the page, which is what a
chapter shows on a machine without Docker. The cluster is kept between chapters (created once,
reused after; ``teardown()`` deletes it).

    CHAPTERS     what each chapter compares
    up           cluster + Istio profile + the namespace's workloads, each waited for
    plan         the commands a chapter's section would run, one line each
    plan_script  the same as a shell script within the page's 100 columns
    run          run it (KindError says which step failed and the fix)
    teardown     delete the cluster
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from meshlab import doctor
from meshlab.kind import experiments, istio, manifests
from meshlab.kind.cluster import KindCluster
from meshlab.kind.runner import KindError, Runner
from meshlab.viz.text import WIDTH, command  # not in runner: doctor imports that without matplotlib
from meshlab.xds.debounce import DebounceOptions

CLUSTER_NAME = "meshlab"
NAMESPACES = {"sidecar": "meshlab-sidecar", "ambient": "meshlab-ambient"}
#: The debounce experiment's settings: Istio's defaults, set explicitly so the Deployment states them.
DEBOUNCE = DebounceOptions(debounce_after_ms=100, debounce_max_ms=10_000)

CHAPTERS = {
    "02": "a sidecar pod's rules (istio-init's log, a debug container, the kernel) vs meshlab intercept istio-iptables; a request across both sidecars",
    "04": "an ambient pod's in-pod rules (from the kernel) vs this chapter's account of them",
    "06": "10 config changes in a burst, then 5 spaced beyond DEBOUNCE_AFTER: istiod's pushes vs the simulator",
}


@dataclass
class StageRun:
    """A chapter's kind section: ``agreed`` is the verdict of a run that happened, and None without one
    (a plan is no evidence). ``reason`` says why it did not run (doctor's reason and fix)."""

    chapter: str
    reason: str = ""
    findings: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    agreed: bool | None = None

    @property
    def ran(self) -> bool:
        return self.agreed is not None

    def text(self) -> str:
        """The findings; without a run, what would run, and where to see why it could not (not pinned
        to this machine: ``meshlab doctor --stage kind`` or ``.reason`` says why)."""
        if not self.ran:
            return (f"kind stage not available here, so nothing was compared (meshlab doctor --stage kind says why).\n"
                    f"chapter {self.chapter} would run {len(self.commands)} commands (stage.plan_script({self.chapter!r}) shows them)")
        return "\n".join(self.findings)


def up(cluster: KindCluster, mode: str, debounce: DebounceOptions | None = None) -> str:
    """Cluster, Istio in ``mode``'s profile, and the mode's namespace with httpbin and curl, all ready."""
    cluster.create()
    istio.install(cluster, mode, debounce)
    namespace = NAMESPACES[mode]
    cluster.apply("deploy workloads", manifests.workloads(namespace, mode))
    cluster.rollout("wait for httpbin", namespace, "deploy/httpbin")
    cluster.rollout("wait for curl", namespace, "deploy/curl")
    return namespace


def _chapter(cluster: KindCluster, chapter: str) -> tuple[list[str], bool]:
    if chapter == "02":
        namespace = up(cluster, "sidecar")
        results = experiments.sidecar_rules(cluster, namespace)
        crossed, seen = experiments.mesh_request(cluster, namespace)
        return [r.report() for r in results] + [seen], all(r.identical for r in results) and crossed
    if chapter == "04":
        result = experiments.ambient_rules(cluster, up(cluster, "ambient"))
        return [result.report()], result.identical
    namespace = up(cluster, "sidecar", DEBOUNCE)
    bursts = [experiments.debounce_burst(cluster, namespace, 10, 0),
              experiments.debounce_burst(cluster, namespace, 5, 3 * DEBOUNCE.debounce_after_ms)]
    return [b.report() for b in bursts], all(b.measured_pushes == b.predicted_pushes for b in bursts)


def _check(chapter: str) -> None:
    if chapter not in CHAPTERS:
        raise KindError("kind stage", f"no kind section for chapter {chapter!r}", f"chapters with one: {', '.join(CHAPTERS)}")


def _dry_run(chapter: str) -> Runner:
    _check(chapter)
    runner = Runner(dry_run=True)
    _chapter(KindCluster(CLUSTER_NAME, runner, kubeconfig=Path("~/.kube/kind-meshlab.yaml")), chapter)
    return runner


def plan(chapter: str) -> list[str]:
    return _dry_run(chapter).commands()


def plan_script(chapter: str, width: int = WIDTH) -> str:
    """The plan as a shell script within ``width`` columns: each step's name as a comment, then its
    command broken with continuations (``meshlab.viz.text.command``), so a line never runs off the page
    and a pasted command is the argv the stage runs, byte for byte. Placeholders such as ``<node>``
    stand where a real run reads a name from the cluster."""
    return "\n".join(f"# {step}\n{command(argv, width)}" for step, argv in _dry_run(chapter).transcript)


def run(chapter: str, runner: Runner | None = None) -> StageRun:
    """Run chapter ``chapter``'s comparison on the kind stage, or say plainly why it cannot run here.
    A given ``runner`` (tools by path) is used without asking doctor first."""
    _check(chapter)
    report = doctor.check_kind()
    if not report.available and runner is None:
        return StageRun(chapter, f"{report.reason} (fix: {report.fix})", commands=plan(chapter))
    cluster = KindCluster(CLUSTER_NAME, runner or Runner())
    findings, agreed = _chapter(cluster, chapter)
    return StageRun(chapter, findings=findings, commands=cluster.runner.commands(), agreed=agreed)


def teardown(runner: Runner | None = None) -> None:
    KindCluster(CLUSTER_NAME, runner or Runner()).delete()
