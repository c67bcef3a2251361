"""Helpers shared by the figure modules: page layout, captions, parameter labels.

Every figure is a :class:`matplotlib.figure.Figure` of one page
(:data:`PAGE_SIZE`, landscape) with a title at the top and its caption
drawn as text at the bottom, so the caption is part of the PDF's text.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

__all__ = [
    "PAGE_SIZE",
    "cell_label",
    "describe_init",
    "finish",
    "fit_log_axis",
    "fmt",
    "new_page",
    "resolve_activation",
    "resolve_init",
    "seed_phrase",
    "widths_text",
]

#: Page size in inches (US letter, landscape); every page of the report has it.
PAGE_SIZE = (11.0, 8.5)
#: Caption font size (points) and the characters per caption line at that size.
CAPTION_SIZE = 8.5
_CAPTION_CHARS = 158
_LINE_HEIGHT_IN = CAPTION_SIZE * 1.35 / 72.0


def new_page(nrows: int = 1, ncols: int = 1, **kwargs: Any) -> tuple[Figure, np.ndarray]:
    """Return a page-sized figure and a 2-d array of its axes.

    Parameters
    ----------
    nrows, ncols : int
        Grid of axes.
    **kwargs
        Passed to :meth:`matplotlib.figure.Figure.subplots` (e.g. ``sharex``).

    Returns
    -------
    (Figure, numpy.ndarray)
        The figure (not attached to pyplot) and its axes, shape ``(nrows, ncols)``.
    """
    fig = Figure(figsize=PAGE_SIZE)
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, axes


def wrap_caption(caption: str, width: int = _CAPTION_CHARS) -> str:
    """Wrap a caption paragraph by paragraph to the page's line length.

    Parameters
    ----------
    caption : str
        Paragraphs separated by newlines.
    width : int
        Characters per line.

    Returns
    -------
    str
        The wrapped text.
    """
    lines: list[str] = []
    for para in caption.split("\n"):
        lines.extend(textwrap.wrap(para, width) or [""])
    return "\n".join(lines)


def finish(
    fig: Figure,
    title: str,
    caption: str,
    *,
    top: float = 0.9,
    left: float = 0.07,
    right: float = 0.97,
    hspace: float = 0.35,
    wspace: float = 0.25,
    axes_gap_in: float = 0.75,
) -> str:
    """Draw the title and the caption on a figure and make room for them.

    Parameters
    ----------
    fig : Figure
        The page.
    title : str
        Title drawn at the top.
    caption : str
        Caption drawn at the bottom (wrapped to the page width).
    top, left, right, hspace, wspace : float
        Subplot parameters (figure fractions).
    axes_gap_in : float
        Space in inches between the caption and the lowest axes (for tick
        labels and the x label).

    Returns
    -------
    str
        The caption as given (unwrapped).
    """
    wrapped = wrap_caption(caption)
    n_lines = wrapped.count("\n") + 1
    height = PAGE_SIZE[1]
    caption_top = (0.3 + n_lines * _LINE_HEIGHT_IN) / height
    fig.suptitle(title, fontsize=13, fontweight="bold", y=0.975)
    fig.text(
        0.04,
        caption_top,
        wrapped,
        fontsize=CAPTION_SIZE,
        va="top",
        ha="left",
        linespacing=1.25,
    )
    bottom = min(caption_top + axes_gap_in / height, top - 0.2)
    fig.subplots_adjust(
        top=top, bottom=bottom, left=left, right=right, hspace=hspace, wspace=wspace
    )
    return caption


def fmt(x: float, digits: int = 3) -> str:
    """Format a number compactly (``g`` format; inf and NaN spelled out).

    Parameters
    ----------
    x : float
        The number.
    digits : int
        Significant digits.

    Returns
    -------
    str
        The text.
    """
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{digits}g}"


def _named(value: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(value, Mapping):
        if "name" not in value:
            raise ValueError(f"a named table needs the key 'name'; got {dict(value)!r}")
        return str(value["name"]), {str(k): v for k, v in value.items() if k != "name"}
    if isinstance(value, str):
        return value, {}
    raise ValueError(f"expected a name or a table with 'name'; got {value!r}")


def resolve_init(value: Any) -> Any:
    """Return the initializer described by a cell parameter (name or table).

    Parameters
    ----------
    value : str or mapping
        ``"he_normal"`` or ``{"name": "normal", "std": 0.01}``.

    Returns
    -------
    initsim.initializers.Initializer
        The initializer.
    """
    from initsim import initializers

    name, params = _named(value)
    return initializers.get(name, **params)


def resolve_activation(value: Any) -> Any:
    """Return the activation described by a cell parameter (name or table).

    Parameters
    ----------
    value : str or mapping
        ``"tanh"`` or ``{"name": "leaky_relu", "slope": 0.1}``.

    Returns
    -------
    initsim.activations.Activation
        The activation.
    """
    from initsim import activations

    name, params = _named(value)
    return activations.get(name, **params)


def describe_init(value: Any) -> str:
    """Short label of an initializer parameter, e.g. ``normal(std=0.01)``.

    Parameters
    ----------
    value : str or mapping
        The cell's ``init`` parameter.

    Returns
    -------
    str
        The label.
    """
    name, params = _named(value)
    if not params:
        return name
    inner = ", ".join(f"{k}={_short(v)}" for k, v in sorted(params.items()))
    return f"{name}({inner})"


def _short(v: Any) -> str:
    if isinstance(v, float):
        return fmt(v, 4)
    return str(v)


def cell_label(params: Mapping[str, Any], keys: Sequence[str] = ("activation", "init")) -> str:
    """Label of a cell from some of its parameters.

    Parameters
    ----------
    params : mapping
        The cell's resolved parameters.
    keys : sequence of str
        Which parameters to show, in order (missing ones are skipped).

    Returns
    -------
    str
        E.g. ``"tanh, lecun_normal"``.
    """
    parts = []
    for key in keys:
        if key not in params:
            continue
        value = params[key]
        if key == "init":
            parts.append(describe_init(value))
        elif key == "activation":
            parts.append(_named(value)[0] if not isinstance(value, str) else value)
        else:
            parts.append(f"{key}={_short(value)}")
    return ", ".join(parts)


def seed_phrase(study: Any, cells: Sequence[Any]) -> str:
    """Caption sentence naming the study seed and the cells' spawn keys.

    Parameters
    ----------
    study : StudyResults-like
        Has ``seed``.
    cells : sequence of Cell-like
        Have ``id`` and ``spawn_key``.

    Returns
    -------
    str
        One sentence.
    """
    keys = [f"{c.id} {tuple(int(k) for k in c.spawn_key)}" for c in cells]
    if len(keys) > 6:
        keys = [*keys[:2], f"... ({len(keys) - 4} more) ...", *keys[-2:]]
    return (
        f"Study seed {study.seed}; each cell draws its nets from SeedSequence(seed, spawn_key); "
        f"cells (spawn keys): {', '.join(keys)}."
    )


def widths_text(widths: Sequence[int]) -> str:
    """Describe a net's widths compactly, e.g. ``"input 100, 20 hidden layers of width 100"``.

    Parameters
    ----------
    widths : sequence of int
        ``n_0, n_1, ..., n_L``.

    Returns
    -------
    str
        The description.
    """
    ws = [int(w) for w in widths]
    if len(ws) < 2:
        return str(ws)
    hidden = ws[1:]
    if len(set(hidden)) == 1:
        plural = "s" if len(hidden) > 1 else ""
        return f"input dimension {ws[0]}, {len(hidden)} hidden layer{plural} of width {hidden[0]}"
    return f"input dimension {ws[0]}, hidden widths {hidden}"


def nets_phrase(results: Sequence[Any]) -> str:
    """How many nets the results hold, e.g. ``"200 nets per cell"``.

    Parameters
    ----------
    results : sequence of SimulationResult or JacobianSpectrum
        Results with a ``nets`` attribute.

    Returns
    -------
    str
        The phrase.
    """
    counts = sorted({int(r.nets) for r in results})
    if len(counts) == 1:
        return f"{counts[0]} independent random nets per cell"
    return f"{', '.join(map(str, counts))} independent random nets per cell"


#: Decades (``|log10|``) up to which matplotlib's own log-axis limits and ticks stay in range.
_LOG_SAFE_DECADES = 250.0


def fit_log_axis(ax: Any, which: str = "y") -> None:
    """Give an axis a log scale, with limits and ticks that stay inside float64.

    matplotlib pads a log axis's limits and places its ticks by raising 10 to
    a power; for data beyond about ``1e250`` (diverging nets) that overflows
    float64: a RuntimeWarning and a collapsed axis. Call this after drawing,
    instead of ``set_yscale("log")``: such an axis gets limits padded by 5 %
    of its decades, within ``[1e-300, 1e308]``, and at most 9 major ticks at
    whole decades; any other axis is left to matplotlib.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        The axes.
    which : {"x", "y"}
        The axis that gets the log scale.
    """
    set_scale = ax.set_yscale if which == "y" else ax.set_xscale
    lim = ax.dataLim
    lo, hi = (lim.minposy, lim.y1) if which == "y" else (lim.minposx, lim.x1)
    finite = math.isfinite(lo) and math.isfinite(hi) and 0.0 < lo <= hi
    a, b = (math.log10(lo), math.log10(hi)) if finite else (0.0, 0.0)
    if -_LOG_SAFE_DECADES < a and b < _LOG_SAFE_DECADES:
        set_scale("log")
        return
    from matplotlib.ticker import FixedLocator, NullLocator

    pad = 0.05 * max(b - a, 1.0)
    a0 = max(math.floor(a - pad), -300)
    b0 = min(math.ceil(b + pad), 308)
    stride = max(1, math.ceil((b0 - a0) / 8))
    ticks = 10.0 ** np.arange(a0, b0 + 1, stride, dtype=float)
    # fixed limits first: setting the scale then does not autoscale (which overflows)
    if which == "y":
        ax.set_autoscaley_on(False)
        ax.set_ylim(10.0**a0, 10.0**b0)
    else:
        ax.set_autoscalex_on(False)
        ax.set_xlim(10.0**a0, 10.0**b0)
    set_scale("log")
    axis = ax.yaxis if which == "y" else ax.xaxis
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_minor_locator(NullLocator())


def positive(values: np.ndarray) -> np.ndarray:
    """Replace non-positive and non-finite values by NaN (for log axes).

    Parameters
    ----------
    values : numpy.ndarray
        Any values.

    Returns
    -------
    numpy.ndarray
        A float copy with NaN where a log axis cannot draw.
    """
    v = np.array(values, dtype=float)
    with np.errstate(invalid="ignore"):
        v[~(np.isfinite(v) & (v > 0))] = np.nan
    return v
