"""Figures the chapters share, all in the book's style and all deterministic.

    draw_call_graph    a service call graph in layers by call depth, failures highlighted
    draw_request_path  the hops of one request as coloured boxes, left to right
    draw_packet_walk   the rules a packet matched, chain by chain, and its verdict
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


def _draw_boxes(ax: plt.Axes, boxes: Sequence[tuple[str, str, str]]) -> None:
    """(label, caption, role) boxes left to right, coloured by role, joined by arrows; caption below."""
    for index, (label, caption, role) in enumerate(boxes):
        ax.add_patch(plt.Rectangle((index + 0.06, 0.2), 0.88, 0.6, color=ROLE_COLOURS[role], alpha=0.85))
        ax.text(index + 0.5, 0.5, label, ha="center", va="center", fontsize=7, color="white", weight="bold")
        ax.text(index + 0.5, 0.08, caption, ha="center", va="center", fontsize=6)
        if index:
            ax.annotate("", xy=(index + 0.06, 0.5), xytext=(index - 0.06, 0.5), arrowprops={"arrowstyle": "->"})
    roles = dict.fromkeys(role for _, _, role in boxes)
    handles = [plt.Rectangle((0, 0), 1, 1, color=ROLE_COLOURS[role]) for role in roles]
    ax.legend(handles, list(roles), loc="upper center", bbox_to_anchor=(0.5, 1.0), ncol=len(roles), fontsize=7)
    ax.set_xlim(0, len(boxes))
    ax.set_ylim(0, 1.15)
    ax.axis("off")


def _strip(count: int, ax: plt.Axes | None, title: str, width: float = 1.25) -> plt.Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=(max(4.0, width * count), 1.9))
    return new_axes(title, "", "", ax)


def draw_request_path(hops: Sequence, title: str = "Request path", ax: plt.Axes | None = None) -> plt.Axes:
    """Hops (objects with ``name``, ``kind`` and ``where``) as boxes coloured by kind."""
    ax = _strip(len(hops), ax, title)
    _draw_boxes(ax, [(hop.name.replace(" ", "\n", 1), hop.where, hop.kind) for hop in hops])
    return ax


def draw_packet_walk(steps: Sequence, verdict: str, to_port: int | None = None, title: str = "Packet walk", ax: plt.Axes | None = None) -> plt.Axes:
    """Matched rules (objects with ``table``, ``chain`` and ``effect``) as boxes, then the verdict."""
    boxes = [(f"{step.table}:\n{step.chain}", step.effect.replace("JUMP:", "jump "), "netfilter") for step in steps]
    if to_port:
        boxes.append((f"{verdict}\n:{to_port}", "to the sidecar", "proxy"))
    else:
        boxes.append((verdict, "delivered as addressed", "app"))
    ax = _strip(len(boxes), ax, title, width=1.45)
    _draw_boxes(ax, boxes)
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

