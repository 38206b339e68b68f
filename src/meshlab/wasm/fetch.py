"""pilot-agent's Wasm module fetching: istiod sends a Wasm filter whose code is a remote URL; the
agent downloads the module, checks it, keeps it in a local cache and hands Envoy a filename instead
(Istio 1.30 pkg/wasm: cache.go, httpfetcher.go, imagefetcher.go, convert.go).

    FetchError      a module could not be had: the url and the reason
    is_wasm         a Wasm binary's header: the magic bytes \\0asm and a version (cache.go isValidWasmBinary)
    fetch_http      GET with retries on connection errors and 5xx, unpacking gzip and tar (httpfetcher.go)
    OciImage        an oci:// reference, fetched over the OCI distribution API: manifest, then the layer
    fetch_oci       the image's digest and its Wasm module, in the three layouts Istio reads
    ModuleCache     the agent's cache keyed by module name and checksum; pull policy decides re-fetches
    Converted       one ECDS resource after conversion: local file, RBAC fallback, or left alone
    convert         a remote-code Wasm ECDS resource -> local-file one, or allow/deny RBAC per failure policy
"""

from __future__ import annotations

import gzip
import hashlib
import io
import ipaddress
import json
import os
import re
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from envoy.config.core.v3 import base_pb2, extension_pb2
from envoy.config.rbac.v3 import rbac_pb2
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2 as http_rbac_pb2
from envoy.extensions.filters.http.wasm.v3 import wasm_pb2 as http_wasm_pb2
from envoy.extensions.wasm.v3 import wasm_pb2
from google.protobuf import any_pb2, json_format
from google.protobuf.message import DecodeError
from udpa.type.v1 import typed_struct_pb2

WASM_MAGIC = b"\0asm"
#: Istio's HTTP fetcher defaults (pkg/wasm/options.go, httpfetcher.go): 5 attempts, backoff from 500 ms.
HTTP_MAX_ATTEMPTS = 5
HTTP_INITIAL_BACKOFF = 0.5
#: The timeout the agent uses when the http_uri has none (convert.go rewriteVMConfig).
DEFAULT_TIMEOUT = 5.0
#: ISTIO_WASM_MAX_BINARY_SIZE_BYTES default, 256 MiB (pilot/pkg/features/pilot.go).
MAX_BINARY_SIZE = 256 * 1024 * 1024
#: Layer media types (go-containerregistry pkg/v1/types; the Wasm OCI artifact spec's layer type).
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
WASM_LAYER = "application/vnd.module.wasm.content.layer.v1+wasm"
#: The file Istio looks for in an image's tar layer (imagefetcher.go extractWasmPluginBinary).
PLUGIN_FILE = "plugin.wasm"
#: Stat prefixes of the RBAC filters that stand in for a module that could not be fetched (convert.go).
DEFAULT_ALLOW_STAT_PREFIX = "wasm-default-allow"
DEFAULT_DENY_STAT_PREFIX = "wasm-default-deny"
WASM_HTTP_FILTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
TYPED_STRUCT_TYPE = "type.googleapis.com/udpa.type.v1.TypedStruct"
#: Env vars istiod puts in the VM config for the agent (pkg/model/wasm.go); all ISTIO_META_* are stripped.
WASM_SECRET_ENV = "ISTIO_META_WASM_IMAGE_PULL_SECRET"
WASM_POLICY_ENV = "ISTIO_META_WASM_IMAGE_PULL_POLICY"
WASM_RESOURCE_VERSION_ENV = "ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION"


class FetchError(RuntimeError):
    """A module could not be fetched or is not usable; the message names the url and why."""


def is_wasm(data: bytes) -> bool:
    """Istio checks only the header: 8 bytes, the first four ``\\0asm`` (cache.go isValidWasmBinary)."""
    return len(data) >= 8 and data[:4] == WASM_MAGIC


def _unbox(data: bytes) -> bytes:
    """A module served gzipped or in a tar comes out of it: gzip, then the first file of a POSIX tar,
    until it is Wasm; anything else is returned as it came (httpfetcher.go unboxIfPossible)."""
    current = data
    while not is_wasm(current):
        if current[:2] == b"\x1f\x8b":
            try:
                current = gzip.decompress(current)
            except (OSError, EOFError):
                return data
        elif len(current) > 262 and current[257:262] == b"ustar":
            try:
                with tarfile.open(fileobj=io.BytesIO(current)) as archive:
                    first = archive.next()
                    extracted = archive.extractfile(first) if first else None
                    if extracted is None:
                        return data
                    current = extracted.read()
            except tarfile.TarError:
                return data
        else:
            return data
    return current


def _retryable(status: int) -> bool:
    """5xx except 501, 505 and 511 (httpfetcher.go retryable)."""
    return status >= 500 and status not in (501, 505, 511)


def fetch_http(url: str, timeout: float = DEFAULT_TIMEOUT, attempts: int = HTTP_MAX_ATTEMPTS,
               initial_backoff: float = HTTP_INITIAL_BACKOFF) -> bytes:
    """The module at an http(s) url, as Istio's HTTPFetcher gets it: up to ``attempts`` GETs, retrying
    connection errors and retryable 5xx with exponential backoff; a 4xx ends at once. The whole fetch
    is bounded by ``timeout`` (the agent's context deadline)."""
    deadline = time.monotonic() + timeout
    backoff, last, tried = initial_backoff, "", 0
    while tried < attempts:
        tried += 1
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="GET"), timeout=left) as response:
                return _unbox(response.read(MAX_BINARY_SIZE))
        except urllib.error.HTTPError as error:
            last = f"status code {error.code}"
            if not _retryable(error.code):
                break
        except (urllib.error.URLError, OSError) as error:
            last = str(getattr(error, "reason", error))
        time.sleep(min(backoff, max(0.0, deadline - time.monotonic())))
        backoff *= 1.5
    raise FetchError(f"wasm module download from {url} failed after {tried} attempts, last error: {last}")


@dataclass(frozen=True)
class OciImage:
    """``registry/repository`` with a tag or ``@sha256:`` digest (latest when neither), as
    go-containerregistry's name.ParseReference reads an ``oci://`` url without its scheme."""
    registry: str
    repository: str
    reference: str

    @classmethod
    def parse(cls, url: str) -> OciImage:
        ref = url.removeprefix("oci://")
        match = re.fullmatch(r"([^/]+)/([a-z0-9._/-]+?)(?::([\w][\w.-]{0,127}))?(?:@(sha256:[a-f0-9]{64}))?", ref)
        if not match or ("." not in match.group(1) and ":" not in match.group(1) and match.group(1) != "localhost"):
            raise FetchError(f"could not parse url in image reference: {url!r} (expected oci://registry[:port]/repository[:tag][@sha256:digest])")
        registry, repository, tag, digest = match.groups()
        return cls(registry, repository, digest or tag or "latest")

    @property
    def name(self) -> str:
        """The image's name without tag or digest: Istio's cache names a module by it (cache.go moduleNameFromURL)."""
        return f"oci://{self.registry}/{self.repository}"

    @property
    def scheme(self) -> str:
        """http for localhost and loopback registries, as go-containerregistry's Registry.Scheme; https
        otherwise (Istio then retries over http when the server answers https in plain http, for a registry
        in WASM_INSECURE_REGISTRIES; meshlab does not, its registries being on loopback)."""
        host = self.registry.rsplit(":", 1)[0].strip("[]")
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost" or host.endswith(".localhost")
        return "http" if loopback else "https"

    def get(self, path: str, accept: str, timeout: float) -> tuple[bytes, str]:
        """GET ``/v2/<repository>/<path>`` of the registry: the body and its content type."""
        url = f"{self.scheme}://{self.registry}/v2/{self.repository}/{path}"
        request = urllib.request.Request(url, headers={"Accept": accept})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.read(MAX_BINARY_SIZE), response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            raise FetchError(f"{self.name}:{self.reference}: GET {url}: status code {error.code}") from None
        except (urllib.error.URLError, OSError) as error:
            raise FetchError(f"{self.name}:{self.reference}: GET {url}: {getattr(error, 'reason', error)}") from None


def fetch_oci(url: str, timeout: float = DEFAULT_TIMEOUT) -> tuple[str, bytes]:
    """(the image's digest, its Wasm module). The digest is the sha256 of the manifest, the image's
    own digest, which is what a WasmPlugin's sha256 is checked against for oci:// (cache.go uses
    PrepareFetch's img.Digest()). The module is read as imagefetcher.go reads it: a Docker image's last
    layer (a gzipped tar holding plugin.wasm); an OCI image's last layer of the standard tar+gzip type
    ("compat" variant), else exactly two layers, one of the Wasm layer type, taken as it is ("oci" variant)."""
    image = OciImage.parse(url)
    accept = f"{DOCKER_MANIFEST}, {OCI_MANIFEST}"
    raw, content_type = image.get(f"manifests/{image.reference}", accept, timeout)
    digest = hashlib.sha256(raw).hexdigest()
    try:
        manifest = json.loads(raw)
    except ValueError:
        raise FetchError(f"{url}: the manifest is not JSON") from None
    media_type = manifest.get("mediaType") or content_type.split(";")[0]
    if "manifests" in manifest:
        raise FetchError(f"{url}: is an image index ({media_type}); Istio resolves it to the proxy's platform "
                         "image, meshlab needs a single-image reference")
    layers = manifest.get("layers") or []
    if not layers:
        raise FetchError(f"{url}: the image has no layers (number of layers must be greater than zero)")

    def blob(layer: dict) -> bytes:
        data, _ = image.get(f"blobs/{layer['digest']}", "*/*", timeout)
        if f"sha256:{hashlib.sha256(data).hexdigest()}" != layer["digest"]:
            raise FetchError(f"{url}: layer {layer['digest']} does not match its digest")
        return data

    last = layers[-1]
    if media_type == DOCKER_MANIFEST:
        if last.get("mediaType") != DOCKER_LAYER:
            raise FetchError(f"{url}: invalid media type {last.get('mediaType')} (expect {DOCKER_LAYER})")
        return digest, _plugin_from_layer(url, blob(last))
    if last.get("mediaType") == OCI_LAYER:
        return digest, _plugin_from_layer(url, blob(last))
    if len(layers) != 2:
        raise FetchError(f"{url}: the image is in invalid format: its last layer is {last.get('mediaType')}, not {OCI_LAYER} "
                         f"(compat variant), and it has {len(layers)} layers, not 2 (oci variant)")
    wasm_layers = [layer for layer in layers if layer.get("mediaType") == WASM_LAYER]
    if not wasm_layers:
        raise FetchError(f"{url}: the image is in invalid format: no layer of type {WASM_LAYER}")
    return digest, blob(wasm_layers[0])


def _plugin_from_layer(url: str, layer: bytes) -> bytes:
    try:
        with tarfile.open(fileobj=io.BytesIO(layer), mode="r:gz") as archive:
            for member in archive:
                if os.path.basename(member.name) == PLUGIN_FILE and member.isfile():
                    extracted = archive.extractfile(member)
                    if extracted is not None:
                        return extracted.read()
    except (tarfile.TarError, OSError, EOFError) as error:
        raise FetchError(f"{url}: failed to parse layer as tar.gz: {error}") from None
    raise FetchError(f"{url}: {PLUGIN_FILE} not found in the layer")


def _default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "meshlab" / "wasm"


@dataclass
class ModuleCache:
    """The agent's module cache. A module file is ``<dir>/<sha256 of its name>/<checksum>.wasm`` (the name
    is the url, an OCI image's without tag or digest: cache.go getModulePath). For a url fetched without a
    checksum, the cache remembers the checksum last fetched and the WasmPlugin's resourceVersion: with
    pull policy IfNotPresent the cached module serves; with Always a new resourceVersion fetches again
    (cache.go getEntry, shouldIgnoreResourceVersion). ``fetches`` counts downloads, for a reader to watch."""
    dir: Path = field(default_factory=_default_cache_dir)
    http_attempts: int = HTTP_MAX_ATTEMPTS
    http_initial_backoff: float = HTTP_INITIAL_BACKOFF
    modules: dict[tuple[str, str], Path] = field(default_factory=dict)
    #: url -> (checksum last fetched, resourceVersion by resource name)
    checksums: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    fetches: int = 0

    def get(self, url: str, checksum: str = "", resource_name: str = "", resource_version: str = "",
            pull_policy: str = "", timeout: float = DEFAULT_TIMEOUT) -> Path:
        """The local file of the module at ``url`` (fetched if the cache cannot answer). ``pull_policy`` is
        IfNotPresent, Always, or "" (unspecified: Always only for an oci:// url ending in ``:latest``).
        ``file://`` is read here for meshlab's own use; Istio's agent never gets one, since istiod turns a
        file url into a local source itself (pilot/pkg/model/extensions.go buildDataSource)."""
        scheme = url.split("://", 1)[0] if "://" in url else ""
        if pull_policy not in ("", "IfNotPresent", "Always", "UNSPECIFIED_POLICY"):
            raise ValueError(f"pull policy {pull_policy!r}: accepted IfNotPresent, Always, or empty")
        if pull_policy in ("", "UNSPECIFIED_POLICY"):
            ignore_version = scheme != "oci" or not url.endswith(":latest")
        else:
            ignore_version = pull_policy == "IfNotPresent"
        name = OciImage.parse(url).name if scheme == "oci" else url
        hit, checksum = self._entry(url, name, checksum, resource_name, resource_version, ignore_version)
        if hit is not None:
            return hit
        if scheme in ("http", "https"):
            module = fetch_http(url, timeout, self.http_attempts, self.http_initial_backoff)
            actual = hashlib.sha256(module).hexdigest()
        elif scheme == "oci":
            actual, module = fetch_oci(url, timeout)
        elif scheme == "file":
            try:
                module = Path(url[len("file://"):]).read_bytes()
            except OSError as error:
                raise FetchError(f"cannot read Wasm module {url}: {error.strerror}") from None
            actual = hashlib.sha256(module).hexdigest()
        else:
            raise FetchError(f"unsupported Wasm module downloading URL scheme {scheme!r} in {url} (accepted: http, https, oci, file)")
        self.fetches += 1
        if checksum and actual != checksum:
            raise FetchError(f"module downloaded from {url} has checksum {actual}, which does not match the expected {checksum}")
        if not is_wasm(module):
            raise FetchError(f"fetched Wasm binary from {url} is invalid: it does not start with the magic bytes \\0asm")
        return self._add(url, name, actual, module, resource_name, resource_version)

    def _entry(self, url: str, name: str, checksum: str, resource_name: str, resource_version: str,
               ignore_version: bool) -> tuple[Path | None, str]:
        if not checksum and url.startswith("oci://") and "@sha256:" in url:
            checksum = url.rsplit("@sha256:", 1)[1]
        if not checksum and url in self.checksums:
            known, versions = self.checksums[url]
            if ignore_version or versions.get(resource_name) == resource_version:
                checksum = known
            versions[resource_name] = resource_version
        path = self.modules.get((name, checksum))
        if path is not None and path.exists():
            self._remember(url, checksum, resource_name, resource_version)
            return path, checksum
        return None, checksum

    def _remember(self, url: str, checksum: str, resource_name: str, resource_version: str) -> None:
        """A tagged OCI url or an http one may change content: remember the checksum it had (cache.go updateChecksum)."""
        if not url.startswith("oci://") or "@" not in url:
            _, versions = self.checksums.get(url, ("", {}))
            versions[resource_name] = resource_version
            self.checksums[url] = (checksum, versions)

    def _add(self, url: str, name: str, checksum: str, module: bytes, resource_name: str, resource_version: str) -> Path:
        self._remember(url, checksum, resource_name, resource_version)
        folder = self.dir / hashlib.sha256(name.encode()).hexdigest()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{checksum}.wasm"
        path.write_bytes(module)
        self.modules[(name, checksum)] = path
        return path


@dataclass(frozen=True)
class Converted:
    """One ECDS resource after the agent's conversion. ``outcome`` is "local" (the code is now a file),
    "allow" or "deny" (the fetch failed and an RBAC filter of that name stands in), "unchanged" (not a
    remote Wasm filter), or "error" (malformed: the resource is left as it came and Envoy will NACK it)."""
    resource: any_pb2.Any
    outcome: str
    error: str = ""


def _http_wasm(config: extension_pb2.TypedExtensionConfig) -> http_wasm_pb2.Wasm | None:
    """The Wasm HTTP filter inside an extension config, directly or in a TypedStruct; None for other filters."""
    typed = config.typed_config
    wasm = http_wasm_pb2.Wasm()
    if typed.type_url == WASM_HTTP_FILTER_TYPE:
        typed.Unpack(wasm)
    elif typed.type_url == TYPED_STRUCT_TYPE:
        struct = typed_struct_pb2.TypedStruct()
        typed.Unpack(struct)
        if struct.type_url != WASM_HTTP_FILTER_TYPE:
            return None
        json_format.ParseDict(json_format.MessageToDict(struct.value), wasm)
    else:
        return None
    return wasm


def _rbac_fallback(name: str, allow: bool) -> any_pb2.Any:
    """An RBAC filter under the plugin's name: no rules allows every request; empty rules deny every one."""
    rbac = (http_rbac_pb2.RBAC(rules_stat_prefix=DEFAULT_ALLOW_STAT_PREFIX) if allow
            else http_rbac_pb2.RBAC(rules=rbac_pb2.RBAC(), rules_stat_prefix=DEFAULT_DENY_STAT_PREFIX))
    typed, packed = any_pb2.Any(), any_pb2.Any()
    typed.Pack(rbac)
    packed.Pack(extension_pb2.TypedExtensionConfig(name=name, typed_config=typed))
    return packed


def convert(resource: any_pb2.Any, cache: ModuleCache) -> Converted:
    """What pilot-agent does to one ECDS resource before Envoy sees it (convert.go
    MaybeConvertWasmExtensionConfig): a Wasm HTTP filter with remote code has the module fetched and
    the code rewritten to the cached file, with the agent's ISTIO_META_* env vars removed; if the fetch
    fails, an RBAC filter replaces it: allow for failure policy FAIL_OPEN (or the legacy fail_open),
    deny otherwise, FAIL_RELOAD included."""
    config = extension_pb2.TypedExtensionConfig()
    try:
        if not resource.Unpack(config):
            raise DecodeError(f"a {resource.type_url}, not an envoy.config.core.v3.TypedExtensionConfig")
        if not config.HasField("typed_config"):
            raise DecodeError(f"typed extension config {config.name!r} has no typed config")
        wasm = _http_wasm(config)
    except (DecodeError, json_format.ParseError) as error:
        return Converted(resource, "error", f"failed to unmarshal extension config resource: {error}")
    if wasm is None:
        return Converted(resource, "unchanged")
    vm = wasm.config.vm_config
    if not vm.code.HasField("remote"):
        if vm.code.HasField("local"):
            return Converted(resource, "unchanged")
        return Converted(resource, "error", f"no remote and local load found in Wasm HTTP filter {config.name!r}")
    try:
        path = _fetch_for(vm, config.name, wasm.config.name, cache)
    except FetchError as error:
        policy = wasm.config.failure_policy
        allow = policy == wasm_pb2.FAIL_OPEN if policy != wasm_pb2.UNSPECIFIED else wasm.config.fail_open
        return Converted(_rbac_fallback(config.name, allow), "allow" if allow else "deny", str(error))
    vm.code.CopyFrom(base_pb2.AsyncDataSource(local=base_pb2.DataSource(filename=str(path))))
    config.typed_config.Pack(wasm)
    converted = any_pb2.Any()
    converted.Pack(config)
    return Converted(converted, "local")


def _fetch_for(vm: wasm_pb2.VmConfig, resource_name: str, plugin_name: str, cache: ModuleCache) -> Path:
    env = vm.environment_variables.key_values
    if WASM_SECRET_ENV in env and not env[WASM_SECRET_ENV]:
        raise FetchError(f"cannot fetch Wasm module {plugin_name}: missing image pulling secret")
    pull_policy = env.get(WASM_POLICY_ENV, "")
    resource_version = env.get(WASM_RESOURCE_VERSION_ENV, "")
    for key in [key for key in env if key.startswith("ISTIO_META_")]:
        del env[key]
    if not env and not vm.environment_variables.host_env_keys:
        vm.ClearField("environment_variables")
    remote = vm.code.remote
    if not remote.HasField("http_uri"):
        raise FetchError(f"wasm remote fetch for {plugin_name} does not have httpUri specified")
    timeout = remote.http_uri.timeout.ToTimedelta().total_seconds() if remote.http_uri.HasField("timeout") else DEFAULT_TIMEOUT
    checksum = "" if remote.sha256 == "nil" else remote.sha256
    try:
        return cache.get(remote.http_uri.uri, checksum, resource_name, resource_version,
                         pull_policy if pull_policy in ("IfNotPresent", "Always") else "", timeout)
    except FetchError as error:
        raise FetchError(f"cannot fetch Wasm module {remote.http_uri.uri}: {error}") from None
