"""Istio's sidecar injector, offline: ``istioctl manifest generate`` gives the injector's template and
values and the mesh config (ConfigMaps ``istio-sidecar-injector`` and ``istio``), and ``istioctl
kube-inject -r default`` injects a pod with them, as istiod's webhook would, without a cluster.

    Injector   with Injector(istioctl) as injector: injector.inject(pod) -> the injected pod (a dict)
    InjectionError  istioctl failed; says which step and what it said
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import yaml

from meshlab.upstream.run import run
from meshlab.upstream.versions import ISTIO

#: Release images for the pinned release (a build from a commit defaults to a testing registry).
IMAGE_SETTINGS = ("--set", "hub=docker.io/istio", "--set", f"tag={ISTIO.release}")


class InjectionError(RuntimeError):
    """istioctl could not generate or inject; the message names the step and istioctl's words."""


class Injector:
    def __init__(self, istioctl: str) -> None:
        self.istioctl = istioctl
        self.folder = Path(tempfile.mkdtemp(prefix="meshlab-inject-"))

    def _istioctl(self, step: str, *argv: str) -> str:
        return run([self.istioctl, *argv], f"{step}: istioctl {' '.join(argv[:2])}", InjectionError, cwd=self.folder).stdout

    def __enter__(self) -> Injector:
        try:
            manifest = self._istioctl("generate the injector's configuration", "manifest", "generate", *IMAGE_SETTINGS)
            maps = {doc["metadata"]["name"]: doc["data"] for doc in yaml.safe_load_all(manifest) if doc and doc.get("kind") == "ConfigMap"}
            (self.folder / "inject.yaml").write_text(maps["istio-sidecar-injector"]["config"])
            (self.folder / "values.json").write_text(maps["istio-sidecar-injector"]["values"])
            (self.folder / "mesh.yaml").write_text(maps["istio"]["mesh"])
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def inject(self, pod: dict) -> dict:
        (self.folder / "pod.yaml").write_text(yaml.safe_dump(pod))
        out = self._istioctl("inject the pod", "kube-inject", "-f", "pod.yaml", "--injectConfigFile", "inject.yaml", "--valuesFile", "values.json",
                             "--meshConfigFile", "mesh.yaml", "-r", "default")
        return next(doc for doc in yaml.safe_load_all(out) if doc)
