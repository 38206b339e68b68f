"""Figures the chapters share, all in the book's style and all deterministic.

    draw_call_graph    a service call graph in layers by call depth, failures highlighted
    draw_request_path  the hops of one request as coloured boxes, left to right
    plot_timeline      dated events on named tracks, optionally with spans (e.g. pushes)
    plot_latency_cdf   latency distributions as CDFs with p50/p99 marked
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np

from meshlab.viz.style import ROLE_COLOURS, SERIES, new_axes


def _depths(graph: nx.DiGraph) -> dict[str, int]:
    """Longest call depth of each node from a root, so callers sit left of callees."""
    depth = {node: 0 for node in graph}
    for node in nx.topological_sort(graph):
        for callee in graph.successors(node):
            depth[callee] = max(depth[callee], depth[node] + 1)
    return depth


def draw_call_graph(graph: nx.DiGraph, failed: str | None = None, affected: Iterable[str] = (), title: str = "Call graph", ax: plt.Axes | None = None) -> plt.Axes:
    """Draw a DAG of services in layers by depth; ``failed`` in red, ``affected`` callers in orange."""
    ax = new_axes(title, "call depth (hops from the entry service)", "", ax)
    depth = _depths(graph)
    nx.set_node_attributes(graph, depth, "layer")
    positions = nx.multipartite_layout(graph, subset_key="layer")
    positions = {node: (depth[node], y) for node, (_, y) in positions.items()}
    affected = set(affected)
    colours = [
        ROLE_COLOURS["failure"] if node == failed else ROLE_COLOURS["proxy"] if node in affected else ROLE_COLOURS["app"]
        for node in graph
    ]
    small = graph.number_of_nodes() <= 12
    nx.draw_networkx_edges(graph, positions, ax=ax, alpha=0.35, arrows=True, arrowsize=8, node_size=120 if small else 40)
    nx.draw_networkx_nodes(graph, positions, ax=ax, node_color=colours, node_size=120 if small else 40)
    if small:
        nx.draw_networkx_labels(graph, positions, ax=ax, font_size=7, verticalalignment="bottom")
    ax.set_yticks([])
    ax.grid(False)
    ax.tick_params(left=False, bottom=True, labelbottom=True)
    ax.set_xticks(range(max(depth.values()) + 1))
    return ax


def draw_request_path(hops: Sequence, title: str = "Request path", ax: plt.Axes | None = None) -> plt.Axes:
    """Hops (objects with ``name``, ``kind`` and ``where``) as boxes coloured by kind."""
    if ax is None:
        _, ax = plt.subplots(figsize=(max(4.0, 1.25 * len(hops)), 1.9))
    ax = new_axes(title, "", "", ax)
    for index, hop in enumerate(hops):
        ax.add_patch(plt.Rectangle((index + 0.06, 0.2), 0.88, 0.6, color=ROLE_COLOURS[hop.kind], alpha=0.85))
        ax.text(index + 0.5, 0.5, hop.name.replace(" ", "\n", 1), ha="center", va="center", fontsize=7.5, color="white", weight="bold")
        ax.text(index + 0.5, 0.08, hop.where, ha="center", va="center", fontsize=6, wrap=True)
        if index:
            ax.annotate("", xy=(index + 0.06, 0.5), xytext=(index - 0.06, 0.5), arrowprops={"arrowstyle": "->"})
    kinds = dict.fromkeys(hop.kind for hop in hops)
    handles = [plt.Rectangle((0, 0), 1, 1, color=ROLE_COLOURS[kind]) for kind in kinds]
    ax.legend(handles, list(kinds), loc="upper center", bbox_to_anchor=(0.5, 1.0), ncol=len(kinds), fontsize=7)
    ax.set_xlim(0, len(hops))
    ax.set_ylim(0, 1.15)
    ax.axis("off")
    return ax


def plot_timeline(
    tracks: Mapping[str, Sequence[tuple[float, str]]],
    xlabel: str,
    title: str,
    spans: Mapping[str, Sequence[tuple[float, float]]] | None = None,
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """Events ``(t, label)`` as markers on one horizontal track per name; ``spans`` as bars on the same tracks."""
    names = list(tracks) + [name for name in (spans or {}) if name not in tracks]
    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 0.45 * len(names) + 1.2))
    ax = new_axes(title, xlabel, "", ax)
    for row, name in enumerate(names):
        colour = SERIES[row % len(SERIES)]
        for start, end in (spans or {}).get(name, ()):
            ax.barh(row, end - start, left=start, height=0.5, color=colour, alpha=0.35)
        for index, (when, label) in enumerate(tracks.get(name, ())):
            ax.plot(when, row, "o", color=colour, markersize=5)
            above = index % 2 == 0  # alternate sides so neighbouring labels do not collide
            ax.annotate(label, (when, row), xytext=(0, 6 if above else -7), textcoords="offset points", fontsize=6.5, ha="center", va="bottom" if above else "top")
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(-0.7, len(names) - 0.2)
    ax.invert_yaxis()
    return ax


def plot_latency_cdf(samples: Mapping[str, Sequence[float]], unit: str = "µs", title: str = "Latency distribution", ax: plt.Axes | None = None) -> plt.Axes:
    """Empirical CDF per series, p50 and p99 marked and stated in the legend."""
    ax = new_axes(title, f"latency ({unit})", "fraction of requests", ax)
    for name, values in samples.items():
        data = np.sort(np.asarray(values, dtype=float))
        if data.size == 0:
            raise ValueError(f"series {name!r} has no samples")
        fraction = np.arange(1, data.size + 1) / data.size
        p50, p99 = np.percentile(data, [50, 99])
        (line,) = ax.step(data, fraction, where="post", label=f"{name}: p50 {p50:.1f}, p99 {p99:.1f} {unit}")
        ax.plot([p50, p99], [0.5, 0.99], "o", color=line.get_color(), markersize=4)
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower right", fontsize=8)
    return ax
