"""meshlab doctor's kind stage: each preflight probe, against stub tools, with the exact fix."""

from __future__ import annotations

import json
import platform

import pytest
from kind_stubs import StubTools

from meshlab import doctor
from meshlab.kind import preflight

GOOD = {"docker": "27.3.1 8 17179869184", "kind": "kind v0.33.0 go1.25.4 linux/amd64",
        "kubectl": json.dumps({"clientVersion": {"gitVersion": "v1.35.2", "platform": "linux/amd64"}, "kustomizeVersion": "v5.7.1"}),
        "istioctl": "client version: 1.30.3"}


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """Stub tools answering like a good machine, and inotify limits as kind asks."""
    tools = StubTools(tmp_path)
    monkeypatch.setenv("PATH", str(tools.bin))
    inotify = tmp_path / "inotify"
    inotify.mkdir()
    (inotify / "max_user_watches").write_text("524288\n")
    (inotify / "max_user_instances").write_text("512\n")
    monkeypatch.setattr(preflight, "INOTIFY_DIR", inotify)
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    return tools


def answer(tools: StubTools, **outputs: str) -> None:
    for tool, text in {**GOOD, **outputs}.items():
        tools.reply(tool, [], stdout=text + "\n")


def test_a_good_machine_is_available_and_says_what_it_found(machine):
    answer(machine)
    report = doctor.check_kind()
    assert report.available, report.reason
    assert report.reason == "Docker 27.3.1, kind 0.33.0, kubectl 1.35.2, istioctl 1.30.3, 8 CPUs, 16 GB"
    assert "docker info --format {{.ServerVersion}} {{.NCPU}} {{.MemTotal}}" in machine.commands()


def test_no_docker_daemon(machine):
    machine.reply("docker", ["info"], stderr="Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n", code=1)
    answer(machine)
    report = doctor.check_kind()
    assert not report.available
    assert "kind needs a running Docker daemon: docker info failed (Cannot connect to the Docker daemon" in report.reason
    assert "start the Docker daemon" in report.fix


def test_missing_tools_are_each_named_with_where_to_get_them(machine):
    answer(machine)
    for tool in ("kind", "kubectl", "istioctl"):
        (machine.bin / tool).unlink()
    report = doctor.check_kind()
    assert "kind is not installed; kubectl is not installed; istioctl is not installed" in report.reason
    assert "install kind >= v0.33.0" in report.fix and "install kubectl 1.34-1.36" in report.fix and "ISTIO_VERSION=1.30.3" in report.fix


@pytest.mark.parametrize(("outputs", "problem", "fix"), [
    ({"kind": "kind v0.17.0 go1.19.2 linux/amd64"}, "kind 0.17.0 is older than v0.33.0", "install kind >= v0.33.0"),
    ({"kubectl": json.dumps({"clientVersion": {"gitVersion": "v1.25.3"}})}, "kubectl 1.25 is more than one minor version from the cluster's 1.35.8", "install kubectl"),
    ({"istioctl": "client version: 1.24.2"}, "istioctl 1.24.2; the book follows Istio 1.30.3", "ISTIO_VERSION=1.30.3"),
    ({"docker": "27.3.1 2 4294967296"}, "2 CPUs and 4 GB for Docker", "give Docker >= 4 CPUs and 8 GB"),
    ({"istioctl": "Error: unknown flag"}, "`istioctl version --remote=false` did not say a version", "install istioctl"),
])
def test_each_wrong_version_or_too_small_docker_is_named_with_its_fix(machine, outputs, problem, fix):
    answer(machine, **outputs)
    report = doctor.check_kind()
    assert not report.available
    assert problem in report.reason and fix in report.fix


def test_low_inotify_limits_get_the_sysctl_to_run(machine):
    answer(machine)
    (preflight.INOTIFY_DIR / "max_user_watches").write_text("8192\n")
    report = doctor.check_kind()
    assert "fs.inotify.max_user_watches=8192 is too low for kind" in report.reason
    assert "sudo sysctl fs.inotify.max_user_watches=524288" in report.fix


def test_an_architecture_without_node_images(machine, monkeypatch):
    answer(machine)
    monkeypatch.setattr(platform, "machine", lambda: "s390x")
    report = doctor.check_kind()
    assert "architecture s390x" in report.reason and "amd64 and arm64" in report.fix
