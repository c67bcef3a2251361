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
    "cell_labels",
    "cells_inputs_phrase",
    "describe_init",
    "exactness_phrase",
    "finish",
    "fit_log_axis",
    "fmt",
    "inputs_phrase",
    "new_page",
    "resolve_activation",
    "resolve_init",
    "seed_phrase",
    "sentence",
    "varying_keys",
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
        lines.extend(textwrap.wrap(para, width, break_on_hyphens=False) or [""])
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


#: Order in which parameters appear in a cell's label (others follow, sorted).
LABEL_ORDER = (
    "activation",
    "init",
    "width",
    "input_dim",
    "depth",
    "bias_std",
    "bias",
    "sizes",
    "inputs",
    "input",
    "nets",
    "method",
    "backward",
    "lr",
    "steps",
    "batch_size",
    "loss",
    "data",
    "repeats",
)
#: Parameters that say what a cell records, not which nets it draws: never in labels
#: (a histogram's range is on the figure's axis).
NOT_LABELLED = frozenset({"histograms", "device"})


def _param_value(params: Mapping[str, Any], key: str) -> Any:
    """Return a cell's parameter, or its documented default when the cell does not set it."""
    from initsim import keywords

    if key in params:
        return params[key]
    kw = keywords.SIMULATE.get(key)
    return kw.default if kw is not None else None


def _order(keys: Sequence[str]) -> list[str]:
    known = [k for k in LABEL_ORDER if k in keys]
    return known + sorted(k for k in keys if k not in LABEL_ORDER)


def varying_keys(cells: Sequence[Any]) -> list[str]:
    """Return the parameters whose value differs between some of the cells.

    Parameters
    ----------
    cells : sequence of Cell-like
        Have ``params``.

    Returns
    -------
    list of str
        In label order; parameters of :data:`NOT_LABELLED` (what is
        recorded, e.g. ``histograms``) are left out. A parameter one cell
        leaves unset counts with its default.
    """
    keys: list[str] = []
    for c in cells:
        keys.extend(k for k in c.params if k not in keys and k not in NOT_LABELLED)
    out = []
    for key in keys:
        values = [_param_value(c.params, key) for c in cells]
        if any(v != values[0] for v in values[1:]):
            out.append(key)
    return _order(out)


def _label_part(key: str, value: Any) -> str:
    if key == "init":
        return describe_init(value)
    if key == "activation":
        name, params = _named(value)
        if not params:
            return name
        return f"{name}({', '.join(f'{k}={_short(v)}' for k, v in sorted(params.items()))})"
    if key == "width" and isinstance(value, list | tuple):
        return f"widths {list(value)}"
    if key in ("nets", "inputs", "repeats", "steps"):
        return f"{_short(value)} {key}"
    if isinstance(value, Mapping):
        inner = ", ".join(f"{k}={_short(v)}" for k, v in sorted(value.items()))
        return f"{key} {{{inner}}}"
    return f"{key} {_short(value)}"


def cell_label(params: Mapping[str, Any], keys: Sequence[str] = ("activation", "init")) -> str:
    """Label of a cell from some of its parameters.

    Parameters
    ----------
    params : mapping
        The cell's resolved parameters.
    keys : sequence of str
        Which parameters to show, in order; a parameter the cell does not set
        is shown with its default (``bias_std 0``), one without a default is
        skipped.

    Returns
    -------
    str
        E.g. ``"tanh, lecun_normal, width 64"``.
    """
    parts = []
    for key in keys:
        value = _param_value(params, key)
        if value is None:
            continue
        parts.append(_label_part(key, value))
    return ", ".join(parts)


def cell_labels(
    cells: Sequence[Any], base: Sequence[str] = ("activation", "init")
) -> tuple[list[str], list[str]]:
    """Labels that tell the cells of a figure apart: the base keys and every varying one.

    Parameters
    ----------
    cells : sequence of Cell-like
        The figure's cells.
    base : sequence of str
        Parameters always shown (when the cell has them).

    Returns
    -------
    (list of str, list of str)
        One label per cell, and the keys shown (``base`` then the varying
        parameters of :func:`varying_keys` not in ``base``).
    """
    keys = [*base, *(k for k in varying_keys(cells) if k not in base)]
    return [cell_label(c.params, keys) for c in cells], keys


def sentence(text: str) -> str:
    """``text`` with its first letter capitalised (for a phrase that starts a sentence)."""
    return text[:1].upper() + text[1:]


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


def inputs_phrase(inputs: int, mode: str) -> str:
    """Say what each net is fed, e.g. ``"one input per net, uniform on the sphere ..."``.

    Parameters
    ----------
    inputs : int
        Inputs per net.
    mode : str
        ``"sphere"`` (fixed norm ``||x||^2 = n_0``) or ``"gaussian"``.

    Returns
    -------
    str
        The phrase.
    """
    what = {
        "sphere": "uniform on the sphere ||x||^2 = n_0",
        "gaussian": "with iid N(0, 1) entries, drawn per net",
    }.get(mode, f"({mode})")
    if inputs == 1:
        return f"one input per net, {what}"
    return f"{inputs} inputs per net (each net applied to all of them), {what}"


def cells_inputs_phrase(cells: Sequence[Any]) -> str:
    """Say what the nets of some cells are fed (:func:`inputs_phrase`, each case once).

    Parameters
    ----------
    cells : sequence of Cell-like
        "simulate" or "jacobian" cells.

    Returns
    -------
    str
        The phrases, ``"; "``-joined.
    """
    from initsim import keywords

    out: list[str] = []
    for c in cells:
        n = int(_param_value(c.params, "inputs") or keywords.SIMULATE["inputs"].default)
        text = inputs_phrase(n, str(_param_value(c.params, "input")))
        if text not in out:
            out.append(text)
    return "; ".join(out)


def exactness_phrase(cells: Sequence[Any]) -> str:
    """Say where the mean-field theory lines are exact, naming the figure's own activations.

    Parameters
    ----------
    cells : sequence of Cell-like
        Cells with results :func:`initsim.checks.theory_inputs` understands.

    Returns
    -------
    str
        E.g. ``" (exact at every width for the relu cells; for tanh a large-width
        approximation, ...)"`` (with its leading space), or ``""``.
    """
    from initsim.checks import theory_inputs

    exact: list[str] = []
    approx: list[str] = []
    for c in cells:
        ti = theory_inputs(c.result)[0]
        if ti is None:
            continue
        bucket = exact if ti.activation.positively_homogeneous else approx
        if ti.activation.name not in bucket:
            bucket.append(ti.activation.name)
    parts = []
    if exact:
        parts.append(f"exact at every width for the {' and '.join(exact)} cells")
    if approx:
        parts.append(
            f"for {' and '.join(approx)} an approximation that becomes exact as the width grows"
        )
    return f" ({'; '.join(parts)})" if parts else ""


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
