"""Widget helpers: the same slider look everywhere, and figures that redraw on change.

    slider              an integer or float slider with a readable description width
    interactive_figure  re-run a plotting function whenever its controls change
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets

_STYLE = {"description_width": "initial"}
_LAYOUT = widgets.Layout(width="420px")


def slider(description: str, value: float, minimum: float, maximum: float, step: float = 1) -> widgets.ValueWidget:
    """An IntSlider when every bound is an int, a FloatSlider otherwise; continuous_update off,
    so a figure redraws once per move rather than on every pixel of a drag."""
    numbers = (value, minimum, maximum, step)
    kind = widgets.IntSlider if all(isinstance(n, int) for n in numbers) else widgets.FloatSlider
    return kind(value=value, min=minimum, max=maximum, step=step, description=description, style=_STYLE, layout=_LAYOUT, continuous_update=False)


def interactive_figure(draw: Callable[..., object], **controls: widgets.ValueWidget) -> widgets.interactive:
    """``draw(**values)`` is called with the controls' values now and on every change."""
    return widgets.interactive(draw, **controls)
