"""pilot-agent's module fetching and ECDS conversion (Istio 1.30 pkg/wasm) against a real HTTP server on
loopback (Python's http.server in a thread) serving a real Wasm module made by wasmtime's wat2wasm."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import json
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import wasmtime
from envoy.config.core.v3 import extension_pb2
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2 as http_rbac_pb2
from envoy.extensions.filters.http.wasm.v3 import wasm_pb2 as http_wasm_pb2
from google.protobuf import any_pb2, empty_pb2, json_format
from test_wasm_plugin import make
from udpa.type.v1 import typed_struct_pb2
from upstream_programs import program_path

from meshlab.wasm.fetch import OCI_MANIFEST, WASM_LAYER, FetchError, ModuleCache, convert, fetch_http, fetch_oci, is_wasm
from meshlab.wasm.plugin import extension_config

MODULE = wasmtime.wat2wasm('(module (func (export "answer") (result i32) i32.const 42))')
MODULE_SHA = hashlib.sha256(MODULE).hexdigest()


@dataclass
class Server:
    """A loopback HTTP server: ``routes`` maps a path to a list of (status, body) served in turn (the last repeats)."""
    port: int
    routes: dict[str, list[tuple[int, bytes]]] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server(0)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits[self.path] = state.hits.get(self.path, 0) + 1
            answers = state.routes.get(self.path, [(404, b"not found")])
            status, body = answers[min(state.hits[self.path], len(answers)) - 1]
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(tmp_path: Path) -> ModuleCache:
    return ModuleCache(tmp_path / "wasm", http_initial_backoff=0.01)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_test_module_is_real_wasm():
    assert is_wasm(MODULE) and wasmtime.Module(wasmtime.Engine(), MODULE) is not None
    assert not is_wasm(b"\0asm") and not is_wasm(b"<html>not a module</html>")


def test_a_module_is_fetched_checked_and_cached_under_its_checksum(server, cache):
    server.routes["/m.wasm"] = [(200, MODULE)]
    path = cache.get(server.url("/m.wasm"), MODULE_SHA)
    assert path.read_bytes() == MODULE and path.name == f"{MODULE_SHA}.wasm"
    assert path.parent.name == hashlib.sha256(server.url("/m.wasm").encode()).hexdigest()
    assert cache.get(server.url("/m.wasm"), MODULE_SHA) == path and server.hits["/m.wasm"] == 1


@pytest.mark.parametrize("wrap", [gzip.compress, lambda data: tar_of("any-name.wasm", data)])
def test_gzipped_and_tarred_modules_are_unpacked(server, wrap):
    server.routes["/boxed"] = [(200, wrap(MODULE))]
    assert fetch_http(server.url("/boxed")) == MODULE


def tar_of(name: str, data: bytes, compress: bool = False) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if compress else "w", format=tarfile.USTAR_FORMAT) as archive:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_a_wrong_digest_names_both(server, cache):
    server.routes["/m.wasm"] = [(200, MODULE)]
    with pytest.raises(FetchError) as caught:
        cache.get(server.url("/m.wasm"), "0" * 64)
    assert MODULE_SHA in str(caught.value) and "0" * 64 in str(caught.value) and server.url("/m.wasm") in str(caught.value)


def test_not_a_wasm_module_is_refused(server, cache):
    server.routes["/page"] = [(200, b"<html>hello</html>")]
    with pytest.raises(FetchError, match=r"invalid.*\\0asm"):
        cache.get(server.url("/page"))


def test_a_404_is_not_retried(server, cache):
    with pytest.raises(FetchError, match="after 1 attempts.*status code 404"):
        cache.get(server.url("/missing.wasm"))
    assert server.hits["/missing.wasm"] == 1


def test_a_503_is_retried_until_the_module_comes(server, cache):
    server.routes["/flaky"] = [(503, b"busy"), (503, b"busy"), (200, MODULE)]
    assert cache.get(server.url("/flaky")).read_bytes() == MODULE
    assert server.hits["/flaky"] == 3


def test_a_501_ends_at_once_and_a_500_is_retried_five_times(server, cache):
    server.routes["/501"], server.routes["/500"] = [(501, b"")], [(500, b"")]
    with pytest.raises(FetchError):
        cache.get(server.url("/501"))
    with pytest.raises(FetchError, match="after 5 attempts"):
        cache.get(server.url("/500"))
    assert (server.hits["/501"], server.hits["/500"]) == (1, 5)


def test_an_unreachable_url_is_named(cache):
    url = f"http://127.0.0.1:{closed_port()}/m.wasm"
    with pytest.raises(FetchError) as caught:
        cache.get(url)
    assert url in str(caught.value) and "refused" in str(caught.value).lower()


def test_a_file_url_is_read_and_checked(tmp_path, cache):
    module = tmp_path / "m.wasm"
    module.write_bytes(MODULE)
    assert cache.get(f"file://{module}", MODULE_SHA).read_bytes() == MODULE
    with pytest.raises(FetchError, match="cannot read"):
        cache.get(f"file://{tmp_path}/absent.wasm")


def test_an_unsupported_scheme_is_refused(cache):
    with pytest.raises(FetchError, match="unsupported.*'ftp'"):
        cache.get("ftp://h/m.wasm")


def test_if_not_present_keeps_the_cached_module_across_resource_versions(server, cache):
    server.routes["/m.wasm"] = [(200, MODULE)]
    cache.get(server.url("/m.wasm"), resource_name="r", resource_version="1", pull_policy="IfNotPresent")
    cache.get(server.url("/m.wasm"), resource_name="r", resource_version="2", pull_policy="IfNotPresent")
    assert server.hits["/m.wasm"] == 1


def test_always_fetches_again_when_the_resource_version_changes(server, cache):
    server.routes["/m.wasm"] = [(200, MODULE)]
    for version in ("1", "1", "2"):
        cache.get(server.url("/m.wasm"), resource_name="r", resource_version=version, pull_policy="Always")
    assert server.hits["/m.wasm"] == 2


def remote_resource(url: str, **spec: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(extension_config(make(url=url, **spec)))
    return packed


def unpack_wasm(resource: any_pb2.Any) -> http_wasm_pb2.Wasm:
    config, wasm = extension_pb2.TypedExtensionConfig(), http_wasm_pb2.Wasm()
    assert resource.Unpack(config) and config.typed_config.Unpack(wasm)
    return wasm


def test_convert_rewrites_remote_code_to_the_cached_file_and_drops_the_agents_env(server, cache):
    server.routes["/m.wasm"] = [(200, MODULE)]
    converted = convert(remote_resource(server.url("/m.wasm"), sha256=MODULE_SHA, imagePullPolicy="Always",
                                        vmConfig={"env": [{"name": "MODE", "value": "x"}]}), cache)
    assert converted.outcome == "local"
    vm = unpack_wasm(converted.resource).config.vm_config
    assert Path(vm.code.local.filename).read_bytes() == MODULE
    assert dict(vm.environment_variables.key_values) == {"MODE": "x"}


def test_convert_with_only_the_agents_env_leaves_no_env(server, cache):
    server.routes["/m.wasm"] = [(200, MODULE)]
    vm = unpack_wasm(convert(remote_resource(server.url("/m.wasm")), cache).resource).config.vm_config
    assert not vm.HasField("environment_variables")


@pytest.mark.parametrize("strategy, outcome", [("FAIL_CLOSE", "deny"), ("FAIL_OPEN", "allow"), ("FAIL_RELOAD", "deny")])
def test_a_failed_fetch_becomes_an_rbac_filter_per_fail_strategy(server, cache, strategy, outcome):
    converted = convert(remote_resource(server.url("/missing.wasm"), failStrategy=strategy), cache)
    assert converted.outcome == outcome and "404" in converted.error
    config, rbac = extension_pb2.TypedExtensionConfig(), http_rbac_pb2.RBAC()
    assert converted.resource.Unpack(config) and config.typed_config.Unpack(rbac)
    assert config.name == "extensions.istio.io/trafficextension/shop.p~istio-translated-wasmplugin"
    assert rbac.HasField("rules") == (outcome == "deny")
    assert rbac.rules_stat_prefix == f"wasm-default-{outcome}"


def test_mixed_resources_are_converted_each_on_its_own(server, cache):
    server.routes["/m.wasm"] = [(200, MODULE)]
    outcomes = [convert(resource, cache).outcome for resource in
                (remote_resource(server.url("/missing.wasm")), remote_resource(server.url("/m.wasm")))]
    assert outcomes == ["deny", "local"]


def test_a_typed_struct_wasm_is_converted_like_a_typed_one(server, cache):
    server.routes["/m.wasm"] = [(200, MODULE)]
    typed = extension_config(make(url=server.url("/m.wasm")))
    struct = typed_struct_pb2.TypedStruct(type_url="type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm")
    json_format.ParseDict(json_format.MessageToDict(unpack_wasm(pack(typed))), struct.value)
    typed.typed_config.Pack(struct)
    assert convert(pack(typed), cache).outcome == "local"


def pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def test_a_local_file_or_another_filter_is_left_alone(cache):
    assert convert(pack(extension_config(make(url="file:///opt/m.wasm"))), cache).outcome == "unchanged"
    other = extension_pb2.TypedExtensionConfig(name="x", typed_config=pack(http_rbac_pb2.RBAC()))
    assert convert(pack(other), cache).outcome == "unchanged"


@pytest.mark.parametrize("resource", [
    pack(empty_pb2.Empty()),
    pack(extension_pb2.TypedExtensionConfig(name="nil-typed-config")),
    pack(extension_pb2.TypedExtensionConfig(name="empty", typed_config=pack(http_wasm_pb2.Wasm()))),
], ids=["wrong typed config", "nil typed config", "empty wasm in typed extension config"])
def test_malformed_resources_are_errors_left_as_they_came(resource, cache):
    converted = convert(resource, cache)
    assert converted.outcome == "error" and converted.resource is resource and converted.error


# --- oci:// against a real OCI registry: go-containerregistry's `crane registry serve`, images pushed by `crane` ---

@dataclass
class Registry:
    crane: str
    host: str

    def append(self, repository: str, layer: bytes, oci: bool) -> str:
        """Push a one-layer image with the real crane client; the image's digest as crane says it."""
        with tempfile.TemporaryDirectory(prefix="meshlab-oci-") as folder:
            path = Path(folder) / "layer.tar.gz"
            path.write_bytes(layer)
            argv = [self.crane, "append", "-f", str(path), "-t", f"{self.host}/{repository}"] + (["--oci-empty-base"] if oci else [])
            subprocess.run(argv, check=True, capture_output=True, timeout=60)
        digest = subprocess.run([self.crane, "digest", f"{self.host}/{repository}"], check=True, capture_output=True, text=True, timeout=60)
        return digest.stdout.strip().removeprefix("sha256:")

    def push_artifact(self, repository: str, tag: str, layers: list[tuple[str, bytes]]) -> str:
        """Push the Wasm image spec's OCI variant as Istio's own test builds it (a Wasm layer and a config
        layer), over the distribution API (POST then PUT each blob, PUT the manifest); the manifest's digest."""
        def blob(data: bytes) -> dict:
            digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
            start = urllib.request.urlopen(urllib.request.Request(f"http://{self.host}/v2/{repository}/blobs/uploads/", method="POST"))
            location = urllib.parse.urljoin(f"http://{self.host}", start.headers["Location"])
            separator = "&" if "?" in location else "?"
            urllib.request.urlopen(urllib.request.Request(f"{location}{separator}digest={digest}", data=data, method="PUT",
                                                          headers={"Content-Type": "application/octet-stream"}))
            return {"digest": digest, "size": len(data)}
        manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **blob(b"{}")},
                               "layers": [{"mediaType": media_type, **blob(data)} for media_type, data in layers]}).encode()
        urllib.request.urlopen(urllib.request.Request(f"http://{self.host}/v2/{repository}/manifests/{tag}", data=manifest, method="PUT",
                                                      headers={"Content-Type": OCI_MANIFEST}))
        return hashlib.sha256(manifest).hexdigest()


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    crane = program_path("crane")
    host = f"127.0.0.1:{closed_port()}"
    process = subprocess.Popen([crane, "registry", "serve", "--address", host], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):  # wait until it answers, at most 10 s
            try:
                urllib.request.urlopen(f"http://{host}/v2/", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail(f"crane registry serve did not answer on {host}")
        yield Registry(crane, host)
    finally:
        process.terminate()
        process.wait(timeout=10)


def plugin_layer(name: str = "plugin.wasm", data: bytes = MODULE) -> bytes:
    return tar_of(name, data, compress=True)


@pytest.mark.upstream
@pytest.mark.parametrize("oci, name", [(False, "plugin.wasm"), (True, "plugin.wasm"), (True, "./plugin.wasm")],
                         ids=["docker image", "OCI standard (compat variant)", "ok with relative path prefix"])
def test_an_image_with_plugin_wasm_in_its_layer_is_fetched(registry, oci, name):
    repository = f"acme/{'oci' if oci else 'docker'}-{len(name)}:v1"
    digest = registry.append(repository, plugin_layer(name), oci)
    assert fetch_oci(f"oci://{registry.host}/{repository}") == (digest, MODULE)


@pytest.mark.upstream
def test_the_oci_artifact_variant_is_read_from_its_wasm_layer(registry):
    digest = registry.push_artifact("acme/artifact", "v1", [(WASM_LAYER, MODULE), ("application/vnd.module.wasm.config.v1+json", b"{}")])
    assert fetch_oci(f"oci://{registry.host}/acme/artifact:v1") == (digest, MODULE)


@pytest.mark.upstream
def test_an_artifact_without_two_layers_is_refused(registry):
    registry.push_artifact("acme/one-layer", "v1", [(WASM_LAYER, MODULE)])
    with pytest.raises(FetchError, match="1 layers, not 2"):
        fetch_oci(f"oci://{registry.host}/acme/one-layer:v1")


@pytest.mark.upstream
def test_a_layer_without_plugin_wasm_is_refused(registry):
    registry.append("acme/no-plugin:v1", plugin_layer("filter.wasm"), oci=True)
    with pytest.raises(FetchError, match="plugin.wasm not found"):
        fetch_oci(f"oci://{registry.host}/acme/no-plugin:v1")


@pytest.mark.upstream
def test_a_missing_tag_names_the_url_and_the_status(registry):
    with pytest.raises(FetchError, match=r"acme/absent:v9.*404"):
        fetch_oci(f"oci://{registry.host}/acme/absent:v9")


@pytest.mark.upstream
def test_the_sha256_of_an_oci_plugin_is_the_images_digest(registry, cache):
    digest = registry.append("acme/checked:v1", plugin_layer(), oci=False)
    url = f"oci://{registry.host}/acme/checked:v1"
    assert convert(remote_resource(url.removeprefix("oci://"), sha256=digest), cache).outcome == "local"
    refused = convert(remote_resource(url, sha256=MODULE_SHA), cache)
    assert refused.outcome == "deny" and digest in refused.error and MODULE_SHA in refused.error


@pytest.mark.upstream
def test_a_digest_url_is_served_from_the_cache_and_a_tag_by_its_remembered_checksum(registry, cache):
    digest = registry.append("acme/cached:v1", plugin_layer(), oci=True)
    tagged = f"oci://{registry.host}/acme/cached:v1"
    path = cache.get(tagged, resource_name="r", resource_version="1")
    assert cache.get(f"oci://{registry.host}/acme/cached@sha256:{digest}") == path
    assert cache.get(tagged, resource_name="r", resource_version="2") == path
    assert cache.fetches == 1
