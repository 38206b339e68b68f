"""Istio's injector (``istioctl kube-inject``, offline, with ``istioctl manifest generate``'s template)
injects pods carrying the traffic annotations; meshlab reads the injected istio-init args into the
CaptureConfig the annotation means. tests/live/test_istio_iptables_differential.py then holds the
rules for such configurations against the real istio-iptables."""

from __future__ import annotations

import pytest
from injection_cases import ANNOTATIONS, INJECTED, POD
from upstream_programs import program_path

from meshlab.intercept import CaptureConfig
from meshlab.kind import observe
from meshlab.upstream.injection import Injector
from meshlab.upstream.versions import ISTIO

pytestmark = pytest.mark.upstream

@pytest.fixture(scope="module")
def injector():
    with Injector(program_path("istioctl")) as injector:
        yield injector


def annotated(annotations: dict) -> dict:
    return {**POD, "metadata": {**POD["metadata"], "annotations": annotations}}


@pytest.mark.parametrize(("annotations", "changes"), ANNOTATIONS, ids=[next(iter(a), "none") for a, _ in ANNOTATIONS])
def test_an_annotated_pod_is_injected_with_the_capture_it_asks_for(injector, annotations, changes):
    injected = injector.inject(annotated(annotations))
    assert [c["name"] for c in injected["spec"]["containers"]] == ["httpbin", "istio-proxy"]
    args, env = observe.init_container(injected)
    assert args[0] == "istio-iptables" and args[-1].startswith("--log_output_level=")
    assert observe.capture_config_from_init(args, env) == CaptureConfig(**{**INJECTED.__dict__, **changes})


def test_the_injected_images_are_the_pinned_release(injector):
    init = injector.inject(annotated({}))["spec"]["initContainers"][0]
    assert init["image"] == f"docker.io/istio/proxyv2:{ISTIO.release}"  # the release image, not a test registry's
