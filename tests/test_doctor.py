"""meshlab doctor: real probes, with reasons and fixes that name the missing piece."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from meshlab import doctor


def meshlab(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "meshlab.cli", *args], capture_output=True, text=True, env=env, timeout=120)


def fake_commands(folder: Path, **scripts: str) -> None:
    """Executables named after the keyword (``_`` for ``-``) that run the given shell body."""
    for name, body in scripts.items():
        path = folder / name.replace("_", "-")
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)


def test_json_has_every_stage_with_available_reason_and_fix():
    done = meshlab("doctor", "--json")
    assert done.returncode == 0, done.stderr
    stages = json.loads(done.stdout)["stages"]
    assert list(stages) == ["model", "live", "ebpf", "browser", "upstream", "kind"]
    for report in stages.values():
        assert set(report) == {"available", "reason", "fix"}
        assert isinstance(report["available"], bool) and report["reason"]
        assert report["available"] or report["fix"], "an unavailable stage must say how to fix it"
    assert stages["model"]["available"]


def test_text_report_gives_the_fix_under_each_unavailable_stage():
    reports = {"model": doctor.StageReport(True, "fine"), "kind": doctor.StageReport(False, "no docker", "start docker")}
    assert doctor.render_text(reports).splitlines() == [
        "model    available      fine",
        "kind     NOT available  no docker",
        "         fix:           start docker",
    ]


def test_live_without_iptables_says_which_package(tmp_path, monkeypatch):
    fake_commands(tmp_path, ip="true", unshare="true", nsenter="true", setpriv="true")
    monkeypatch.setenv("PATH", str(tmp_path))
    report = doctor.check_live()
    assert not report.available
    assert report.reason == "missing commands: iptables, iptables-restore, xtables-monitor"
    assert report.fix.startswith("apt-get install iptables")


def fake_live_commands(folder: Path, unshare: str) -> None:
    """Every command the live stage needs, succeeding, except ``unshare`` (given its shell body)."""
    fake_commands(folder, ip="true", iptables="true", iptables_restore="true", xtables_monitor="true", setpriv="true", nsenter="true",
                  sh="true", mount="true", unshare=unshare)


def test_live_when_namespaces_are_refused(tmp_path, monkeypatch):
    fake_live_commands(tmp_path, unshare="echo 'unshare failed: Operation not permitted' >&2; exit 1")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(doctor, "_is_root", lambda: True)
    report = doctor.check_live()
    assert "cannot create a network namespace" in report.reason and "Operation not permitted" in report.reason
    monkeypatch.setattr(doctor, "_is_root", lambda: False)
    report = doctor.check_live()
    assert report.reason.startswith("not root, and this kernel refused an unprivileged user namespace (unshare failed: Operation not permitted); settings: user.max_user_namespaces=")
    assert report.fix.startswith("run as root (sudo), or allow unprivileged user namespaces")


def test_live_without_root_where_user_namespaces_work(tmp_path, monkeypatch):
    fake_live_commands(tmp_path, unshare="true")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(doctor, "_is_root", lambda: False)
    report = doctor.check_live()
    assert report.available and report.reason.startswith("not root: the lab runs inside a user namespace")


def test_ebpf_without_toolchain_says_install_bpftool(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(doctor, "LIBBPF_HEADER", tmp_path / "missing.h")
    report = doctor.check_ebpf()
    assert not report.available
    assert "missing bpftool, clang, libbpf-dev" in report.reason
    assert "apt-get install bpftool clang libbpf-dev" in report.fix


def test_browser_without_chromium(tmp_path, monkeypatch):
    monkeypatch.setenv("MESHLAB_CHROMIUM", str(tmp_path / "chromium"))
    report = doctor.check_browser()
    assert not report.available and "apt-get install chromium" in report.fix


def test_unknown_stage_is_refused_with_the_list():
    with pytest.raises(ValueError, match="unknown stage 'docker'; stages are model, live, ebpf, browser, upstream, kind"):
        doctor.diagnose(("docker",))
    done = meshlab("doctor", "--stage", "docker")
    assert done.returncode == 2 and "invalid choice: 'docker'" in done.stderr


@pytest.mark.live
def test_live_probe_really_creates_a_network_namespace():
    report = doctor.check_live()
    assert report.available, report.reason
    assert "network namespaces work as root" in report.reason


@pytest.mark.ebpf
def test_ebpf_stage_sees_the_toolchain():
    assert "clang, bpftool and libbpf headers present" in doctor.check_ebpf().reason


def test_upstream_without_go_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    report = doctor.check_upstream()
    assert not report.available and "go is not on PATH" in report.reason and "install Go" in report.fix


def test_upstream_with_an_empty_module_cache_names_the_missing_module(tmp_path, monkeypatch):
    fake_commands(tmp_path, go=f'case "$1" in version) echo "go version go1.26.8 linux/amd64";; env) echo {tmp_path / "modcache"};; esac')
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    report = doctor.check_upstream()
    assert not report.available
    assert "istio.io/istio@v0.0.0-20260826214018-9739e10eb9d7 (Istio 1.30.3) is not in the Go module cache" in report.reason
    assert "make upstream" in report.fix
