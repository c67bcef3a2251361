"""Order-to-chaos phase diagram in ``(sigma_w2, sigma_b2)``: theory and measured ``chi_1``.

The measured ``chi_1`` comes from the decay of the mean squared gradient
over the late layers, where ``q^l`` has settled at its fixed point ``q*``
and every layer multiplies ``E[delta^2]`` by ``chi_1`` on the way back:

``chi1_hat = (G_a / G_L)^(1 / (L - a))``, ``G_l`` = mean over nets of
``grad_sq^l``, ``a`` = the burn-in layer (default ``ceil(L / 2)``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib import colors

from initsim.checks import theory_inputs
from initsim.report._common import (
    cells_inputs_phrase,
    finish,
    fmt,
    nets_phrase,
    new_page,
    seed_phrase,
    sentence,
    widths_text,
)

__all__ = ["measured_chi1", "phase_diagram_figure"]


def measured_chi1(result: Any, burn_in: int | None = None) -> float:
    """Estimate ``chi_1`` from the per-layer decay of the mean squared gradient.

    Parameters
    ----------
    result : SimulationResult
        A simulation with ``backward=True``.
    burn_in : int, optional
        First layer ``a`` (1-based) of the fit; default ``ceil(L / 2)``.

    Returns
    -------
    float
        ``(G_a / G_L)^(1 / (L - a))``; NaN when a mean is not finite and positive.
    """
    if result.grad_sq is None:
        raise ValueError("phase-diagram needs cells run with backward = true")
    depth = result.depth
    a = math.ceil(depth / 2) if burn_in is None else int(burn_in)
    if not 1 <= a < depth:
        raise ValueError(f"phase-diagram option 'burn_in' must be in 1..{depth - 1}; got {a}")
    g = result.layer_mean("grad_sq")
    ga, gl = float(g[a - 1]), float(g[depth - 1])
    if not (math.isfinite(ga) and math.isfinite(gl) and ga > 0 and gl > 0):
        return math.nan
    return (ga / gl) ** (1.0 / (depth - a))


def phase_diagram_figure(
    study: Any, cells: Sequence[Any], options: dict[str, Any]
) -> tuple[Any, str]:
    """Theory ``chi_1`` contours, the critical line and measured ``chi_1`` at the grid cells.

    Parameters
    ----------
    study : StudyResults-like
        The study.
    cells : sequence of Cell-like
        "simulate" cells with ``backward=True``, one activation, a grid over
        the initializer's scale and ``bias_std``.
    options : dict
        ``title``; ``burn_in`` (first layer of the chi_1 fit); ``resolution``
        (theory grid points per axis, default 40).

    Returns
    -------
    (Figure, str)
        The page and its caption.
    """
    from initsim import theory

    points = []
    for c in cells:
        ti = theory_inputs(c.result)[0]
        if ti is None:
            raise ValueError(f"phase-diagram: the theory does not cover cell {c.id}'s weights")
        points.append((float(ti.sigma_w2[-1]), ti.sigma_b2, ti.activation, c))
    names = sorted({p[2].name for p in points})
    if len(names) != 1:
        raise ValueError(f"phase-diagram needs one activation across its cells; got {names}")
    act = points[0][2]
    burn_in = options.get("burn_in")
    chis = np.array([measured_chi1(p[3].result, burn_in) for p in points])
    sw = np.array([p[0] for p in points])
    sb = np.array([p[1] for p in points])
    res = int(options.get("resolution", 40))
    if res < 5:
        raise ValueError(f"phase-diagram option 'resolution' must be >= 5; got {res}")
    x_hi = 1.08 * sw.max()
    x_lo = max(0.9 * sw.min() - 0.05 * (x_hi - sw.min()), 1e-3)
    y_hi = 1.12 * sb.max() if sb.max() > 0 else 0.1
    y_lo = -0.04 * y_hi
    xs = np.linspace(x_lo, x_hi, res)
    ys = np.linspace(0.0, y_hi, max(res * 2 // 3, 5))
    grid = np.array([[theory.chi1(act, x, y) for x in xs] for y in ys])

    fig, axes = new_page(1, 1)
    ax = axes[0, 0]
    lim = 2.0  # colours span chi1 in [1/4, 4]; values beyond take the end colours
    norm = colors.Normalize(vmin=-lim, vmax=lim)
    with np.errstate(divide="ignore"):
        log_grid = np.clip(np.log2(grid), -lim, lim)
        log_chis = np.clip(np.log2(chis), -lim, lim)
    filled = ax.contourf(
        xs, ys, log_grid, levels=np.linspace(-lim, lim, 17), cmap="RdBu_r", norm=norm, alpha=0.75
    )
    levels = [0.25, 0.5, 0.75, 1.25, 1.5, 2.0]
    lines = ax.contour(xs, ys, grid, levels=levels, colors="0.35", linewidths=0.7)
    ax.clabel(lines, fmt={v: f"chi1={v:g}" for v in levels}, fontsize=7)
    sb_line = np.linspace(0.0, y_hi, 30)
    sw_line = np.array([theory.critical_sigma_w2(act, y) for y in sb_line])
    ax.plot(
        sw_line,
        sb_line,
        "k-",
        lw=2.2,
        label="critical line chi1 = 1 (theory): order to its left, chaos to its right",
    )
    ax.scatter(
        sw,
        sb,
        c=log_chis,
        cmap="RdBu_r",
        norm=norm,
        s=150,
        edgecolors="k",
        linewidths=0.8,
        zorder=3,
        label="measured chi1 (marker colour, value printed)",
    )
    for x, y, v in zip(sw, sb, chis, strict=True):
        ax.annotate(
            fmt(v, 2),
            (x, y),
            xytext=(0, 9),
            textcoords="offset points",
            fontsize=6.5,
            ha="center",
            zorder=4,
        )
    cbar = fig.colorbar(filled, ax=ax, pad=0.02)
    ticks = list(range(-int(lim), int(lim) + 1))
    cbar.set_ticks(ticks)
    cbar.set_ticklabels([f"{2.0**t:g}" for t in ticks])
    cbar.set_label("chi1 (log scale): blue ordered (gradients vanish), red chaotic (explode)")
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_lo, y_hi)
    ax.set_xlabel("sigma_w2 = n_in Var(W_ij)")
    ax.set_ylabel("sigma_b2 = Var(b_i) = bias_std^2")
    # above the axes, clear of the grid's markers and their printed values
    ax.legend(
        fontsize=8,
        loc="lower left",
        bbox_to_anchor=(0.0, 1.005),
        ncols=2,
        frameon=False,
        borderaxespad=0.0,
    )

    depth = points[0][3].result.depth
    a = math.ceil(depth / 2) if burn_in is None else int(burn_in)
    theory_at = np.array([theory.chi1(act, x, y) for x, y in zip(sw, sb, strict=True)])
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.abs(chis / theory_at - 1.0)
    widths = points[0][3].result.provenance.get("config", {}).get("widths", [])
    title = options.get("title") or f"Order-to-chaos phase diagram of {act.name} nets"
    caption = (
        f"Background: the mean-field chi1 = sigma_w2 E[phi'(sqrt(q*) z)^2] at the fixed point "
        f"q* of the length map, on a {len(xs)} x {len(ys)} grid (colour, log scale; grey "
        f"contours labelled), and the critical line chi1 = 1 (black) where signals neither "
        f"converge nor decorrelate and gradients neither vanish nor explode. Markers: "
        f"chi1 measured at each of the {len(cells)} grid cells (sigma_w2 from the "
        f"initializer's n_in Var(W), sigma_b2 = bias_std^2), estimated from the decay of the "
        f"mean squared back-propagated gradient over the late layers, where q^l has settled: "
        f"chi1_hat = (G_a / G_L)^(1/(L - a)) with G_l the mean over nets of grad_sq^l, "
        f"a = {a} and L = {depth}. Median relative difference from the theory "
        f"{fmt(float(np.nanmedian(rel)), 2)} (largest {fmt(float(np.nanmax(rel)), 2)}; "
        f"largest near the line, where q^l converges slowly). "
        f"{sentence(widths_text(widths))}; {cells_inputs_phrase(cells)}; "
        f"{nets_phrase([p[3].result for p in points])}. {seed_phrase(study, cells)}"
    )
    finish(fig, title, caption, right=0.99)
    return fig, caption
