"""The book's visual style: one palette keyed by role, and matplotlib settings.

A colour always means the same thing in every chapter: blue is an application,
orange a proxy, grey the kernel's netfilter, green the wire, purple the control
plane. Series without a role (e.g. "direct" vs "two sidecars") take the
``SERIES`` cycle in order, so the baseline is always the first colour.

    PAGE_PX, MIN_FONT_PT   the page width a figure must fit and the smallest text it may use
    ROLE_COLOURS    role -> colour
    SERIES          colour cycle for series without a role
    use_book_style  apply the book's rcParams (idempotent)
    new_axes        a figure with title, axis labels and units already set
"""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
from cycler import cycler

#: The book's page: JupyterLab's output area shows this many pixels unscaled (a notebook panel beside
#: the file browser, at 100% zoom); anything wider is scaled down, its text with it.
PAGE_PX = 900
#: The smallest text any figure or diagram may show, in points.
MIN_FONT_PT = 9.0

ROLE_COLOURS = {
    "app": "#3b6ea5",
    "proxy": "#e08a2c",
    "netfilter": "#8c8c8c",
    "wire": "#4a9a5b",
    "control-plane": "#7b5ea7",
    "failure": "#c0392b",
}

SERIES = ("#3b6ea5", "#e08a2c", "#4a9a5b", "#7b5ea7", "#c0392b", "#8c8c8c")

BOOK_RC = {
    "figure.figsize": (7.0, 3.6),
    "figure.dpi": 100,  # a figure w inches wide is stored w * 100 px wide: at most PAGE_PX / 100 inches
    "savefig.dpi": 150,
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.prop_cycle": cycler(color=SERIES),
    "legend.frameon": False,
    "figure.constrained_layout.use": True,
}


def use_book_style() -> None:
    """Apply the book's matplotlib settings; chapters call this once in their first cell."""
    mpl.rcParams.update(BOOK_RC)


def new_axes(title: str, xlabel: str = "", ylabel: str = "", ax: plt.Axes | None = None) -> plt.Axes:
    """Axes with the title and labels set; axis labels should carry their unit, e.g. "latency (µs)"."""
    if ax is None:
        _, ax = plt.subplots()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return ax
