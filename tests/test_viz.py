"""The book's figures: labelled, titled, in the book's colours."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from meshlab.microservices import grow_call_graph, sidecar_path
from meshlab.viz import ROLE_COLOURS, draw_call_graph, draw_request_path, plot_latency_cdf, plot_timeline, slider, use_book_style


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
    ax = draw_request_path(path.hops)
    colours = [matplotlib.colors.to_hex(patch.get_facecolor()) for patch in ax.patches]
    assert colours == [ROLE_COLOURS[hop.kind] for hop in path.hops]


def test_call_graph_marks_the_failure_and_its_callers():
    graph = grow_call_graph(8, seed=1)
    ax = draw_call_graph(graph, failed="svc-005", affected={"frontend"})
    colours = [matplotlib.colors.to_hex(c) for c in ax.collections[-1].get_facecolor()]
    assert colours.count(ROLE_COLOURS["failure"]) == 1 and colours.count(ROLE_COLOURS["proxy"]) == 1
    assert ax.get_title() == "Call graph" and "call depth" in ax.get_xlabel()


def test_timeline_has_one_track_per_name():
    ax = plot_timeline({"a": [(1.0, "x")], "b": [(2.0, "y"), (3.0, "z")]}, "time (ms)", "Events", spans={"c": [(0.0, 1.0)]})
    assert [label.get_text() for label in ax.get_yticklabels()] == ["a", "b", "c"]
    assert ax.get_xlabel() == "time (ms)"


def test_slider_kind_follows_its_numbers():
    assert type(slider("n", 3, 1, 9)).__name__ == "IntSlider"
    assert type(slider("p", 0.5, 0.0, 1.0, 0.1)).__name__ == "FloatSlider"
