"""meshlab.wasm.build: the example filters and a reader's source compiled by the real AssemblyScript
compiler (asc 0.14.9 with @solo-io/proxy-runtime 0.1.8), cached by the sha256 of what went in."""

from __future__ import annotations

import shutil

import pytest
import wasmtime

from meshlab import npm
from meshlab.wasm import build
from meshlab.wasm.abi import ABI_VERSIONS

needs_node = pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None,
                                reason=f"building proxy-wasm modules needs node and npm (fix: {npm.NODE_FIX})")


@needs_node
@pytest.mark.parametrize("name", sorted(build.SOURCES))
def test_example_filter_builds_into_a_proxy_wasm_module(name: str) -> None:
    path = build.build(name)
    assert path.name.startswith(f"{name}-") and path.suffix == ".wasm"
    module = wasmtime.Module(wasmtime.Engine(), path.read_bytes())  # wasmtime validates what asc wrote
    exports = {export.name for export in module.exports}
    assert "proxy_abi_version_0_2_0" in exports and set(ABI_VERSIONS) & exports
    assert {"proxy_on_request_headers", "proxy_on_configure", "memory", "malloc"} <= exports


@needs_node
def test_a_built_module_is_reused_and_a_changed_source_builds_anew() -> None:
    first = build.build("add_header")
    stamp = first.stat().st_mtime_ns
    assert build.build("add_header") == first and first.stat().st_mtime_ns == stamp
    changed = build.SOURCES["add_header"].read_text() + "\n// a reader's comment\n"
    other = build.build_source(changed, name="add_header")
    assert other != first and other.exists()


@needs_node
def test_a_compile_error_is_reported_with_ascs_message() -> None:
    source = build.SOURCES["add_header"].read_text().replace("this.value = config.get(\"value\");",
                                                             "this.value = undefinedThing;")
    with pytest.raises(build.BuildError) as caught:
        build.build_source(source, name="reader_filter")
    message = str(caught.value)
    assert "TS2304" in message and "undefinedThing" in message and "reader_filter/index.ts" in message
    assert "WARNING" not in message  # the standard library's warnings are left out


@needs_node
def test_a_source_without_the_sdk_is_refused_with_the_fix() -> None:
    with pytest.raises(build.BuildError, match='export \\* from "@solo-io/proxy-runtime/proxy"'):
        build.build_source("export function answer(): i32 { return 42; }\n", name="no_sdk")


def test_unknown_example_and_bad_module_names_are_refused() -> None:
    with pytest.raises(build.BuildError, match="add_header, deny_by_header, count_by_path"):
        build.build("add_headers")
    with pytest.raises(build.BuildError, match="lower-case letters"):
        build.build_source("", name="../escape")


def test_missing_node_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda program: None)
    with pytest.raises(build.BuildError, match="apt-get install nodejs npm"):
        build.install_toolchain()


def test_cache_folder_follows_xdg_cache_home(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("MESHLAB_WASM_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert build.cache_root() == tmp_path / "meshlab" / "wasm"
    assert build.module_path("x", "add_header").parent == tmp_path / "meshlab" / "wasm" / "modules"


@needs_node
def test_the_lab_template_compiles_as_given() -> None:
    path = build.build_source(build.TEMPLATE.read_text(), name="my_filter")
    exports = {export.name for export in wasmtime.Module(wasmtime.Engine(), path.read_bytes()).exports}
    assert "proxy_on_request_headers" in exports
