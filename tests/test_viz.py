"""The book's figures: labelled, titled, in the book's colours."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from meshlab.microservices import blast_radius, grow_call_graph, sidecar_path
from meshlab.ngac import hospital_example
from meshlab.viz import ROLE_COLOURS, draw_call_graph, draw_request_path, plot_latency_cdf, plot_timeline, slider, use_book_style
from meshlab.viz.figures import draw_ngac_graph


@pytest.fixture(autouse=True)
def _close_figures():
    use_book_style()
    yield
    plt.close("all")


def test_latency_cdf_states_p50_and_p99_with_units():
    ax = plot_latency_cdf({"direct": [1, 2, 3, 4, 100], "two sidecars": [3, 4, 5, 6, 7]}, unit="µs")
    assert ax.get_xlabel() == "latency (µs)" and ax.get_ylabel() == "fraction of requests"
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend[0].startswith("direct: p50 3.0, p99 96.2 µs")


def test_latency_cdf_refuses_an_empty_series():
    with pytest.raises(ValueError, match="series 'direct' has no samples"):
        plot_latency_cdf({"direct": []})


def test_request_path_colours_hops_by_role():
    path = sidecar_path()
    fills = _box_colours(draw_request_path(path.hops))
    assert all(fills[hop.name.replace(" ", "\n", 1)] == ROLE_COLOURS[hop.kind] for hop in path.hops)


def _box_colours(ax) -> dict[str, str]:
    """Label -> fill of the box it is drawn on (the label's centre lies inside the box)."""
    ax.figure.canvas.draw()
    fills = {}
    for text in ax.texts:
        x, y = text.get_position()
        for patch in ax.patches:
            if patch.contains_point(ax.transData.transform((x, y))):
                fills[text.get_text()] = matplotlib.colors.to_hex(patch.get_facecolor())
    return fills


def test_call_graph_marks_the_failure_and_its_callers():
    graph = grow_call_graph(8, seed=1)
    affected = blast_radius(graph, "svc-005")
    fills = _box_colours(draw_call_graph(graph, failed="svc-005", affected=affected))
    assert fills["svc-005"] == ROLE_COLOURS["failure"]
    assert {name for name, fill in fills.items() if fill == ROLE_COLOURS["proxy"] and name in graph} == affected
    assert {name for name, fill in fills.items() if fill == ROLE_COLOURS["app"] and name in graph} == set(graph) - affected - {"svc-005"}


def test_call_graph_refuses_a_failure_outside_the_graph():
    with pytest.raises(KeyError, match="failed service 'nope' is not in the call graph"):
        draw_call_graph(grow_call_graph(3), failed="nope")


def test_ngac_graph_colours_each_element_by_kind_and_refuses_unknown_kinds():
    policy = hospital_example()
    fills = _box_colours(draw_ngac_graph(policy))
    assert fills["alice"] == ROLE_COLOURS["app"] and fills["wards"] == ROLE_COLOURS["control-plane"] and fills["record-17"] == ROLE_COLOURS["wire"]
    policy.graph.nodes["alice"]["kind"] = "role"
    with pytest.raises(ValueError, match=r"unknown NGAC element kind\(s\) \['role'\]; accepted: u, ua, pc, oa, o"):
        draw_ngac_graph(policy)


def test_timeline_has_one_track_per_name():
    ax = plot_timeline({"a": [(1.0, "x")], "b": [(2.0, "y"), (3.0, "z")]}, "time (ms)", "Events", spans={"c": [(0.0, 1.0)]})
    assert [label.get_text() for label in ax.get_yticklabels()] == ["a", "b", "c"]
    assert ax.get_xlabel() == "time (ms)"


def test_slider_kind_follows_its_numbers():
    assert type(slider("n", 3, 1, 9)).__name__ == "IntSlider"
    assert type(slider("p", 0.5, 0.0, 1.0, 0.1)).__name__ == "FloatSlider"
