"""Architecture diagrams from a small declarative spec, laid out by Graphviz.

A chapter opens with a picture of the system it teaches. The picture is data, not a drawing: boxes
(with optional ports, e.g. a sidecar's 15001 and 15006), groups (a pod, a node, istiod) and arrows
between boxes or ports. Graphviz's ``dot`` places them, so nothing overlaps however the spec grows,
and because the spec is data a live cell can light up what really happened: ``diagram.lit(...)``
draws the named arrows and boxes strong and greys the rest (the chain hops a packet took, the
request's path through both sidecars).

Legibility is part of the spec, not left to chance: every font is at least the book's ``MIN_FONT_PT`` (meshlab.viz.style) and
``measure`` reads back the laid-out text boxes from Graphviz's own JSON output, so a test can prove
no label is small, clipped or overlapping, and that the diagram is narrow enough to be shown at 100%.

    Box, Group, Arrow   the parts of a spec; a Box's ``ports`` are named cells arrows can end on
    Diagram             a spec: validated on construction; ``lit``, ``dot_source``, ``svg``, ``measure``
    Layout              what ``measure`` returns: width, fonts, and each text's box in points
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field, replace
from itertools import combinations

from meshlab.viz.figures import readable_on
from meshlab.viz.style import PAGE_PX, ROLE_COLOURS

#: Widest diagram (points) that JupyterLab shows at 100%: the page, at SVG's 96 px per 72 pt.
MAX_WIDTH_PT = PAGE_PX * 72 / 96

FONT = "Helvetica"
FONT_PT = {"box": 11.0, "port": 10.0, "arrow": 9.5, "group": 10.5, "title": 12.5}
#: Fill of every group; its border takes the colour of the group's role, a box the colour of its own.
GROUP_FILL = "#f4f4f4"
#: Box colours: the book's roles, and grey for what the book has not written yet.
BOX_COLOURS = {**ROLE_COLOURS, "planned": "#9a9a9a"}
LIT = "#c0392b"
DIM = "#a8a8a8"
ARROW_STYLES = {"data": "solid", "control": "dashed", "config": "dotted"}


@dataclass(frozen=True)
class Box:
    """One part of the system: an app, a proxy, a chain, a server. ``ports`` label the box's cells."""

    id: str
    label: str
    role: str = "app"
    ports: tuple[str, ...] = ()


@dataclass(frozen=True)
class Group:
    """A boundary drawn around boxes and smaller groups: a pod, a node, a network namespace."""

    id: str
    label: str
    members: tuple[str, ...]
    role: str = ""


@dataclass(frozen=True)
class Arrow:
    """A call, a packet or a configuration flow. Ends are ``box`` or ``box:port``.

    ``kind`` is "data" (solid), "control" (dashed) or "config" (dotted); ``id`` names the arrow
    for ``Diagram.lit`` (default ``source->target``)."""

    source: str
    target: str
    label: str = ""
    kind: str = "data"
    id: str = ""

    @property
    def name(self) -> str:
        return self.id or f"{self.source}->{self.target}"


@dataclass(frozen=True)
class Layout:
    """Graphviz's layout of a diagram, in points: its size, every font used, every text's box."""

    width: float
    height: float
    fonts: tuple[float, ...]
    texts: tuple[tuple[str, float, float, float, float], ...]  # (text, x0, y0, x1, y1)

    def overlaps(self) -> list[tuple[str, str]]:
        """Pairs of texts whose boxes intersect (1 pt of slack for rounding)."""
        found = []
        for (a, ax0, ay0, ax1, ay1), (b, bx0, by0, bx1, by1) in combinations(self.texts, 2):
            if ax0 < bx1 - 1 and bx0 < ax1 - 1 and ay0 < by1 - 1 and by0 < ay1 - 1:
                found.append((a, b))
        return found

    def outside(self) -> list[str]:
        """Texts that reach beyond the drawing (clipped when shown)."""
        return [t for t, x0, y0, x1, y1 in self.texts if x0 < -1 or y0 < -1 or x1 > self.width + 1 or y1 > self.height + 1]


@dataclass(frozen=True, repr=False)
class Diagram:
    """A titled spec of boxes, groups and arrows, laid out left to right (``direction="TB"`` for top down)."""

    title: str
    boxes: tuple[Box, ...]
    arrows: tuple[Arrow, ...] = ()
    groups: tuple[Group, ...] = ()
    direction: str = "LR"
    lit_names: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        for box in self.boxes:
            if box.role not in BOX_COLOURS:
                raise ValueError(f"box {box.id!r}: role {box.role!r}; accepted: {', '.join(BOX_COLOURS)}")
        ids = [box.id for box in self.boxes] + [group.id for group in self.groups]
        duplicate = sorted({i for i in ids if ids.count(i) > 1})
        if duplicate:
            raise ValueError(f"diagram {self.title!r}: ids used twice: {', '.join(duplicate)}")
        if self.direction not in ("LR", "TB"):
            raise ValueError(f"diagram {self.title!r}: direction {self.direction!r}; accepted: LR, TB")
        known = set(ids)
        for group in self.groups:
            unknown = [m for m in group.members if m not in known]
            if unknown:
                raise ValueError(f"group {group.id!r} names unknown members {unknown}; known: {sorted(known)}")
        ports = {box.id: set(box.ports) for box in self.boxes}
        for arrow in self.arrows:
            if arrow.kind not in ARROW_STYLES:
                raise ValueError(f"arrow {arrow.name!r}: kind {arrow.kind!r}; accepted: {', '.join(ARROW_STYLES)}")
            for end in (arrow.source, arrow.target):
                box, _, port = end.partition(":")
                if box not in ports:
                    raise ValueError(f"arrow {arrow.name!r} ends at unknown box {box!r}; boxes: {sorted(ports)}")
                if port and port not in ports[box]:
                    raise ValueError(f"arrow {arrow.name!r}: box {box!r} has no port {port!r}; ports: {sorted(ports[box])}")
        names = [arrow.name for arrow in self.arrows]
        if len(set(names)) != len(names):
            raise ValueError(f"diagram {self.title!r}: two arrows share a name; give them ids")
        self._check_lit(self.lit_names)

    def __repr__(self) -> str:
        return f"<Diagram: {len(self.boxes)} boxes, {len(self.arrows)} arrows>"

    def _check_lit(self, names) -> None:
        known = {a.name for a in self.arrows} | {b.id for b in self.boxes}
        unknown = sorted(set(names) - known)
        if unknown:
            raise ValueError(f"diagram {self.title!r} has nothing named {unknown}; arrows and boxes: {sorted(known)}")

    def lit(self, *names: str, title: str | None = None) -> Diagram:
        """The same diagram with the named arrows and boxes drawn strong and everything else grey
        (a name nothing carries is refused when the copy is made)."""
        return replace(self, lit_names=frozenset(names), title=title or self.title)

    # -- Graphviz ---------------------------------------------------------------------------

    def _box_label(self, box: Box) -> str:
        fill = BOX_COLOURS[box.role]  # boxes keep their colour; a lit box gets a red frame
        frame = f'BORDER="3" COLOR="{LIT}"' if box.id in self.lit_names else f'BORDER="0" COLOR="{fill}"'
        head = (f'<TR><TD BGCOLOR="{fill}" COLSPAN="{max(1, len(box.ports))}" CELLPADDING="5">'
                f'<FONT COLOR="{readable_on(fill)}" POINT-SIZE="{FONT_PT["box"]}">{html.escape(box.label).replace(chr(10), "<BR/>")}</FONT></TD></TR>')
        cells = "".join(f'<TD PORT="{html.escape(p)}" BGCOLOR="white" CELLPADDING="3"><FONT POINT-SIZE="{FONT_PT["port"]}">{html.escape(p)}</FONT></TD>'
                        for p in box.ports)
        ports = f"<TR>{cells}</TR>" if cells else ""
        return f'<<TABLE {frame} CELLBORDER="1" CELLSPACING="0">{head}{ports}</TABLE>>'

    def dot_source(self) -> str:
        """The diagram as Graphviz DOT text (fonts, colours and clusters already set)."""
        import graphviz

        graph = graphviz.Digraph(name="meshlab", graph_attr={
            "rankdir": self.direction, "label": self.title, "labelloc": "t", "fontname": f"{FONT} Bold",
            "fontsize": str(FONT_PT["title"]), "nodesep": "0.22", "ranksep": "0.45", "compound": "true",
            "newrank": "true", "pad": "0.1"})
        graph.attr("node", shape="plain", fontname=FONT)
        graph.attr("edge", fontname=FONT, fontsize=str(FONT_PT["arrow"]), arrowsize="0.7")
        inside = {m for group in self.groups for m in group.members}
        groups = {group.id: group for group in self.groups}

        def add(target, member: str) -> None:
            if member in groups:
                group = groups[member]
                with target.subgraph(name=f"cluster_{group.id}") as sub:
                    colour = ROLE_COLOURS.get(group.role, "#777777")
                    sub.attr(label=group.label, fontsize=str(FONT_PT["group"]), fontname=FONT, style="rounded,filled",
                             fillcolor=GROUP_FILL, color=colour if not self.lit_names else DIM, labeljust="l")
                    for inner in group.members:
                        add(sub, inner)
            else:
                box = next(b for b in self.boxes if b.id == member)
                target.node(box.id, label=self._box_label(box))

        for member in [g.id for g in self.groups] + [b.id for b in self.boxes]:
            if member not in inside:
                add(graph, member)
        for arrow in self.arrows:
            strong = arrow.name in self.lit_names
            colour = (LIT if strong else DIM) if self.lit_names else "#555555"
            graph.edge(arrow.source, arrow.target, label=f" {arrow.label} " if arrow.label else "", color=colour,
                       fontcolor=colour if self.lit_names else "#333333", style=ARROW_STYLES[arrow.kind],
                       penwidth="2.2" if strong else "1.1")
        return graph.source

    def _pipe(self, fmt: str) -> bytes:
        import graphviz

        try:
            return graphviz.Source(self.dot_source()).pipe(format=fmt)
        except graphviz.ExecutableNotFound:
            raise RuntimeError("drawing a diagram needs Graphviz's dot program: apt-get install graphviz "
                               "(make test installs it as root; the stored chapters show the diagrams already)") from None

    def svg(self) -> str:
        return self._pipe("svg").decode()

    def _repr_svg_(self) -> str:
        return self.svg()

    def measure(self) -> Layout:
        """Lay the diagram out and read back sizes and text boxes (points) from Graphviz's JSON."""
        laid = json.loads(self._pipe("json"))
        x0, y0, x1, y1 = (float(v) for v in laid["bb"].split(","))
        texts, fonts = [], []
        for item in [laid, *laid.get("objects", []), *laid.get("edges", [])]:
            for key in ("_ldraw_", "_hldraw_", "_tldraw_"):
                size = None
                for op in item.get(key, []):
                    if op["op"] == "F":
                        size = float(op["size"])
                    elif op["op"] == "T":
                        fonts.append(size)
                        x, y, w = float(op["pt"][0]), float(op["pt"][1]), float(op["width"])
                        left = {"l": x, "c": x - w / 2, "r": x - w}[op["align"]]
                        texts.append((op["text"], left - x0, y - 0.25 * size - y0, left + w - x0, y + 0.75 * size - y0))
        return Layout(width=x1 - x0, height=y1 - y0, fonts=tuple(fonts), texts=tuple(texts))
