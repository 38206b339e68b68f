"""One door to the reader's ``kind``, ``kubectl``, ``istioctl`` and ``docker``.

Every command the kind stage runs goes through ``Runner.run`` with the name of the step it belongs
to, so a failure says which step failed, the command line, what the tool printed and the fix; and
every command is recorded in ``transcript``, which is also how a chapter shows, on a machine
without Docker, exactly what the stage would run (``Runner.dry_run``).

The tools are the reader's own installed binaries, found on PATH or given by path; nothing is ever
downloaded (pytest-kind downloads kind v0.17 and kubectl 1.25 into the working folder, too old for
the Kubernetes versions Istio 1.30 supports).

    KindError    a step of the kind stage failed; ``str()`` says what and the fix
    Runner       run (or, dry, record) a command for a named step
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

TOOLS = ("docker", "kind", "kubectl", "istioctl")

#: Where each tool comes from (the README's kind section says the same).
INSTALL = {
    "docker": "install Docker Engine or Docker Desktop (docs.docker.com/get-docker) and start it",
    "kind": "install kind >= v0.33.0 (kind.sigs.k8s.io/docs/user/quick-start/#installation)",
    "kubectl": "install kubectl 1.34-1.36 (kubernetes.io/docs/tasks/tools/)",
    "istioctl": "install istioctl 1.30.3 (curl -L https://istio.io/downloadIstio | ISTIO_VERSION=1.30.3 sh -), and put istio-1.30.3/bin on PATH",
}


class KindError(RuntimeError):
    """A step of the kind stage failed. ``step`` names it, ``fix`` says what to do."""

    def __init__(self, step: str, problem: str, fix: str = "") -> None:
        self.step, self.problem, self.fix = step, problem, fix
        super().__init__(f"{step}: {problem}" + (f"\n  fix: {fix}" if fix else ""))


@dataclass
class Runner:
    """Runs the stage's commands. ``paths`` maps a tool to its executable (default: found on PATH);
    ``kubeconfig`` is given to kubectl and istioctl; with ``dry_run`` nothing runs and every
    command answers with empty output."""

    paths: dict[str, str] = field(default_factory=dict)
    kubeconfig: Path | None = None
    dry_run: bool = False
    transcript: list[tuple[str, list[str]]] = field(default_factory=list)

    def executable(self, tool: str, step: str) -> str:
        if tool not in TOOLS:
            raise ValueError(f"unknown tool {tool!r}; the kind stage runs {', '.join(TOOLS)}")
        if self.dry_run:
            return tool
        found = self.paths.get(tool) or shutil.which(tool)
        if not found or not os.access(found, os.X_OK):
            raise KindError(step, f"{tool} is not installed (not found on PATH)", INSTALL[tool])
        return found

    def run(self, step: str, tool: str, *args: str, stdin: str | None = None, timeout: float = 120, fix: str = "") -> str:
        """Run ``tool args`` for ``step`` and return its standard output; KindError if it fails."""
        argv = [self.executable(tool, step), *args]
        self.transcript.append((step, [tool, *args]))
        if self.dry_run:
            return ""
        env = dict(os.environ)
        if self.kubeconfig is not None:
            env["KUBECONFIG"] = str(self.kubeconfig)
        try:
            feed = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False, **feed)
        except subprocess.TimeoutExpired:
            raise KindError(step, f"`{' '.join([tool, *args])}` did not finish within {timeout:.0f} s", fix) from None
        if done.returncode != 0:
            said = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()
            raise KindError(step, f"`{' '.join([tool, *args])}` exited with {done.returncode}: {said[-1]}", fix)
        return done.stdout

    def commands(self) -> list[str]:
        """The transcript as shell lines, for showing a reader what ran (or would run)."""
        return [f"{step:<22} {shlex.join(argv)}" for step, argv in self.transcript]
