"""The one colour convention for signed values (weights, sums, products, gradients): red above zero, blue below.

ColorBrewer's diverging RdBu, reversed: safe for colour-blind eyes, near-white at zero. Every figure and image that
shows a signed value uses it, so "red weighs up, blue down" means the same on every page.
"""
from __future__ import annotations

# negative (dark blue) → 0 (near-white) → positive (dark red), evenly spaced
SIGNED_COLOURS = ("#053061", "#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7",
                  "#fddbc7", "#f4a582", "#d6604d", "#b2182b", "#67001f")
SIGNED_SCALE = tuple((i / (len(SIGNED_COLOURS) - 1), c) for i, c in enumerate(SIGNED_COLOURS))  # plotly colorscale
NEGATIVE_COLOUR, POSITIVE_COLOUR = SIGNED_COLOURS[1], SIGNED_COLOURS[-2]  # for bars: strong, not the darkest ends
