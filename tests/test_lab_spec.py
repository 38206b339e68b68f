"""A pod's spec refuses what cannot be made, naming the pod and what is accepted."""

import pytest

from meshlab.lab.netns import LabUsageError
from meshlab.lab.spec import APPS, InitContainer, PodSpec


def test_a_proxyless_grpc_pod_is_accepted():
    spec = PodSpec("greet1", sidecar=False, proxyless=True, app="grpc", ports=(7070,))
    assert (spec.proxyless, spec.app, spec.sidecar) == (True, "grpc", False) and APPS == ("http", "grpc")


@pytest.mark.parametrize(("options", "message"), [
    ({"proxyless": True}, "pod p: a proxyless pod has no sidecar; give it sidecar=False"),
    ({"app": "tcp"}, "pod p: app 'tcp' is not one of http, grpc"),
    ({"app": "grpc", "ports": ()}, "pod p: a gRPC app needs a port to serve on"),
    ({"sidecar": False, "dataplane": True}, "pod p: dataplane needs a sidecar"),
    ({"sidecar": False, "init": InitContainer(("true",))}, "pod p: an init container makes a sidecar pod's rules"),
    ({"k8s_namespace": "Shop"}, "pod p: namespace 'Shop' is not a Kubernetes name"),
])
def test_what_cannot_be_made_is_refused_by_name(options, message):
    with pytest.raises(LabUsageError, match=message.replace("(", r"\(")):
        PodSpec("p", **options)
