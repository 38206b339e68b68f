"""One look for every figure in the book, the figures chapters share, and widget helpers.

    style          colours by role, the page width and smallest font, rcParams, new_axes
    figures        call graphs, NGAC policies, request paths, packet walks, sequences, timelines, CDFs
    widgets        sliders and interactive figures with the book's defaults
    diagram        architecture diagrams from a declarative spec, laid out by Graphviz, with lit paths
    architectures  the diagram each chapter opens with
    sequence       messages of a protocol exchange (ADS records -> messages for draw_sequence)
    text           printed output within the page's 100 columns
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
