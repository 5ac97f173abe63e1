"""Colour classes for choropleths: quantile breaks over a sequential palette.

Quantiles keep every class populated however skewed the counts are (a few busy grids would
otherwise paint the rest one colour). Zero has its own pale class so "nothing reported" reads
differently from "a little".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# ColorBrewer YlOrRd, 6 classes (sequential, colour-blind safe, prints in greyscale).
YLORRD = ("#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#f03b20", "#bd0026")
ZERO = "#f0f0f0"
MISSING = "#cccccc"


@dataclass(frozen=True)
class Classes:
    """Upper bounds of each class (inclusive) and its colour; values of 0 get :data:`ZERO`."""

    bounds: tuple[float, ...]
    colours: tuple[str, ...]

    def colour(self, value) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return MISSING
        if value == 0:
            return ZERO
        for bound, colour in zip(self.bounds, self.colours, strict=True):
            if value <= bound:
                return colour
        return self.colours[-1]

    def labels(self, decimals: int = 0) -> list[tuple[str, str]]:
        """(colour, "lo – hi") per class, for a legend, starting with zero."""
        out, lo = [(ZERO, "0")], 0.0
        integral = decimals == 0 and all(float(b).is_integer() for b in self.bounds)
        for bound, colour in zip(self.bounds, self.colours, strict=True):
            start = lo + 1 if integral else lo  # counts: 1–2, 3–5 rather than 0–2, 2–5
            label = (_fmt(bound, 0) if integral and start == bound
                     else f"{_fmt(start, decimals)} – {_fmt(bound, decimals)}")
            out.append((colour, label))
            lo = bound
        return out


def _fmt(x: float, decimals: int) -> str:
    return f"{x:,.{decimals}f}"


def quantile_classes(values, n: int = len(YLORRD), palette=YLORRD) -> Classes:
    """Quantile classes of the positive, finite ``values`` (at most ``n``, fewer when the values
    have fewer distinct levels)."""
    v = np.asarray([x for x in values if x is not None], dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size == 0:
        return Classes((1.0,), (palette[0],))
    bounds = np.unique(np.quantile(v, np.linspace(0, 1, n + 1)[1:]))
    colours = _spread(palette, len(bounds))
    return Classes(tuple(float(b) for b in bounds), colours)


def _spread(palette, k: int) -> tuple[str, ...]:
    """k colours from the palette, spread over its range (darkest kept for the top class)."""
    if k >= len(palette):
        return tuple(palette)
    idx = np.round(np.linspace(0, len(palette) - 1, k)).astype(int)
    return tuple(palette[i] for i in idx)
