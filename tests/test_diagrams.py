"""Architecture diagrams: legible at 100% in JupyterLab, validated specs, and lit paths that follow the models.

Sizes and text boxes come from Graphviz's own layout (``dot -Tjson``), not from our arithmetic: a label
too small, clipped, overlapping another or a diagram too wide to be shown unscaled fails here.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from contrast import contrast

from meshlab.intercept import CaptureConfig, build_rules
from meshlab.intercept.paths import DATAPATHS, request_segments
from meshlab.intercept.walk import Connection, walk
from meshlab.viz import architectures
from meshlab.viz.architectures import CHAPTER_DIAGRAMS, READING_PATHS, interception_path, segment_path, sidecar_pod, socket_paths
from meshlab.viz.diagram import LIT, MAX_WIDTH_PT, Arrow, Box, Diagram, Group
from meshlab.viz.style import MIN_FONT_PT

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.debian,
              pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed (make test installs it as root)")]

EXTREMES = {
    **{f"chapter {ch}": draw for ch, draw in CHAPTER_DIAGRAMS.items()},
    "sockets on one node": lambda: socket_paths(same_node=True),
    "ambient": architectures.ambient_mesh,
    **{f"path {name}": (lambda name=name: architectures.reading_path(name)) for name in READING_PATHS},
    **{f"{d} across nodes lit": (lambda d=d: socket_paths(False).lit(*segment_path(d, False))) for d in DATAPATHS},
    **{f"tiers, {c} lit": (lambda c=c: architectures.tiered_gateways().lit(*architectures.tier_path(c))) for c in architectures.TIER_CLUSTERS},
    **{f"lazy loading, {'first' if f else 'later'} call lit": (lambda f=f: architectures.lazy_loading().lit(*architectures.lazy_path(f))) for f in (True, False)},
    **{f"multi-network, {name} lit": (lambda c=c, s=s: architectures.multi_network_mesh().lit(*architectures.cross_network_path(c, s)))
       for name, (c, s) in {"home": (False, "echo"), "hello across": (True, "hello"), "echo failover": (True, "echo")}.items()},
}


@pytest.mark.parametrize("draw", EXTREMES.values(), ids=EXTREMES.keys())
def test_diagram_is_legible_at_100_percent(draw):
    layout = draw().measure()
    assert layout.texts and min(layout.fonts) >= MIN_FONT_PT
    assert layout.width <= MAX_WIDTH_PT, f"{layout.width:.0f} pt wide: JupyterLab would shrink it below {MIN_FONT_PT} pt"
    assert layout.overlaps() == [] and layout.outside() == []


@pytest.mark.parametrize("draw", EXTREMES.values(), ids=EXTREMES.keys())
def test_box_labels_contrast_with_their_fill(draw):
    """White on the proxies' orange is unreadable (2.6:1); every box label must reach WCAG's 4.5:1."""
    pairs = re.findall(r'BGCOLOR="(#[0-9a-f]{6})"[^>]*><FONT COLOR="([^"]+)"', draw().dot_source())
    assert pairs and [(fill, text) for fill, text in pairs if contrast(text, fill) < 4.5] == []


def test_measure_sees_an_overlap_and_a_small_font():
    """The measurement itself can fail: two labels drawn on one spot are found."""
    from meshlab.viz.diagram import Layout

    layout = Layout(100, 50, (8.0,), (("a", 10, 10, 40, 20), ("b", 30, 12, 60, 22)))
    assert layout.overlaps() == [("a", "b")] and min(layout.fonts) < MIN_FONT_PT


def _edge_colours(svg: str) -> dict[str, str]:
    """Edge title -> stroke colour, from Graphviz's SVG."""
    found = {}
    for title, body in re.findall(r'<g id="edge\d+" class="edge">\s*<title>(.*?)</title>(.*?)</g>', svg, re.S):
        found[title.replace("&#45;&gt;", "->").replace("&gt;", ">")] = re.search(r'stroke="([^"]+)"', body).group(1)
    return found


POD = CaptureConfig(outbound_ip_ranges_include="*", inbound_ports_include="*", inbound_ports_exclude="15090,15021,15020")
POD_IP, PEER_IP = "10.244.0.11", "10.244.0.10"


@pytest.mark.parametrize(
    ("connection", "expected"),
    [
        (Connection("OUTPUT", POD_IP, "10.96.0.10", 80, out_interface="eth0", uid=0, gids=(0,)),
         ["app->OUTPUT", "OUTPUT->ISTIO_OUTPUT", "ISTIO_OUTPUT->ISTIO_REDIRECT", "ISTIO_REDIRECT->envoy:15001"]),
        (Connection("OUTPUT", POD_IP, PEER_IP, 8080, out_interface="eth0", uid=1337, gids=(1337,)),
         ["envoy->OUTPUT", "OUTPUT->ISTIO_OUTPUT", "ISTIO_OUTPUT->eth0_out"]),
        (Connection("PREROUTING", PEER_IP, POD_IP, 8080, in_interface="eth0"),
         ["eth0_in->PREROUTING", "PREROUTING->ISTIO_INBOUND", "ISTIO_INBOUND->ISTIO_IN_REDIRECT", "ISTIO_IN_REDIRECT->envoy:15006"]),
        (Connection("PREROUTING", PEER_IP, POD_IP, 15020, in_interface="eth0"),
         ["eth0_in->PREROUTING", "PREROUTING->ISTIO_INBOUND", "ISTIO_INBOUND->app:8080"]),
        (Connection("OUTPUT", POD_IP, POD_IP, 8080, out_interface="lo", uid=1337, gids=(1337,)),
         ["envoy->OUTPUT", "OUTPUT->ISTIO_OUTPUT", "ISTIO_OUTPUT->ISTIO_IN_REDIRECT", "ISTIO_IN_REDIRECT->envoy:15006"]),
    ],
    ids=["app out", "sidecar out", "inbound", "excluded port", "sidecar to own IP"],
)
def test_a_walk_lights_the_arrows_it_took(connection, expected):
    taken = interception_path(connection, walk(build_rules(POD).restore_text(4), connection).steps)
    assert taken == expected
    colours = _edge_colours(sidecar_pod().lit(*taken).svg())
    assert {name for name, colour in colours.items() if colour == LIT} == set(expected)


@pytest.mark.parametrize("same_node", [True, False])
@pytest.mark.parametrize("datapath", DATAPATHS)
def test_a_datapath_lights_one_route_per_connection(datapath, same_node):
    lit = segment_path(datapath, same_node)
    segments = request_segments(datapath, same_node)
    for number, segment in enumerate(segments, start=1):
        direct = f"{number} socket to socket" in lit
        assert direct == segment.redirected
        assert direct or any(name.startswith(f"{number} ") and "stack" in name for name in lit)
    socket_paths(same_node).lit(*lit)  # every name exists in the diagram


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Diagram("t", (Box("a", "a"),), (Arrow("a", "b"),)), "arrow 'a->b' ends at unknown box 'b'"),
        (lambda: Diagram("t", (Box("a", "a", ports=("1",)),), (Arrow("a:2", "a"),)), "box 'a' has no port '2'; ports: ['1']"),
        (lambda: Diagram("t", (Box("a", "a", "sidecar"),)), "role 'sidecar'; accepted: app, proxy"),
        (lambda: Diagram("t", (Box("a", "a"),), groups=(Group("g", "g", ("x",)),)), "group 'g' names unknown members ['x']"),
        (lambda: Diagram("t", (Box("a", "a"), Box("a", "b"))), "ids used twice: a"),
        (lambda: Diagram("t", (Box("a", "a"),), (Arrow("a", "a", kind="rpc"),)), "kind 'rpc'; accepted: data, control, config"),
        (lambda: Diagram("t", (Box("a", "a"),), direction="RL"), "direction 'RL'; accepted: LR, TB"),
        (lambda: sidecar_pod().lit("app->envoy"), "has nothing named ['app->envoy']"),
        (lambda: architectures.reading_path("networking"), "no reading path 'networking'; paths: data path"),
        (lambda: architectures.tier_path("cluster3"), "no cluster 'cluster3'; clusters: cluster1, cluster2"),
    ],
)
def test_a_bad_spec_is_named(build, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        build()


def test_without_dot_the_error_says_how_to_get_it(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(RuntimeError, match="apt-get install graphviz"):
        sidecar_pod().svg()



def test_the_book_map_says_which_chapters_are_written():
    written = {number for number, _, done in architectures.CHAPTERS if done}
    assert written == {path.name[:2] for path in (ROOT / "notebooks").glob("[0-9][0-9]-*.py")}


@pytest.mark.parametrize("name", READING_PATHS)
def test_a_reading_paths_hours_follow_chapter_00s_estimate_and_its_table(name):
    """An hour per chapter, forty minutes per lab, rounded to the hour; the table in chapter 00 lists the same path."""
    chapters, hours = READING_PATHS[name]
    labs = [c for c in chapters if list((ROOT / "labs").glob(f"{c}-*.py"))]
    assert hours == round((60 * len(chapters) + 40 * len(labs)) / 60)
    assert f"| {name} | {', '.join(chapters)} |" in (ROOT / "notebooks" / "00-how-to-use-this-book.py").read_text().replace("# ", "")
