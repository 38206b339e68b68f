"""daprd from its Go module, the project's way: the wrapper module repeats the replace lines of
dapr v1.14.0's own go.mod (read from Go's module cache, never copied into the repository), the
build takes the components' tag and stamps the version, and the binary says it is 1.14.0."""

from __future__ import annotations

import subprocess

import pytest
from upstream_programs import program_path

from meshlab.upstream import build
from meshlab.upstream.source import UpstreamError
from meshlab.upstream.versions import DAPR, ISTIO, PROGRAMS, Module


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MESHLAB_UPSTREAM_CACHE", str(tmp_path / "cache"))
    return tmp_path


def test_pinned_replacements_keep_their_one_line_form():
    lines = build.replace_lines(ISTIO)
    assert [old for old, _, _ in lines] == sorted(ISTIO.replacements)
    assert ("istio.io/api", "istio.io/api v1.30.8", ISTIO.replacements["istio.io/api"][1]) in lines


@pytest.mark.upstream
def test_the_wrapper_repeats_daprs_own_replace_lines_forks_and_renames_included(empty_cache):
    go_mod = (build.wrapper_module(DAPR) / "go.mod").read_text()
    replaces = [line.strip() for line in go_mod.splitlines() if "=>" in line]
    assert len(replaces) == 8, "dapr v1.14.0's go.mod has eight replace lines"
    assert "github.com/toolkits/concurrent => github.com/niean/gotools v0.0.0-20151221085310-ff3f51fc5c60 // as github.com/dapr/dapr@v1.14.0's go.mod" in replaces
    assert any(line.startswith("github.com/stretchr/testify => github.com/stretchr/testify v1.8.4 ") for line in replaces)
    assert "require github.com/dapr/dapr v1.14.0" in go_mod
    assert '_ "github.com/dapr/dapr/cmd/daprd"' in (build.wrapper_module(DAPR) / "tools.go").read_text()


@pytest.mark.upstream
def test_a_pinned_replacement_wins_over_the_modules_own(empty_cache):
    pinned = Module(DAPR.path, DAPR.version, DAPR.release, DAPR.note, {"github.com/stretchr/testify": ("v1.9.0", "a test's pin")}, own_replaces=True)
    lines = {old: (new, why) for old, new, why in build.replace_lines(pinned)}
    assert lines["github.com/stretchr/testify"] == ("github.com/stretchr/testify v1.9.0", "a test's pin")
    assert len(lines) == 8


@pytest.mark.upstream
def test_a_go_mod_replacing_with_a_folder_is_refused_by_name(empty_cache, monkeypatch):
    folder = empty_cache / "module"
    folder.mkdir()
    (folder / "go.mod").write_text("module example.com/m\n\ngo 1.22\n\nreplace example.com/dep => ../dep\n")
    monkeypatch.setattr(build, "source", lambda module: folder)
    local = Module("example.com/m", "v1.0.0", "1.0.0", "a module with a folder replacement", own_replaces=True)
    with pytest.raises(UpstreamError, match="example.com/m@v1.0.0's go.mod replaces example.com/dep with the folder ../dep"):
        build.replace_lines(local)


def test_daprd_is_built_with_the_stable_components_and_stamped_as_daprs_makefile_does():
    daprd = PROGRAMS["daprd"]
    assert daprd.tags == ("stablecomponents",) and not daprd.cgo and daprd.version == "1.14.0"
    assert daprd.stamp == {"github.com/dapr/dapr/pkg/buildinfo.version": "1.14.0", "github.com/dapr/kit/logger.DaprVersion": "1.14.0"}


@pytest.mark.upstream
def test_the_built_daprd_says_it_is_1_14_0():
    daprd = program_path("daprd")
    said = subprocess.run([daprd, "--build-info"], capture_output=True, text=True, timeout=60, check=True).stdout
    assert said.splitlines()[0] == "Version: 1.14.0"
    assert build.reported_version(daprd, PROGRAMS["daprd"]) == "1.14.0"
