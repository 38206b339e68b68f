"""``meshlab gateway translate|match|serve``: what each prints, its exit codes, and bad input named
by resource and field (exit 2). ``serve`` runs as a real process in front of a real HTTP server."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from importlib import resources

import httpx
import pytest

from meshlab.cli import main

SHOP = resources.files("meshlab") / "data" / "gateway" / "shop.yaml"


@pytest.fixture
def shop(tmp_path):
    path = tmp_path / "shop.yaml"
    path.write_text(SHOP.read_text())
    return path


def test_translate_prints_routes_in_envoys_order_and_each_resources_status(shop, capsys):
    assert main(["gateway", "translate", "-f", str(shop)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "route configuration default/eg/http" in lines
    # Envoy's order, the Gateway API's precedence: the exact path, the canary's header match, the /api prefix, the catch-all
    assert [line.strip() for line in lines if "->" in line] == [
        'path /old-cart -> redirect {"pathRedirect":"/cart"}',
        "pathSeparatedPrefix /api x-canary=true -> default/api-canary:3000 weight 1",
        "pathSeparatedPrefix /api -> default/api:3000 weight 75, default/api-v2:3000 weight 25",
        "prefix / -> default/web:8080 weight 1"]
    assert any(line.startswith("  HTTPRoute default/shop parent default/eg") and "Accepted=True (Accepted)" in line and "ResolvedRefs=True (ResolvedRefs)" in line
               for line in lines)


def test_translate_json_is_envoys_protojson_and_the_statuses(shop, capsys):
    assert main(["gateway", "translate", "-f", str(shop), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == {"listeners", "route_configs", "clusters", "endpoints", "statuses"}
    assert printed["route_configs"][0]["virtualHosts"][0]["domains"] == ["shop.example.com"]
    assert {s["kind"] for s in printed["statuses"]} >= {"GatewayClass", "Gateway", "HTTPRoute"}


@pytest.mark.parametrize("arguments, expected", [
    (["--path", "/api/cart"], "default/api:3000 75/100, default/api-v2:3000 25/100"),
    (["--path", "/api/cart", "--header", "x-canary=true"], "default/api-canary:3000"),
    (["--path", "/old-cart"], "redirect 301 to http://shop.example.com/cart"),
    (["--path", "/apix"], "default/web:8080"),
])
def test_match_prints_the_backends_with_weights(shop, capsys, arguments, expected):
    assert main(["gateway", "match", "-f", str(shop), "--host", "shop.example.com", *arguments]) == 0
    assert expected in capsys.readouterr().out


def test_match_without_a_route_says_why_and_exits_1(shop, capsys):
    assert main(["gateway", "match", "-f", str(shop), "--host", "other.org", "--path", "/"]) == 1
    assert capsys.readouterr().out.strip() == "no route: no virtual host for host other.org"


def test_match_json_gives_backends_and_route(shop, capsys):
    assert main(["gateway", "match", "-f", str(shop), "--host", "shop.example.com", "--path", "/api", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["route"] == "default/shop/rule/1"
    assert [(b["name"], b["weight"]) for b in printed["backends"]] == [("api", 75), ("api-v2", 25)]


@pytest.mark.parametrize("text, message", [
    ("kind: HTTPRoute\napiVersion: gateway.networking.k8s.io/v1\nmetadata: {name: r, namespace: default}\nspec: {hostnamez: [a.b]}\n",
     "HTTPRoute default/r: spec.hostnamez"),
    ("kind: HTTPRoute\napiVersion: gateway.networking.k8s.io/v1\nmetadata: {name: r}\nspec:\n  rules:\n  - matches: [{path: {type: Prefix, value: /}}]\n",
     "spec.rules[0].matches[0].path.type"),
    ("a: [unclosed\n", "YAML"),
])
def test_bad_input_exits_2_naming_the_resource_and_the_field(tmp_path, capsys, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert main(["gateway", "translate", "-f", str(path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"meshlab gateway: error: {path}:") and message in error


def test_a_missing_file_and_a_bad_port_are_usage_errors(tmp_path, shop, capsys):
    assert main(["gateway", "translate", "-f", str(tmp_path / "none.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["gateway", "match", "-f", str(shop), "--host", "shop.example.com", "--path", "/", "--port", "8443"]) == 2
    assert "no Gateway listener on port 8443; the file's listeners use 80" in capsys.readouterr().err


def test_a_bad_backend_or_health_setting_is_refused(shop, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["gateway", "serve", "-f", str(shop), "--listen", "127.0.0.1:0", "--backend", "web"])
    assert exited.value.code == 2 and "is not NAME=HOST:PORT" in capsys.readouterr().err
    assert main(["gateway", "serve", "-f", str(shop), "--listen", "127.0.0.1:0", "--outlier-detection", '{"consecutive5xx": -1}']) == 2
    assert "consecutive5xx must be a whole number" in capsys.readouterr().err


def test_serve_proxies_to_the_backends_given_and_logs_each_request(shop, tmp_path):
    web = subprocess.Popen([sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", str(tmp_path)],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    port = int(web.stdout.readline().split(" port ")[1].split()[0])
    (tmp_path / "index.html").write_text("served by http.server")
    gateway = subprocess.Popen([sys.executable, "-m", "meshlab.cli", "gateway", "serve", "-f", str(shop), "--listen", "127.0.0.1:0",
                                "--backend", f"web=127.0.0.1:{port}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = gateway.stderr.readline()
        assert line.startswith("meshlab gateway: listening on 127.0.0.1:"), line
        listening = int(line.split("127.0.0.1:")[1].split(";")[0])
        answer = httpx.get(f"http://127.0.0.1:{listening}/index.html", headers={"host": "shop.example.com"})
        assert (answer.status_code, answer.text) == (200, "served by http.server")
        assert httpx.get(f"http://127.0.0.1:{listening}/api", headers={"host": "shop.example.com"}).status_code == 503, "api has no endpoints"
    finally:
        gateway.send_signal(signal.SIGTERM)
        # read through the same file objects readline() used: communicate() reads the pipes beneath them
        # and would miss the lines readline() had already buffered (the warnings after "listening on")
        err, out = gateway.stderr.read(), gateway.stdout.read()
        gateway.wait(timeout=10)
        web.terminate()
        web.communicate(timeout=10)
    assert gateway.returncode == 0 and "meshlab gateway: stopped" in err
    assert "no endpoints for default/api:3000 (add --backend default/api=HOST:PORT)" in err
    records = [json.loads(line) for line in out.splitlines()]
    assert [(r["path"], r["status"], r["backend"]) for r in records if r["event"] == "request"] == [
        ("/index.html", 200, "default/web:8080"), ("/api", 503, None)]


def test_two_gateways_on_one_port_are_a_usage_error_not_a_traceback(tmp_path, capsys):
    gateways = "".join(f"---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: {name}}}\n"
                       f"spec: {{gatewayClassName: eg, listeners: [{{name: h, protocol: HTTP, port: 80}}]}}\n" for name in ("a", "b"))
    path = tmp_path / "two.yaml"
    path.write_text("apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: eg}\nspec: {controllerName: x.io/y}\n" + gateways)
    assert main(["gateway", "match", "-f", str(path), "--host", "x", "--path", "/"]) == 2
    assert "several Gateways listen on port 80 (Gateway default/a, Gateway default/b)" in capsys.readouterr().err
