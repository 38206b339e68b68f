"""The kind stage on a real cluster, where a reader has Docker, kind, kubectl and istioctl
(``make test-kind``; skipped with doctor's reason elsewhere). The cluster is created once, reused by
every chapter, and deleted at the end unless MESHLAB_KEEP_CLUSTER=1."""

from __future__ import annotations

import os
import subprocess

import pytest

from meshlab.kind import observe, stage
from meshlab.kind.cluster import KindCluster
from meshlab.kind.runner import Runner
from meshlab.kind.versions import ISTIO_VERSION

pytestmark = pytest.mark.kind


@pytest.fixture(scope="module")
def kind_stage():
    yield
    if os.environ.get("MESHLAB_KEEP_CLUSTER") != "1":
        stage.teardown()


@pytest.mark.parametrize("command", [["docker", "info", "--format", "{{.ServerVersion}}"], ["kind", "version"], ["kubectl", "version", "--client"], ["istioctl", "version", "--remote=false"]])
def test_kind_stage_tools_answer(command):
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("chapter", ["02", "06", "04"])
def test_the_chapters_predictions_hold_on_a_real_cluster(kind_stage, chapter):
    run = stage.run(chapter)
    assert run.ran, run.text()
    assert run.agreed, run.text()


def test_every_sidecar_is_connected_to_istiod_at_the_pinned_release(kind_stage):
    cluster = KindCluster(stage.CLUSTER_NAME, Runner())
    stage.up(cluster, "sidecar")
    rows = observe.proxy_status(cluster)
    pods = [row for row in rows if row["NAME"].endswith("." + stage.NAMESPACES["sidecar"])]
    assert {row["NAME"].split("-")[0] for row in pods} == {"httpbin", "curl"}
    assert all(row["VERSION"].startswith(ISTIO_VERSION) for row in pods), rows
