"""The Dapr model: its API paths and numbers read against daprd v1.14.0's own source (the upstream
stage's module), the overlap table's shape, and the four roads from app to app. That the roads are
the ones the kernel sees is tests/live/test_lab_dapr.py's job."""

from __future__ import annotations

import re

import pytest

from meshlab import dapr
from meshlab.dapr import BUILDING_BLOCKS, CONCERNS, DaprUsageError, api_path, overlap_table, proxies, request_path


@pytest.fixture(scope="module")
def dapr_source():
    from meshlab.upstream import source
    from meshlab.upstream.versions import DAPR

    return source.source(DAPR)


def registered_routes(folder) -> set[str]:
    """Every ``Route:`` daprd's HTTP API registers, placeholders written ``{}``."""
    routes = set()
    for path in (folder / "pkg" / "api" / "http").glob("*.go"):
        if not path.name.endswith("_test.go"):
            routes |= {re.sub(r"{\w+}|\*$", "{}", route) for route in re.findall(r'Route:\s+"([^"]+)"', path.read_text())}
    return routes


@pytest.mark.upstream
def test_every_route_of_the_model_is_one_daprd_registers(dapr_source):
    registered = registered_routes(dapr_source)
    assert "invoke/{}" in registered, "invocation is daprd's catch-all route invoke/*, parsed as <app-id>/method/<method>"
    ours = {re.sub(r"{\w+}", "{}", route) for block in BUILDING_BLOCKS.values() for _, route in block.routes if block.name != "invoke"}
    assert ours <= registered, f"not registered by daprd v1.14.0: {sorted(ours - registered)}"
    assert re.search(r'apiVersionV1\s+=\s+"v1\.0"', (dapr_source / "pkg/api/http/http.go").read_text())


@pytest.mark.upstream
def test_the_ports_and_headers_are_daprds(dapr_source):
    config = (dapr_source / "pkg/runtime/config.go").read_text()
    numbers = dict(re.findall(r"(Default\w+Port) = (\d+)", config))
    assert (int(numbers["DefaultDaprHTTPPort"]), int(numbers["DefaultDaprAPIGRPCPort"]), int(numbers["DefaultMetricsPort"])) == (
        dapr.DAPR_HTTP_PORT, dapr.DAPR_GRPC_PORT, dapr.DAPR_METRICS_PORT)
    handler = (dapr_source / "pkg/operator/handlers/dapr_handler.go").read_text()
    assert re.search(rf"daprSidecarInternalGRPCPort\s+= {dapr.DAPR_INTERNAL_GRPC_PORT}\b", handler)
    assert "ClusterIP: clusterIPNone" in handler, "the <app-id>-dapr Service is headless, as the naming concern says"
    assert f'daprAppID                = "{dapr.APP_ID_HEADER}"' in (dapr_source / "pkg/api/http/http.go").read_text()
    assert f'CallerIDHeader = DaprHeaderPrefix + "{dapr.CALLER_ID_HEADER.removeprefix("dapr-")}"' in (dapr_source / "pkg/messaging/v1/util.go").read_text()


@pytest.mark.upstream
def test_the_retry_numbers_are_daprds_and_istios(dapr_source):
    from meshlab.upstream import source
    from meshlab.upstream.versions import ISTIO

    builtin = (dapr_source / "pkg/resiliency/resiliency.go").read_text()
    service = builtin[builtin.index("BuiltInServiceRetries)]; !ok"):][:400]
    assert "MaxRetries: 3" in service and "Duration:   time.Second" in service and "retry.PolicyConstant" in service
    istio = source.cached_source(ISTIO)
    assert istio is not None, f"{ISTIO.spec} is not in Go's module cache: make upstream"
    retry = (istio / "pilot/pkg/networking/core/route/retry/retry.go").read_text()
    assert "defaultNumRetries = &wrappers.UInt32Value{Value: 2}" in retry
    assert 'defaultRetryOn    = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"' in retry
    retries = next(c for c in CONCERNS if c.name == "retries")
    assert "2 retries on connect-failure, refused-stream, unavailable" in retries.mesh and "3 retries 1 s apart" in retries.dapr


def test_api_paths_fill_the_route_and_name_what_is_wrong():
    assert api_path("invoke", app_id="orders", method="new") == "/v1.0/invoke/orders/method/new"
    assert api_path("state", store="statestore") == "/v1.0/state/statestore"
    assert api_path("publish", pubsub="pubsub", topic="orders") == "/v1.0/publish/pubsub/orders"
    assert api_path("actors", actor_type="cart", actor_id="7", method="add") == "/v1.0/actors/cart/7/method/add"
    with pytest.raises(DaprUsageError, match="no building block 'queue'; there are invoke, state, publish, bindings, actors"):
        api_path("queue")
    with pytest.raises(DaprUsageError, match="needs app_id, method; missing method"):
        api_path("invoke", app_id="orders")
    with pytest.raises(DaprUsageError, match="takes store, not key"):
        api_path("state", store="s", key="k")
    with pytest.raises(DaprUsageError, match="holds a '/'"):
        api_path("bindings", name="a/b")
    with pytest.raises(DaprUsageError, match="app_id='a/b' holds a '/'"):
        api_path("invoke", app_id="a/b", method="new")
    assert api_path("publish", pubsub="pubsub", topic="orders/eu") == "/v1.0/publish/pubsub/orders/eu", "a topic may hold '/'"


def test_the_overlap_table_fits_100_columns_and_says_what_to_switch_off():
    table = overlap_table()
    assert max(map(len, table.splitlines())) <= 100
    rows = [line.split()[0] for line in table.splitlines()[1:] if line[:1] != " "]
    assert rows == ["mTLS", "retries", "tracing", "metrics", "naming", "routing", "access", "building", "capture"]
    assert "spec.mtls.enabled: false" in table and 'spec.tracing.samplingRate: "0"' in table
    assert {c.name: c.owner for c in CONCERNS if c.owner == "one"} == {"mTLS": "one", "retries": "one", "tracing": "one", "access policy": "one"}
    with pytest.raises(DaprUsageError, match="at least 80 columns"):
        overlap_table(60)
    with pytest.raises(DaprUsageError, match="owner 'istio' is not one of mesh, dapr, both, one"):
        dapr.Concern("x", "istio", "", "", "", "")


@pytest.mark.parametrize("path, crossed", [
    ("direct", []),
    ("mesh", ["checkout sidecar", "orders sidecar"]),
    ("dapr", ["checkout daprd", "orders daprd"]),
    ("dapr+mesh", ["checkout daprd", "checkout sidecar", "orders sidecar", "orders daprd"]),
])
def test_each_road_crosses_its_proxies_and_the_network_once(path, crossed):
    hops = request_path(path)
    assert proxies(hops) == crossed
    assert sum(hop.network for hop in hops) == 1
    assert (hops[0].source, hops[-1].target) == ("checkout app", "orders app")
    assert all(a.target == b.source for a, b in zip(hops, hops[1:])), "each leg starts where the last ended"


def test_in_a_mesh_daprds_own_connection_is_captured_unless_its_port_is_excluded():
    captured = [hop for hop in request_path("dapr+mesh") if hop.captured]
    assert [(hop.source, hop.port) for hop in captured] == [("checkout daprd", 15001), ("checkout sidecar", 15006)]
    assert not request_path("dapr+mesh")[0].captured, "the app's call to its daprd on 127.0.0.1 is never captured"
    assert request_path("dapr+mesh", dapr_port_excluded=True) == request_path("dapr")
    with pytest.raises(DaprUsageError, match="dapr_port_excluded is about Dapr in a mesh"):
        request_path("mesh", dapr_port_excluded=True)
    with pytest.raises(DaprUsageError, match="no path 'ambient'; paths are direct, mesh, dapr, dapr\\+mesh"):
        request_path("ambient")


def test_the_path_table_prints_the_four_roads():
    table = dapr.path_table()
    assert max(map(len, table.splitlines())) <= 100
    assert [line.split()[0] for line in table.splitlines() if line[:1] != " "] == list(dapr.PATHS)
    assert "checkout daprd -> orders daprd:50002 gRPC (network)" in table
