"""WCAG's contrast ratio, computed here independently of meshlab.viz.figures.readable_on, which the
legibility tests check."""

import matplotlib.colors as mcolors


def contrast(foreground, background) -> float:
    def luminance(colour):
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in mcolors.to_rgb(colour)]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)
