"""Every figure function, drawn at the extremes the chapters use, is legible at 100% zoom.

What is measured, with matplotlib's own renderer (the text it actually draws, where it draws it):
- no text is smaller than 9 pt;
- no two texts overlap;
- no text reaches outside the figure (JupyterLab would show it cut, or shrink the figure to fit);
- a label drawn on a box (a node, a hop) lies wholly inside that box and contrasts with it
  (WCAG ratio >= 4.5, "black on dark blue" fails);
- no figure is wider than the notebook shows at 100% (wider ones are scaled down, text with them).
"""

from __future__ import annotations

import itertools
from collections import namedtuple

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
from matplotlib.patches import Rectangle
from matplotlib.text import Text

from contrast import contrast

from meshlab.intercept import CaptureConfig, build_rules
from meshlab.intercept.walk import Connection, walk
from meshlab.landscape import ERAS, MESHES
from meshlab.microservices import blast_radius, grow_call_graph, kube_proxy_path, sidecar_path
from meshlab.ngac import ContextAttribute, hospital_example
from meshlab.viz import draw_call_graph, draw_packet_walk, draw_request_path, plot_latency_cdf, plot_timeline, use_book_style
from meshlab.viz.figures import LABEL_PT, MAX_WIDTH, draw_ngac_graph, draw_sequence, readable_on
from meshlab.viz.sequence import Message, ads_messages

SEED = 7  # chapter 01's seed


@pytest.fixture(autouse=True)
def _book_style():
    use_book_style()
    yield
    plt.close("all")


def drawn_texts(figure):
    """(text, extent) for every text the renderer actually draws, once each. The renderer's
    draw_text is told which Text it draws only for one-line texts, so Text.draw says it too."""
    renderer = figure.canvas.get_renderer()
    drawn, current = {}, []
    draw_text, text_draw = renderer.draw_text, Text.draw

    def record(gc, x, y, s, prop, angle, ismath=False, mtext=None):
        if current and s.strip():
            drawn[id(current[-1])] = current[-1]
        return draw_text(gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)

    def draw(self, renderer):
        current.append(self)
        try:
            return text_draw(self, renderer)
        finally:
            current.pop()

    renderer.draw_text, Text.draw = record, draw
    try:
        figure.draw(renderer)
    finally:
        del renderer.draw_text
        Text.draw = text_draw
    return [(text, text.get_window_extent(renderer)) for text in drawn.values()], renderer


def assert_legible(figure):
    texts, renderer = drawn_texts(figure)
    assert texts, "the figure draws no text at all"
    page = figure.bbox
    for text, extent in texts:
        assert text.get_fontsize() >= LABEL_PT, f"{text.get_text()!r} is {text.get_fontsize():.1f} pt, below {LABEL_PT} pt"
        assert extent.x0 >= page.x0 - 0.5 and extent.x1 <= page.x1 + 0.5 and extent.y0 >= page.y0 - 0.5 and extent.y1 <= page.y1 + 0.5, (
            f"{text.get_text()!r} reaches outside the figure: {extent.bounds} vs {page.bounds}")
    for (a, box_a), (b, box_b) in itertools.combinations(texts, 2):
        overlap_w = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
        overlap_h = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
        assert overlap_w <= 0.5 or overlap_h <= 0.5, f"{a.get_text()!r} overlaps {b.get_text()!r}"
    boxes = [(patch, patch.get_window_extent(renderer)) for ax in figure.axes for patch in ax.patches if isinstance(patch, Rectangle)]
    for text, extent in texts:
        centre = ((extent.x0 + extent.x1) / 2, (extent.y0 + extent.y1) / 2)
        for patch, box in boxes:
            if box.contains(*centre):
                assert box.x0 <= extent.x0 + 0.5 and extent.x1 <= box.x1 + 0.5 and box.y0 <= extent.y0 + 0.5 and extent.y1 <= box.y1 + 0.5, (
                    f"{text.get_text()!r} spills out of its box")
                ratio = contrast(text.get_color(), patch.get_facecolor())
                assert ratio >= 4.5, f"{text.get_text()!r}: contrast {ratio:.1f} with its box, below 4.5"
    width = figure.get_size_inches()[0]
    assert width <= MAX_WIDTH + 1e-9, f"the figure is {width:.1f} in wide; JupyterLab would scale it (and its text) down"
    return texts


# -- the checker itself must be able to fail -----------------------------------------------------


def test_the_checker_catches_small_overlapping_and_clipped_text():
    figure, ax = plt.subplots(figsize=(3, 2))
    ax.text(0.5, 0.5, "tiny", fontsize=7)
    with pytest.raises(AssertionError, match="7.0 pt"):
        assert_legible(figure)
    figure, ax = plt.subplots(figsize=(3, 2))
    ax.text(0.2, 0.5, "overlapping label", fontsize=10)
    ax.text(0.25, 0.5, "another label", fontsize=10)
    with pytest.raises(AssertionError, match="overlaps"):
        assert_legible(figure)
    figure, ax = plt.subplots(figsize=(3, 2), layout="none")  # constrained layout would shrink the axes to make room
    ax.text(0.9, 0.5, "runs off the right edge", fontsize=10)
    with pytest.raises(AssertionError, match="outside the figure"):
        assert_legible(figure)
    figure, ax = plt.subplots(figsize=(3, 2))
    ax.axis("off")
    ax.add_patch(Rectangle((0.3, 0.3), 0.4, 0.4, facecolor="#3b6ea5"))
    ax.text(0.5, 0.5, "dark", color="black", fontsize=10, ha="center", va="center")
    with pytest.raises(AssertionError, match="contrast"):
        assert_legible(figure)


@pytest.mark.parametrize(("fill", "text"), [("#3b6ea5", "white"), ("#8c8c8c", "black"), ("#e08a2c", "black"), ("#7b5ea7", "white"), ("#9fd1a8", "black")])
def test_readable_on_picks_the_colour_with_more_contrast(fill, text):
    assert readable_on(fill) == text


# -- chapter 01: the call graph at every size the slider offers -----------------------------------


@pytest.mark.parametrize("services", [1, 3, 12, 29, 80])
def test_call_graph_names_every_service_legibly(services):
    graph = grow_call_graph(services, seed=SEED)
    worst = max(sorted(graph), key=lambda node: len(blast_radius(graph, node)))
    ax = draw_call_graph(graph, failed=worst, affected=blast_radius(graph, worst), title=f"{services} services: {worst} fails")
    texts = {text.get_text() for text, _ in assert_legible(ax.figure)}
    assert set(graph) <= texts, f"unnamed services: {sorted(set(graph) - texts)}"
    assert {"fails", "its callers (blast radius)", "not affected"} <= texts, "the legend names the three colours"


def test_call_graph_without_a_failure_has_a_one_entry_legend():
    ax = draw_call_graph(grow_call_graph(12, seed=SEED))
    texts = {text.get_text() for text, _ in assert_legible(ax.figure)}
    assert "service" in texts and "fails" not in texts


# -- chapter 14: the NGAC policy graph ---------------------------------------------------------------


def _hospital_with_dan():
    """The policy as chapter 14 §4 extends it: a context attribute and a fourth user."""
    policy = hospital_example()
    policy.add_context_attribute(ContextAttribute("on duty", lambda c: True), "confidentiality")
    policy.add("u", "dan")
    policy.assign("dan", "cardiology staff")
    policy.assign("dan", "on duty")
    policy.associate("on duty", {"write"}, "medical notes")
    return policy


@pytest.mark.parametrize("policy", [hospital_example, _hospital_with_dan], ids=["hospital", "hospital with dan"])
def test_ngac_graph_names_every_element_and_every_association(policy):
    policy = policy()
    texts = [text.get_text() for text, _ in assert_legible(draw_ngac_graph(policy).figure)]
    assert set(policy.graph) <= set(texts)
    assert sorted(t for t in texts if t in {"read", "write", "read, write"}) == sorted(", ".join(sorted(a.rights)) for a in policy.associations)


# -- chapters 01, 02, 13: strips of boxes ----------------------------------------------------------------

Step = namedtuple("Step", "name kind where")
ATTESTATION = [Step("workload connects", "app", "Unix socket"), Step("kernel: SO_PEERCRED", "netfilter", "pid, uid, gid"),
               Step("PID still the same?", "netfilter", "start time"), Step("agent reads /proc", "control-plane", "exe, sha256, groups"),
               Step("pod of the netns", "control-plane", "ns, sa, labels"), Step("entries ⊆ selectors", "control-plane", "SPIRE's rule"),
               Step("SVID pushed", "proxy", "renewed at half life")]


@pytest.mark.parametrize("hops", [kube_proxy_path().hops, sidecar_path().hops, ATTESTATION, ATTESTATION[:1], ATTESTATION * 4],
                         ids=["kube-proxy", "sidecar", "attestation (13)", "one step", "28 steps"])
def test_request_path_boxes_hold_their_labels(hops):
    ax = draw_request_path(hops, title="Through two Istio sidecars: every hop a request crosses, in order")
    texts = [text.get_text() for text, _ in assert_legible(ax.figure)]
    assert all(hop.where in " ".join(texts).replace("\n", " ") for hop in hops), "every caption is drawn"


def test_request_path_refuses_an_empty_path():
    with pytest.raises(ValueError, match="no steps"):
        draw_request_path([])


POD = CaptureConfig()
WALKS = {
    "captured": Connection("OUTPUT", "10.244.0.11", "10.96.0.10", 80, out_interface="eth0", uid=0, gids=(0,)),
    "not captured": Connection("OUTPUT", "10.244.0.11", "10.244.0.10", 8080, out_interface="eth0", uid=1337, gids=(1337,)),
    "inbound": Connection("PREROUTING", "10.244.0.10", "10.244.0.11", 8080, in_interface="eth0"),
}


@pytest.mark.parametrize("name", WALKS)
def test_packet_walk_of_a_real_walk_is_legible(name):
    result = walk(build_rules(POD).restore_text(4), WALKS[name])
    ax = draw_packet_walk(result.steps, result.verdict, result.to_port, title=f"{name}: the first packet's walk")
    assert_legible(ax.figure)


# -- timelines (chapters 01 and 06) and latency CDFs (chapter 02) -----------------------------------


def _as_year(when: str) -> float:
    year, month = when.split("-")
    return int(year) + (int(month) - 1) / 12


TIMELINES = {
    "eras (01)": ({era.name: [(p.year, p.name) for p in era.proxies] for era in ERAS}, None),
    "meshes (01)": ({mesh.name: [(_as_year(m.when), m.short) for m in mesh.milestones] for mesh in MESHES}, None),
    "pushes (06)": ({"changes": [(t, "full" if t in (90, 1200) else "") for t in (0, 40, 90, 400, 460, 520, 580, 640, 1200)],
                     "pushes": [(140, "3"), (740, "5"), (1250, "1")]}, {"pushes": [(140, 190), (740, 790), (1250, 1300)]}),
    "one event": ({"only": [(1.0, "alone")]}, None),
    "crowded": ({"busy": [(t / 10, f"event {t}") for t in range(40)]}, None),
}


@pytest.mark.parametrize("name", TIMELINES)
def test_timeline_labels_never_overprint(name):
    tracks, spans = TIMELINES[name]
    ax = plot_timeline(tracks, "year", f"Timeline: {name}", spans=spans)
    texts = [text.get_text() for text, _ in assert_legible(ax.figure)]
    labels = [label for events in tracks.values() for _, label in events if label]
    assert sorted(t for t in texts if t in set(labels)) == sorted(labels), "every event label is drawn"


def test_latency_cdfs_side_by_side_are_legible():
    figure, (left, right) = plt.subplots(1, 2, figsize=(8.8, 3.6))  # as chapter 02 draws them
    samples = {"direct": [30 + i % 17 for i in range(200)], "two sidecars": [110 + i % 41 for i in range(200)]}
    plot_latency_cdf(samples, title="One keep-alive connection", ax=left)
    plot_latency_cdf(samples, title="A new connection per request", ax=right)
    assert_legible(figure)


def _stream(messages: int, resources: list[str]) -> list[dict]:
    """A subscribe, then response/ACK pairs, as meshlab's control plane records them; the last one a NACK."""
    records = [{"direction": "request", "kind": "subscribe", "type": "CDS", "version": "", "nonce": "", "resources": resources}]
    for n in range(1, messages // 2 + 1):
        records.append({"direction": "response", "kind": "response", "type": "CDS", "version": str(n), "nonce": str(n), "resources": []})
        records.append({"direction": "request", "kind": "ACK", "type": "CDS", "version": str(n), "nonce": str(n), "resources": []})
    records[-1] = dict(records[-1], kind="NACK", version=str(messages // 2 - 1))
    return records


#: Istio-style cluster names: a subscription naming several is wider than the page.
ISTIO_CLUSTERS = [f"outbound|9080|v{v}|reviews.default.svc.cluster.local" for v in (1, 2, 3)]


@pytest.mark.parametrize(("messages", "resources"), [(2, ["greeter-v1"]), (16, ["greeter-v1", "greeter-v2"]), (40, ISTIO_CLUSTERS)])
def test_sequence_diagrams_are_legible(messages, resources):
    drawn = ads_messages(_stream(messages, resources))
    ax = draw_sequence(["gRPC xDS client", "control plane"], drawn, "ADS: subscribe, respond, ACK, and a NACK at the end")
    assert_legible(ax.figure)
    assert drawn[-1].role == "failure" and drawn[1].role == "control-plane" and drawn[0].role == "app"


def test_sequence_names_unknown_participants():
    with pytest.raises(ValueError, match=r"participants \['istiod'\] not in \['client'\]"):
        draw_sequence(["client"], [Message("client", "istiod", "hello")], "t")
