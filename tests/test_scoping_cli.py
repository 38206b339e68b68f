"""``meshlab sidecar validate|scope`` and ``meshlab lazyload simulate``: results on stdout, Istio's messages,
exit 2 with a one-line reason for what cannot be done."""

from __future__ import annotations

import json

import pytest

from meshlab import cli
from meshlab.cli import sidecar as sidecar_cli

BOOKINFO = {"services": [{"hostname": "reviews.shop.svc.cluster.local", "namespace": "shop", "ports": [{"number": 9080, "protocol": "HTTP", "name": "http"}],
                          "endpoints": 3},
                         {"hostname": "ratings.shop.svc.cluster.local", "namespace": "shop", "ports": [{"number": 9080, "protocol": "HTTP", "name": "http"}]},
                         {"hostname": "cart.store.svc.cluster.local", "namespace": "store"}],
            "workloads": [{"namespace": "shop", "name": "reviews-v1", "labels": {"app": "reviews", "version": "v1"}},
                          {"namespace": "store", "name": "cart-1", "labels": {"app": "cart"}}]}
REVIEWS_SIDECAR = """apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: reviews, namespace: shop}
spec:
  workloadSelector: {labels: {app: reviews}}
  egress:
  - hosts: [./ratings.shop.svc.cluster.local]
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
"""


@pytest.fixture
def meshlab(monkeypatch, capsys):
    """Run the command in process, with this module's commands registered (once cli/__init__ lists them, as is)."""
    if sidecar_cli not in cli.DOMAINS:
        monkeypatch.setattr(cli, "DOMAINS", cli.DOMAINS + (sidecar_cli,))

    def run(*args: str):
        try:
            code = cli.main(list(args))
        except SystemExit as exit_:  # argparse's own usage errors
            code = exit_.code
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def files(tmp_path):
    (tmp_path / "services.json").write_text(json.dumps(BOOKINFO))
    (tmp_path / "reviews.yaml").write_text(REVIEWS_SIDECAR)
    (tmp_path / "bad.yaml").write_text(REVIEWS_SIDECAR.replace("./ratings.shop.svc.cluster.local", "ratings.shop.svc.cluster.local"))
    return tmp_path


def test_validate_accepts_a_good_sidecar_and_refuses_a_bad_one_with_istios_message(meshlab, files):
    assert meshlab("sidecar", "validate", str(files / "reviews.yaml")) == (0, "no validation issues in 1 Sidecar(s)\n", "")
    code, out, _ = meshlab("sidecar", "validate", str(files / "bad.yaml"))
    assert code == 2 and out == "Error [IST0106] (Sidecar shop/reviews) Schema validation error: host must be of form namespace/dnsName\n"
    code, out, _ = meshlab("sidecar", "validate", "--json", str(files / "bad.yaml"))
    assert code == 2 and json.loads(out)[0]["code"] == "IST0106"


def test_scope_shows_what_the_proxy_is_sent(meshlab, files):
    code, out, err = meshlab("sidecar", "scope", "--services", str(files / "services.json"), "--sidecars", str(files / "reviews.yaml"), "--workload", "shop/reviews-v1")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "workload shop/reviews-v1 (app=reviews, version=v1): Sidecar shop/reviews; outboundTrafficPolicy REGISTRY_ONLY",
        "services (1): ratings.shop.svc.cluster.local",
        "clusters (1):",
        "  outbound|9080||ratings.shop.svc.cluster.local  1 endpoint(s)",
        "routes (1):",
        "  9080: ratings.shop.svc.cluster.local:9080",
        "listeners (1): 0.0.0.0_9080",
        "total: 1 listeners, 1 clusters, 1 endpoints",
    ]
    code, out, _ = meshlab("sidecar", "scope", "--services", str(files / "services.json"), "--workload", "store/cart-1", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["sidecar"] is None and shown["outboundTrafficPolicy"] == "ALLOW_ANY"
    assert shown["counts"] == {"listeners": 2, "clusters": 3, "endpoints": 5}  # 0.0.0.0_9080 and 0.0.0.0_80


@pytest.mark.parametrize(("args", "message"), [
    (("sidecar", "validate", "/nonexistent.yaml"), "cannot read /nonexistent.yaml"),
    (("sidecar", "scope", "--services", "{services}", "--workload", "shop"), "'shop' is not NAMESPACE/NAME"),
    (("sidecar", "scope", "--services", "{services}", "--workload", "shop/nobody"), "no workload shop/nobody; workloads: shop/reviews-v1, store/cart-1"),
    (("sidecar", "scope", "--services", "{bad}", "--workload", "shop/reviews-v1"), "is not valid JSON"),
    (("sidecar", "scope", "--services", "{services}", "--sidecars", "{bad_sidecar}", "--workload", "shop/reviews-v1"),
     "istiod would refuse Sidecar shop/reviews: Schema validation error: host must be of form namespace/dnsName"),
    (("lazyload", "simulate", "--services", "1"), "'1' is not a number of services 2-10000"),
    (("lazyload", "simulate"), "the following arguments are required: --services"),
])
def test_what_cannot_be_done_exits_2_naming_why(meshlab, files, args, message):
    (files / "broken.json").write_text("{")
    paths = {"services": files / "services.json", "bad": files / "broken.json", "bad_sidecar": files / "bad.yaml"}
    code, out, err = meshlab(*(a.format(**paths) for a in args))
    assert code == 2 and message in err and "Traceback" not in err


def test_lazyload_simulate_prints_the_three_strategies(meshlab):
    code, out, _ = meshlab("lazyload", "simulate", "--services", "60", "--seed", "1", "--json")
    shown = json.loads(out)
    assert code == 0 and [s["strategy"] for s in shown["strategies"]] == ["unscoped", "hand-written", "lazy loading"]
    assert shown["strategies"][2]["detours"] == 117  # 60 services: 1 + 58 x 2 dependencies, each first call detoured
    code, out, _ = meshlab("lazyload", "simulate", "--services", "60", "--seed", "1")
    assert code == 0 and "117 dependencies" in out and max(len(line) for line in out.splitlines()) <= 100
