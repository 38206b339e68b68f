"""Figures the chapters share, all in the book's style, deterministic and legible at 100% zoom.

Every label is at least ``LABEL_PT`` points and no two labels overlap: instead of shrinking text
to fit a fixed figure, each figure measures its text first (with matplotlib's own renderer) and
sizes itself to fit, in inches. Boxes, node labels and legends are laid out on an "inch canvas",
an axes that fills its figure with one data unit per inch, so a measured width is a distance.
tests/test_figure_legibility.py renders every function here at its extremes and checks it.

    draw_call_graph    a service call graph in columns by call depth, failures highlighted
    draw_ngac_graph    an NGAC policy: assignments (solid) and associations with their rights (dashed)
    draw_request_path  the hops of one request as coloured boxes, left to right, wrapping into rows
    draw_packet_walk   the rules a packet matched, chain by chain, and its verdict
    draw_sequence      a protocol exchange: lifelines and messages, top to bottom
    plot_timeline      dated events on named tracks, optionally with spans (e.g. pushes)
    plot_latency_cdf   latency distributions as CDFs with p50/p99 marked
    readable_on        black or white, whichever is easier to read on a fill colour
"""

from __future__ import annotations

import functools
import math
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.layout_engine import PlaceHolderLayoutEngine

from meshlab.viz.style import BOOK_RC, MIN_FONT_PT, PAGE_PX, ROLE_COLOURS, SERIES, new_axes

#: The smallest text any figure draws (points); the book's rule for legibility at 100% zoom.
LABEL_PT = MIN_FONT_PT
TITLE_PT = 11.0
#: Widest figure (inches): the page at the book's figure dpi; wider ones are scaled down by JupyterLab.
MAX_WIDTH = PAGE_PX / BOOK_RC["figure.dpi"]
MARGIN = 0.15


@functools.lru_cache(maxsize=4096)
def _measure(text: str, size: float = LABEL_PT, weight: str = "normal") -> tuple[float, float]:
    """(width, height) in inches of ``text`` as matplotlib will draw it (multi-line included)."""
    figure = Figure(dpi=72)
    canvas = FigureCanvasAgg(figure)
    extent = figure.text(0, 0, text, fontsize=size, weight=weight).get_window_extent(canvas.get_renderer())
    return extent.width / 72, extent.height / 72


def readable_on(fill: str) -> str:
    """Black or white text, whichever has the higher WCAG contrast ratio against ``fill``."""

    def luminance(rgb: Sequence[float]) -> float:
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    lum = luminance(mcolors.to_rgb(fill))
    return "black" if (lum + 0.05) / 0.05 >= 1.05 / (lum + 0.05) else "white"


@dataclass(frozen=True)
class _Box:
    """A rectangle on the inch canvas, by centre and size."""

    x: float
    y: float
    width: float
    height: float

    def overlaps(self, other: _Box) -> bool:
        return abs(self.x - other.x) * 2 < self.width + other.width and abs(self.y - other.y) * 2 < self.height + other.height

    def edge_toward(self, x: float, y: float) -> tuple[float, float]:
        """Where the line from this box's centre to (x, y) leaves the box."""
        dx, dy = x - self.x, y - self.y
        if dx == dy == 0:
            return self.x, self.y
        scale = min(self.width / 2 / abs(dx) if dx else math.inf, self.height / 2 / abs(dy) if dy else math.inf)
        return self.x + dx * scale, self.y + dy * scale


def _fixed_figure(width: float, height: float) -> Figure:
    """A figure whose axes stay where they are put. Its layout engine is a placeholder rather
    than None: saving a figure (as Jupyter does to show it) restores a None engine from the
    rcParams, which would switch the book's constrained layout on at the second showing."""
    figure = plt.figure(figsize=(width, height))
    figure.set_layout_engine(PlaceHolderLayoutEngine(adjust_compatible=True, colorbar_gridspec=False))
    return figure


def _canvas(width: float, height: float) -> plt.Axes:
    """A figure of ``width`` x ``height`` inches whose axes fill it, one data unit per inch."""
    ax = _fixed_figure(width, height).add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")
    return ax


def _labelled_box(ax: plt.Axes, box: _Box, label: str, fill: str, weight: str = "normal") -> None:
    ax.add_patch(plt.Rectangle((box.x - box.width / 2, box.y - box.height / 2), box.width, box.height, facecolor=fill, edgecolor="none", zorder=2))
    ax.text(box.x, box.y, label, ha="center", va="center", fontsize=LABEL_PT, weight=weight, color=readable_on(fill), zorder=3)


def _arrow(ax: plt.Axes, start: _Box, end: _Box, **style) -> None:
    """An arrow from the edge of ``start`` to the edge of ``end``, under the boxes."""
    tail, head = start.edge_toward(end.x, end.y), end.edge_toward(start.x, start.y)
    props = {"arrowstyle": "-|>", "mutation_scale": 9, "shrinkA": 1, "shrinkB": 1, "color": "0.35", "linewidth": 0.8} | style
    ax.annotate("", xy=head, xytext=tail, arrowprops=props, zorder=1)


def _legend_rows(entries: Sequence[tuple[str, dict]], width: float) -> list[list[tuple[str, dict, float]]]:
    """Legend entries ``(label, swatch style)`` packed into rows no wider than ``width``; each with its width."""
    rows: list[list[tuple[str, dict, float]]] = [[]]
    used = 0.0
    for label, swatch in entries:
        entry = 0.3 + _measure(label)[0]
        if rows[-1] and used + entry > width:
            rows.append([])
            used = 0.0
        rows[-1].append((label, swatch, entry))
        used += entry + 0.25
    return rows


def _draw_legend(ax: plt.Axes, rows: list[list[tuple[str, dict, float]]], width: float, top: float) -> None:
    """Swatches (a filled square, or a line with ``linestyle``) and labels, rows centred under ``top``."""
    for index, row in enumerate(rows):
        y = top - (index + 0.5) * _legend_row()
        x = (width - (sum(entry for *_, entry in row) + 0.25 * (len(row) - 1))) / 2
        for label, swatch, entry in row:
            if "linestyle" in swatch:
                ax.plot([x, x + 0.22], [y, y], color=swatch.get("color", "0.35"), linestyle=swatch["linestyle"], linewidth=1.2)
            else:
                ax.add_patch(plt.Rectangle((x + 0.02, y - 0.08), 0.16, 0.16, facecolor=swatch["color"], edgecolor="none"))
            ax.text(x + 0.3, y, label, ha="left", va="center", fontsize=LABEL_PT)
            x += entry + 0.25


def _legend_row() -> float:
    """Height of one legend row, inches."""
    return _measure("Ag")[1] + 0.08


def _legend_height(rows: list) -> float:
    return len(rows) * _legend_row()


def _title(ax: plt.Axes, title: str, width: float, top: float) -> None:
    ax.text(width / 2, top, title, ha="center", va="top", fontsize=TITLE_PT, weight="bold")


def _framed(title: str, entries: Sequence[tuple[str, dict]], width: float, body_height: float, after: float = 0.1) -> plt.Axes:
    """An inch canvas ``width`` wide with the title (wrapped to fit) and the legend across its top and
    ``body_height`` inches below them, from y = 0 up to y = body_height."""
    title = _fit_title(title, width)
    legend = _legend_rows(entries, width - 2 * MARGIN)
    title_h = _measure(title, TITLE_PT, "bold")[1]
    header = MARGIN + title_h + 0.1 + _legend_height(legend) + after
    ax = _canvas(width, header + body_height)
    _title(ax, title, width, header + body_height - MARGIN)
    _draw_legend(ax, legend, width, header + body_height - MARGIN - title_h - 0.1)
    return ax


def _fit_title(title: str, width: float) -> str:
    """The title wrapped onto as many lines as it needs to fit ``width`` inches."""
    if _measure(title, TITLE_PT, "bold")[0] <= width - 2 * MARGIN:
        return title
    chars = max(10, int(len(title) * (width - 2 * MARGIN) / _measure(title, TITLE_PT, "bold")[0]))
    return "\n".join(textwrap.wrap(title, chars))


# -- layered graphs: call graphs and NGAC policies ----------------------------------------------


def _order_columns(graph: nx.DiGraph, columns: Sequence[Sequence[str]]) -> list[list[str]]:
    """Each column sorted by the mean row of its neighbours in the columns already placed
    (the barycentre heuristic), so edges cross less than in insertion order."""
    row: dict[str, float] = {}
    ordered = []
    for column in columns:
        def barycentre(node: str) -> float:
            placed = [row[n] for n in nx.all_neighbors(graph, node) if n in row]
            return sum(placed) / len(placed) if placed else 0.0

        column = sorted(column, key=lambda node: (barycentre(node), node))
        offset = (len(column) - 1) / 2
        row.update({node: index - offset for index, node in enumerate(column)})
        ordered.append(column)
    return ordered


def _depths(graph: nx.DiGraph) -> dict[str, int]:
    """Longest call depth of each node from a root, so callers sit left of callees."""
    depth = {node: 0 for node in graph}
    for node in nx.topological_sort(graph):
        for callee in graph.successors(node):
            depth[callee] = max(depth[callee], depth[node] + 1)
    return depth


def draw_call_graph(graph: nx.DiGraph, failed: str | None = None, affected: Iterable[str] = (), title: str = "Call graph") -> plt.Axes:
    """Draw a DAG of services in columns by call depth, every service named; ``failed`` in red,
    ``affected`` callers in orange. The figure grows with the deepest and the widest column."""
    if failed is not None and failed not in graph:
        raise KeyError(f"failed service {failed!r} is not in the call graph")
    affected = set(affected)
    depth = _depths(graph)
    columns = _order_columns(graph, [[n for n in graph if depth[n] == d] for d in range(max(depth.values(), default=0) + 1)])
    label_w, label_h = max((_measure(str(n)) for n in graph), default=(0.5, 0.15), key=lambda size: size[0])[0], _measure("Ag")[1]
    node_w, node_h, pitch_y = label_w + 0.12, label_h + 0.07, label_h + 0.13
    pitch_x = min(label_w + 0.55, (MAX_WIDTH - 2 * MARGIN - node_w) / max(1, len(columns) - 1))
    roles = {"fails": ROLE_COLOURS["failure"], "its callers (blast radius)": ROLE_COLOURS["proxy"], "not affected": ROLE_COLOURS["app"]}
    entries = [(label, {"color": colour}) for label, colour in roles.items()] if failed is not None else [("service", {"color": ROLE_COLOURS["app"]})]
    content_w = len(columns) * pitch_x - (pitch_x - node_w)
    axis_label = "call depth (hops from the entry service)"
    width = min(MAX_WIDTH, max(5.0, content_w + 2 * MARGIN, _measure(axis_label)[0] + 2 * MARGIN))
    rows = max(len(column) for column in columns)
    footer = 2 * (label_h + 0.08) + MARGIN
    ax = _framed(title, entries, width, rows * pitch_y + footer)
    left, middle = (width - content_w) / 2 + node_w / 2, footer + rows * pitch_y / 2
    boxes = {node: _Box(left + d * pitch_x, middle + ((len(column) - 1) / 2 - i) * pitch_y, node_w, node_h) for d, column in enumerate(columns) for i, node in enumerate(column)}
    for caller, callee in graph.edges:
        _arrow(ax, boxes[caller], boxes[callee], color="0.55", linewidth=0.6)
    for node, box in boxes.items():
        fill = ROLE_COLOURS["failure"] if node == failed else ROLE_COLOURS["proxy"] if node in affected else ROLE_COLOURS["app"]
        _labelled_box(ax, box, str(node), fill)
    for d in range(len(columns)):
        ax.text(left + d * pitch_x, footer - 0.04, str(d), ha="center", va="top", fontsize=LABEL_PT)
    ax.text(width / 2, MARGIN, axis_label, ha="center", va="bottom", fontsize=LABEL_PT)
    return ax


#: Where each NGAC element kind sits: users, user attributes | policy classes on top | object attributes, objects.
_NGAC_COLUMNS = {"u": 0, "ua": 1, "oa": 2, "o": 3}
_NGAC_NAMES = {"u": "user", "ua": "user attribute", "pc": "policy class", "oa": "object attribute", "o": "object"}
_NGAC_FILLS = {"u": ROLE_COLOURS["app"], "ua": "#8fb3d9", "pc": ROLE_COLOURS["control-plane"], "oa": "#9fd1a8", "o": ROLE_COLOURS["wire"]}


def draw_ngac_graph(policy, title: str = "Assignments (solid) and associations (dashed)") -> plt.Axes:
    """An NGAC policy (``policy.graph`` with a ``kind`` per node, ``policy.associations``) as boxes:
    users and their attributes on the left, objects and theirs on the right, policy classes on
    top; associations as dashed arrows from user attribute to object attribute, named by their rights."""
    graph = policy.graph
    kinds = dict(graph.nodes(data="kind"))
    unknown = sorted({kind for kind in kinds.values() if kind not in _NGAC_NAMES})
    if unknown:
        raise ValueError(f"unknown NGAC element kind(s) {unknown}; accepted: {', '.join(_NGAC_NAMES)}")
    links = nx.Graph(graph.to_undirected())
    links.add_edges_from((a.user_attribute, a.object_attribute) for a in policy.associations)
    columns = _order_columns(links, [[n for n in graph if kinds[n] == kind] for kind in _NGAC_COLUMNS])
    classes = sorted(n for n in graph if kinds[n] == "pc")
    label_h = _measure("Ag")[1]
    box_w = {n: _measure(n)[0] + 0.16 for n in graph}
    column_w = [max((box_w[n] for n in column), default=0.5) for column in columns]
    rights = {(a.user_attribute, a.object_attribute): ", ".join(sorted(a.rights)) for a in policy.associations}
    middle_gap = max([_measure(r)[0] for r in rights.values()] + [0.8]) + 0.7
    gaps = [0.6, middle_gap, 0.6]
    node_h, pitch_y = label_h + 0.1, label_h + 0.42
    content_w = sum(column_w) + sum(gaps)
    width = min(MAX_WIDTH, max(content_w, sum(box_w[c] for c in classes) + 0.4 * len(classes)) + 2 * MARGIN)
    entries = [(f"{name} ({kind})", {"color": _NGAC_FILLS[kind]}) for kind, name in _NGAC_NAMES.items()]
    entries += [("assignment", {"linestyle": "-"}), ("association: rights", {"linestyle": "--", "color": ROLE_COLOURS["proxy"]})]
    rows = max(len(column) for column in columns)
    ax = _framed(title, entries, width, (rows + 1) * pitch_y + MARGIN, after=0.15)
    boxes, x = {}, (width - content_w) / 2
    middle = MARGIN + rows * pitch_y / 2
    for index, column in enumerate(columns):
        centre = x + column_w[index] / 2
        for i, node in enumerate(column):
            boxes[node] = _Box(centre, middle + ((len(column) - 1) / 2 - i) * pitch_y, box_w[node], node_h)
        x += column_w[index] + (gaps[index] if index < len(gaps) else 0)
    class_y, class_x = MARGIN + rows * pitch_y + pitch_y / 2, width / 2 - (sum(box_w[c] for c in classes) + 0.4 * (len(classes) - 1)) / 2
    for node in classes:
        boxes[node] = _Box(class_x + box_w[node] / 2, class_y, box_w[node], node_h)
        class_x += box_w[node] + 0.4
    for child, parent in graph.edges:
        _arrow(ax, boxes[child], boxes[parent])
    taken = list(boxes.values())
    for (user_attribute, object_attribute), allowed in rights.items():
        start, end = boxes[user_attribute], boxes[object_attribute]
        _arrow(ax, start, end, color=ROLE_COLOURS["proxy"], linestyle="--", linewidth=1.1)
        (x0, y0), (x1, y1) = start.edge_toward(end.x, end.y), end.edge_toward(start.x, start.y)
        size = _measure(allowed)
        spots = [_Box(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t, size[0] + 0.1, size[1] + 0.04) for t in (0.5, 0.35, 0.65, 0.25, 0.75, 0.15, 0.85)]
        spot = next((spot for spot in spots if not any(spot.overlaps(other) for other in taken)), spots[0])
        taken.append(spot)
        ax.text(spot.x, spot.y, allowed, ha="center", va="center", fontsize=LABEL_PT, zorder=4,
                bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none"})
    for node, box in boxes.items():
        _labelled_box(ax, box, node, _NGAC_FILLS[kinds[node]])
    return ax


# -- strips of boxes: request paths and packet walks ---------------------------------------------


def _wrap_to(text: str, width: float) -> str:
    """``text`` broken at spaces onto as few lines as keep it within ``width`` inches (a single
    word longer than that stays whole)."""
    for chars in range(len(text), 0, -1):
        wrapped = "\n".join(textwrap.wrap(text, chars, break_long_words=False, break_on_hyphens=False))
        if _measure(wrapped)[0] <= width:
            return wrapped or " "
    return "\n".join(text.split()) or " "


def _draw_strip(boxes: Sequence[tuple[str, str, str]], title: str) -> plt.Axes:
    """(label, caption, role) boxes joined by arrows, caption under each; rows snake left to right,
    then right to left, so the figure stays within MAX_WIDTH whatever the number of boxes."""
    if not boxes:
        raise ValueError("nothing to draw: the path has no steps")
    box_w = max(1.1, max(_measure(label, weight="bold")[0] for label, _, _ in boxes) + 0.2)
    captions = [_wrap_to(caption, box_w) for _, caption, _ in boxes]
    box_w = max(box_w, max(_measure(caption)[0] for caption in captions))
    box_h = max(_measure(label, weight="bold")[1] for label, _, _ in boxes) + 0.24
    caption_h = max(_measure(caption)[1] for caption in captions)
    gap = 0.35
    per_row = max(1, min(len(boxes), int((MAX_WIDTH - 2 * MARGIN) // (box_w + gap))))
    rows = math.ceil(len(boxes) / per_row)
    content_w = per_row * box_w + (per_row - 1) * gap + (gap if rows > 1 else 0)
    width = min(MAX_WIDTH, max(4.0, content_w + 2 * MARGIN))
    roles = list(dict.fromkeys(role for _, _, role in boxes))
    pitch_y = box_h + caption_h + 0.3
    body_top = rows * pitch_y + MARGIN
    ax = _framed(title, [(role, {"color": ROLE_COLOURS[role]}) for role in roles], width, body_top)
    left = (width - content_w) / 2 + box_w / 2
    placed = []
    for index, (label, _, role) in enumerate(boxes):
        row, position = divmod(index, per_row)
        column = position if row % 2 == 0 else per_row - 1 - position
        box = _Box(left + column * (box_w + gap), body_top - row * pitch_y - box_h / 2, box_w, box_h)
        _labelled_box(ax, box, label, ROLE_COLOURS[role], weight="bold")
        ax.text(box.x, box.y - box_h / 2 - 0.05, captions[index], ha="center", va="top", fontsize=LABEL_PT)
        if index and placed[-1].y == box.y:
            _arrow(ax, placed[-1], box, color="black")
        elif index:  # the turn at the end of a row: out of the side, down, and back in
            side = 1 if column == per_row - 1 else -1
            outer = box.x + side * (box_w / 2 + gap * 0.6)
            ax.plot([placed[-1].x + side * box_w / 2, outer, outer], [placed[-1].y, placed[-1].y, box.y], color="black", linewidth=0.8)
            ax.annotate("", xy=(box.x + side * box_w / 2, box.y), xytext=(outer, box.y), arrowprops={"arrowstyle": "-|>", "mutation_scale": 9, "color": "black", "shrinkA": 0, "shrinkB": 1})
        placed.append(box)
    return ax


def draw_sequence(participants: Sequence[str], messages: Sequence, title: str) -> plt.Axes:
    """A sequence diagram: a lifeline per participant (left to right) and, top to bottom, one arrow
    per message (meshlab.viz.sequence.Message) in its role's colour, its label above it, wrapped to
    the page and kept inside it."""
    unknown = sorted({end for m in messages for end in (m.sender, m.receiver)} - set(participants))
    if unknown:
        raise ValueError(f"messages name participants {unknown} not in {list(participants)}")
    roles = sorted({m.role for m in messages} - set(ROLE_COLOURS))
    if roles:
        raise ValueError(f"unknown roles {roles}; roles are {', '.join(ROLE_COLOURS)}")
    names = [_measure(name, weight="bold")[0] for name in participants]
    widest = max([_measure(m.label)[0] for m in messages] + [sum(names) + 0.6 * len(names)])
    width = min(MAX_WIDTH, max(5.0, widest + 2 * MARGIN + 0.2))
    title = _fit_title(title, width)
    labels = [_wrap_to(m.label, width - 2 * MARGIN) for m in messages]
    pitch = [_measure(label)[1] + 0.22 for label in labels]
    title_h, name_h = _measure(title, TITLE_PT, "bold")[1], _measure("Ag", weight="bold")[1]
    header = MARGIN + title_h + 0.15 + name_h + 0.1
    height = header + sum(pitch) + MARGIN + 0.1
    ax = _canvas(width, height)
    _title(ax, title, width, height - MARGIN)
    x = {name: MARGIN + (index + 0.5) * (width - 2 * MARGIN) / len(participants) for index, name in enumerate(participants)}
    top = height - header
    for name in participants:
        ax.text(x[name], top + 0.08, name, ha="center", va="bottom", fontsize=LABEL_PT, weight="bold")
        ax.plot([x[name], x[name]], [MARGIN, top], color="#999999", linewidth=1)
    y = top
    for message, label, step in zip(messages, labels, pitch):
        y -= step
        start, end, colour = x[message.sender], x[message.receiver], ROLE_COLOURS[message.role]
        ax.annotate("", xy=(end, y), xytext=(start, y), arrowprops={"arrowstyle": "-|>", "color": colour, "lw": 1.4, "shrinkA": 0, "shrinkB": 0})
        half = _measure(label)[0] / 2
        centre = min(max((start + end) / 2, MARGIN + half), width - MARGIN - half)
        ax.text(centre, y + 0.04, label, ha="center", va="bottom", fontsize=LABEL_PT, color=colour)
    return ax


def draw_request_path(hops: Sequence, title: str = "Request path") -> plt.Axes:
    """Hops (objects with ``name``, ``kind`` and ``where``) as boxes coloured by kind."""
    return _draw_strip([(hop.name.replace(" ", "\n", 1), hop.where, hop.kind) for hop in hops], title)


def draw_packet_walk(steps: Sequence, verdict: str, to_port: int | None = None, title: str = "Packet walk") -> plt.Axes:
    """Matched rules (objects with ``table``, ``chain`` and ``effect``) as boxes, then the verdict."""
    boxes = [(f"{step.table}:\n{step.chain}", step.effect.replace("JUMP:", "jump "), "netfilter") for step in steps]
    if to_port:
        boxes.append((f"{verdict}\n:{to_port}", "to the sidecar", "proxy"))
    else:
        boxes.append((verdict, "delivered as addressed", "app"))
    return _draw_strip(boxes, title)


# -- charts with real axes ------------------------------------------------------------------------


def _label_levels(spans: Sequence[tuple[float, float]]) -> list[int]:
    """For labels occupying [left, right] inches on one track: the lowest level (0 above the track,
    1 below, 2 further above, ...) where each fits beside the labels already on that level."""
    ends: list[float] = []
    levels = []
    for left, right in spans:
        level = next((i for i, end in enumerate(ends) if left > end + 0.08), len(ends))
        if level == len(ends):
            ends.append(right)
        else:
            ends[level] = right
        levels.append(level)
    return levels


def plot_timeline(
    tracks: Mapping[str, Sequence[tuple[float, str]]],
    xlabel: str,
    title: str,
    spans: Mapping[str, Sequence[tuple[float, float]]] | None = None,
    xlim: tuple[float, float] | None = None,
    width: float = 8.0,
) -> plt.Axes:
    """Events ``(t, label)`` as markers on one horizontal track per name; ``spans`` as bars on the
    same tracks. Labels alternate above and below their marker and move outwards until they clear
    their neighbours, so a crowded track grows taller instead of overprinting; ``xlim`` defaults
    to every event and span."""
    spans = spans or {}
    names = list(tracks) + [name for name in spans if name not in tracks]
    every_x = [t for events in tracks.values() for t, _ in events] + [x for bars in spans.values() for bar in bars for x in bar]
    if xlim is None:
        low, high = (min(every_x), max(every_x)) if every_x else (0.0, 1.0)
        pad = (high - low) * 0.03 or 1.0
        xlim = (low - pad, high + pad)
    name_w = max(_measure(name, 10)[0] for name in names) + 0.25
    plot_w = width - name_w - 2 * MARGIN
    label_h = _measure("Ag")[1]

    def inches(x: float) -> float:
        return (x - xlim[0]) / (xlim[1] - xlim[0]) * plot_w

    placed = {}
    for name in names:
        events = sorted((t, label) for t, label in tracks.get(name, ()) if xlim[0] <= t <= xlim[1])
        boxes = []
        for t, label in events:
            w = _measure(label)[0] if label else 0.0
            left = min(max(inches(t) - w / 2, 0.0), plot_w - w)
            boxes.append((t, label, left, w))
        placed[name] = (boxes, _label_levels([(left, left + w) for _, _, left, w in boxes]))
    track_h = {name: 2 * (0.1 + math.ceil((max(levels, default=-1) + 1) / 2) * (label_h + 0.04)) for name, (_, levels) in placed.items()}
    title_h = _measure(title, TITLE_PT, "bold")[1]
    bottom, top = 0.55 + MARGIN, MARGIN + title_h + 0.15
    height = bottom + sum(track_h.values()) + top
    figure = _fixed_figure(width, height)
    ax = figure.add_axes((MARGIN / width + name_w / width, bottom / height, plot_w / width, 1 - (bottom + top) / height))
    new_axes(title, xlabel, "", ax)
    ax.set_xlim(*xlim)
    ax.set_ylim(sum(track_h.values()), 0)
    ax.grid(axis="y", visible=False)
    centre, centres = 0.0, []
    for row, name in enumerate(names):
        colour = SERIES[row % len(SERIES)]
        y = centre + track_h[name] / 2
        centres.append(y)
        for start, end in spans.get(name, ()):
            ax.barh(y, end - start, left=start, height=0.2, color=colour, alpha=0.35)
        boxes, levels = placed[name]
        for (t, label, left, w), level in zip(boxes, levels, strict=True):
            ax.plot(t, y, "o", color=colour, markersize=5, clip_on=False)
            if not label:
                continue
            above = level % 2 == 0
            offset = 72 * ((level // 2) * (label_h + 0.04) + 0.07)  # points
            ax.annotate(label, (xlim[0] + (left + w / 2) / plot_w * (xlim[1] - xlim[0]), y), xytext=(0, offset if above else -offset),
                        textcoords="offset points", fontsize=LABEL_PT, ha="center", va="bottom" if above else "top", annotation_clip=False)
        centre += track_h[name]
    ax.set_yticks(centres, names)
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
    ax.legend(loc="lower right", fontsize=LABEL_PT)
    return ax
