"""How the upstream stage finds and builds programs, without building Istio: a release binary of the
pinned version on PATH is used as it is, another version is not, and a build that cannot succeed says
which program failed, at which step, with go's own last lines."""

from __future__ import annotations

import pytest

from meshlab.upstream import build
from meshlab.upstream.source import UpstreamError
from meshlab.upstream.versions import PROGRAMS, Module, Program


def fake_release(folder, version: str) -> None:
    """A ``pilot-agent`` whose ``version -s`` prints ``version``, as Istio's release binary does."""
    path = folder / "pilot-agent"
    path.write_text(f'#!/bin/sh\n[ "$1 $2" = "version -s" ] && echo {version}\n')
    path.chmod(0o755)


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MESHLAB_UPSTREAM_CACHE", str(tmp_path / "cache"))
    return tmp_path


def test_a_release_binary_of_the_pinned_version_on_path_is_used(empty_cache, monkeypatch):
    fake_release(empty_cache, "1.30.3")
    monkeypatch.setenv("PATH", f"{empty_cache}:/usr/bin:/bin")
    found = build.find(PROGRAMS["pilot-agent"])
    assert (found.source, found.version, found.path) == ("PATH", "1.30.3", str(empty_cache / "pilot-agent"))


def test_another_version_on_path_is_not_taken_for_the_pinned_one(empty_cache, monkeypatch):
    fake_release(empty_cache, "1.29.4")
    monkeypatch.setenv("PATH", f"{empty_cache}:/usr/bin:/bin")
    assert build.find(PROGRAMS["pilot-agent"]) is None


def test_without_go_the_install_says_how_to_get_it(empty_cache, monkeypatch):
    monkeypatch.setenv("PATH", str(empty_cache))
    with pytest.raises(UpstreamError, match="go is not on PATH; install Go"):
        build.install(PROGRAMS["pilot-agent"])


@pytest.mark.upstream
def test_a_build_that_fails_names_the_program_the_step_and_gos_words(empty_cache):
    nowhere = Module("example.invalid/meshlab/nothing", "v0.0.1", "0.0.1", "a module that does not exist")
    program = Program("nothing", nowhere, "example.invalid/meshlab/nothing/cmd/nothing", ("version",))
    lines = []
    with pytest.raises(UpstreamError) as failure:
        build.install(program, progress=lines.append)
    said = str(failure.value)
    assert said.startswith("nothing: go build example.invalid/meshlab/nothing/cmd/nothing failed (exit 1)")
    assert "example.invalid" in said.split("\n", 1)[1] and "fix: check the Go module proxy" in said
    assert lines[0].startswith("building nothing 0.0.1")
    assert not list((empty_cache / "cache" / "bin").glob("nothing*")), "nothing half-built is left as if built"


def test_the_cli_lists_every_program_and_says_how_to_build_a_missing_one(empty_cache, monkeypatch, capsys):
    import json

    from meshlab.cli import main

    fake_release(empty_cache, "1.30.3")
    monkeypatch.setenv("PATH", f"{empty_cache}:/usr/bin:/bin")
    assert main(["upstream", "list", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert list(rows) == ["pilot-agent", "pilot-discovery", "istioctl", "spire-server", "spire-agent", "egctl", "daprd", "crane",
                          "kube-apiserver", "kubectl", "kube-controller-manager", "etcd"]
    assert rows["pilot-agent"]["source"] == "PATH" and rows["istioctl"] == {"name": "istioctl", "version": "1.30.3+9739e10eb9d7", "path": None, "source": None}
    assert main(["upstream", "path", "pilot-agent"]) == 0 and capsys.readouterr().out.strip() == str(empty_cache / "pilot-agent")
    assert main(["upstream", "path", "egctl"]) == 1
    assert "meshlab upstream install egctl" in capsys.readouterr().err
    assert main(["upstream", "install", "envoy"]) == 2
    assert ("no upstream program 'envoy'; programs are pilot-agent, pilot-discovery, istioctl, spire-server, spire-agent, egctl, "
            "daprd, crane, kube-apiserver, kubectl, kube-controller-manager, etcd") in capsys.readouterr().err
