"""Signal and gradient second moments against depth: Monte Carlo band and theory line."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.ticker import MaxNLocator

from initsim.checks import theory_inputs
from initsim.report._common import (
    cell_label,
    cell_labels,
    cells_inputs_phrase,
    exactness_phrase,
    finish,
    fit_log_axis,
    nets_phrase,
    new_page,
    positive,
    seed_phrase,
    varying_keys,
    widths_text,
)

__all__ = ["depth_profile_figure", "theory_profiles"]

#: How a caption names the parameters a legend shows.
_KEY_NAMES = {"activation": "activation", "init": "initializer", "bias_std": "bias std"}


_MARKERS = ("o", "s", "^", "D", "v", "P")
_LINES = ("-", "--", ":", "-.")


def _looks(
    cells: Sequence[Any], keys: Sequence[str]
) -> tuple[list[str], list[tuple[str, bool, str]], str | None]:
    """Colour per cell, and marker/line style per value of a second varying parameter.

    With a varying parameter besides activation and initializer (e.g. width),
    cells that differ only in it share a colour and differ in marker (filled,
    then open) and line style, so overlapping curves stay apart.
    """
    varying = varying_keys(cells)
    style_key = next((k for k in varying if k not in ("activation", "init")), None)
    if style_key is None:
        return [f"C{k % 10}" for k in range(len(cells))], [("o", True, "-")] * len(cells), None
    rest = [k for k in keys if k != style_key]
    groups: list[str] = []
    values: list[str] = []
    colours, styles = [], []
    for c in cells:
        group = cell_label(c.params, rest)
        value = cell_label(c.params, [style_key])
        for seen, item in ((groups, group), (values, value)):
            if item not in seen:
                seen.append(item)
        i = values.index(value)
        colours.append(f"C{groups.index(group) % 10}")
        styles.append((_MARKERS[i % len(_MARKERS)], i == 0, _LINES[i % len(_LINES)]))
    return colours, styles, style_key


def theory_profiles(result: Any) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Theory for ``E[q^l]`` and ``E[grad_sq^l]`` of a simulation.

    ``E[q^l]``: :func:`initsim.theory.finite_width.q_moments` (the mean-field map
    with the first finite-width correction; exact for positively homogeneous
    activations). ``grad_sq``: :func:`initsim.theory.grad_sq_map` (gradient
    independence; exact for positively homogeneous activations).

    Parameters
    ----------
    result : SimulationResult
        The simulation.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray or None) or None
        The two profiles (the second None without ``backward``); None when the
        theory does not cover the weights.
    """
    from initsim import theory
    from initsim.theory import finite_width

    ti = theory_inputs(result)[0]
    if ti is None:
        return None
    act = ti.activation
    with np.errstate(over="ignore", invalid="ignore"):
        mean, _, mf = finite_width.q_moments(
            act, ti.sigma_w2, ti.sigma_b2, ti.q0, ti.widths, ti.q0_var
        )
        q = mf if act.positively_homogeneous else mean
        g = None
        if result.grad_sq is not None:
            g = theory.grad_sq_map(act, ti.sigma_w2, ti.sigma_b2, ti.q0, ti.widths)
    return np.asarray(q, dtype=float), g


def depth_profile_figure(
    study: Any, cells: Sequence[Any], options: dict[str, Any]
) -> tuple[Any, str]:
    """``q^l`` and ``grad_sq^l`` against depth, one colour per cell.

    Parameters
    ----------
    study : StudyResults-like
        The study.
    cells : sequence of Cell-like
        "simulate" cells (``backward=True`` adds the gradient panel).
    options : dict
        ``title``; ``level`` (confidence level of the band, default 0.95).

    Returns
    -------
    (Figure, str)
        The page and its caption.
    """
    level = float(options.get("level", 0.95))
    if not 0.0 < level < 1.0:
        raise ValueError(f"depth-profile option 'level' must be in (0, 1); got {level}")
    has_grad = any(c.result.grad_sq is not None for c in cells)
    fig, axes = new_page(1, 2 if has_grad else 1)
    panels = [("q", "q^l = mean_i (h_i^l)^2", axes[0, 0])]
    if has_grad:
        panels.append(("grad_sq", "grad_sq^l = mean_i (dL/dh_i^l)^2", axes[0, 1]))
    labels, keys = cell_labels(cells)
    colours, styles, style_key = _looks(cells, keys)
    for k, c in enumerate(cells):
        r = c.result
        colour = colours[k]
        marker, fill, line = styles[k]
        layers = np.arange(1, r.depth + 1)
        th = theory_profiles(r)
        for name, _, ax in panels:
            if name == "grad_sq" and r.grad_sq is None:
                continue
            mean = positive(r.layer_mean(name))
            lo, hi = r.layer_interval(name, level)
            lo_p, hi_p = positive(lo), positive(hi)
            lo_p = np.where(np.isnan(lo_p), mean, lo_p)  # a band below 0 is cut at the mean
            ax.fill_between(layers, lo_p, hi_p, color=colour, alpha=0.25, lw=0)
            ax.plot(
                layers,
                mean,
                marker,
                ms=3.5,
                mfc=colour if fill else "none",
                mew=0.9,
                ls="none",
                color=colour,
                label=labels[k],
            )
            if th is not None:
                curve = th[0] if name == "q" else th[1]
                if curve is not None:
                    ax.plot(layers, positive(curve), line, lw=1.2, color=colour)
    for _, ylabel, ax in panels:
        fit_log_axis(ax)  # log scale; diverging nets reach 1e308
        ax.set_xlabel("hidden layer l")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="major", alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0, 0].set_title("forward: signal second moment", fontsize=10)
    if has_grad:
        axes[0, 1].set_title("backward: gradient second moment", fontsize=10)
    if style_key:
        seen: list[str] = []
        for c, (_, _, line) in zip(cells, styles, strict=True):
            value = cell_label(c.params, [style_key])
            if value not in seen:
                seen.append(value)
                axes[0, 0].plot([], [], "k" + line, label=f"theory, {value}")
    else:
        axes[0, 0].plot([], [], "k-", label="theory")
    axes[0, 0].plot([], [], "ko", ms=3, label=f"Monte Carlo mean, {100 * level:g}% band")
    axes[0, 0].legend(fontsize=7, loc="best")

    widths = sorted({tuple(c.result.provenance.get("config", {}).get("widths", [])) for c in cells})
    width_text = "; ".join(widths_text(w) for w in widths)
    title = options.get("title") or "Signal and gradient second moments against depth"
    grad_text = (
        "and of the back-propagated squared gradient grad_sq^l (right, loss "
        "L = u . phi(h^L) with u ~ N(0, I)), "
        if has_grad
        else ""
    )
    caption = (
        f"Per-layer mean over nets of q^l (left) {grad_text}log scale, one "
        + (
            f"colour per {', '.join(_KEY_NAMES.get(k, k) for k in keys if k != style_key)} "
            f"and one marker and line style per {_KEY_NAMES.get(style_key, style_key)}"
            if style_key
            else f"colour per cell ({', '.join(_KEY_NAMES.get(k, k) for k in keys)})"
        )
        + "; "
        f"{width_text}; {nets_phrase([c.result for c in cells])}; "
        f"{cells_inputs_phrase(cells)}. Markers: Monte Carlo means; shaded bands: "
        f"{100 * level:g}% Student-t confidence intervals of those means over nets. Lines: "
        f"theory - E[q^l] from the mean-field length map with the first finite-width "
        f"correction{exactness_phrase(cells)}"
        + (
            ", and grad_sq^l from the mean-field gradient recursion E[delta_l^2] = sigma_w2 "
            "E[phi'(h_l)^2] E[delta_(l+1)^2] (gradient independence)"
            if has_grad
            else ""
        )
        + ". Initializers that keep the curves flat across depth preserve the signal"
        + (" and the gradient. " if has_grad else ". ")
        + seed_phrase(study, cells)
    )
    finish(fig, title, caption)
    return fig, caption
