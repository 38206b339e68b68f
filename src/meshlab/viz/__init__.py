"""One look for every figure in the book, the figures chapters share, and widget helpers.

    style    colours by role (app, proxy, netfilter, wire, control plane), rcParams, new_axes
    figures  call graphs, request paths, timelines, latency CDFs
    widgets  sliders and interactive figures with the book's defaults
    diagram        architecture diagrams from a declarative spec, laid out by Graphviz, with lit paths
    architectures  the diagram each chapter opens with
"""

from meshlab.viz.figures import draw_call_graph, draw_packet_walk, draw_request_path, plot_latency_cdf, plot_timeline
from meshlab.viz.style import ROLE_COLOURS, new_axes, use_book_style
from meshlab.viz.widgets import interactive_figure, slider

__all__ = [
    "ROLE_COLOURS",
    "draw_call_graph",
    "draw_packet_walk",
    "draw_request_path",
    "interactive_figure",
    "new_axes",
    "plot_latency_cdf",
    "plot_timeline",
    "slider",
    "use_book_style",
]
