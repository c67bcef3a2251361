"""Finite-width fluctuations: the law of the normalised squared length ``M_L`` at several widths.

For a He-initialised ReLU net (Gaussian weights, ``sigma_w2 = 2``, no bias)
and a fixed-norm input, ``M_L = (||x^L||^2 / n_L) / (||x^0||^2 / n_0)`` has
``E[M_L] = 1`` and ``E[M_L^2] = prod_l (1 + 5 / n_l)`` (Hanin and Rolnick
2018): the mean is kept at every width, the spread grows like ``exp(5 L / n)``.
For other nets the figure uses ``M_L = q^L / E[q^L]`` with the moments of
:func:`initsim.theory.finite_width.q_moments`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.ticker import NullFormatter

from initsim.checks import TheoryInputs, theory_inputs
from initsim.report._common import (
    cell_labels,
    cells_inputs_phrase,
    finish,
    fit_log_axis,
    fmt,
    new_page,
    seed_phrase,
)
from initsim.result import mean_and_se

__all__ = ["finite_width_figure", "length_ratio"]


def _is_he_relu(ti: TheoryInputs) -> bool:
    return (
        ti.activation.name == "relu"
        and ti.law == "gaussian"
        and bool(np.allclose(ti.sigma_w2, 2.0, rtol=1e-12))
        and ti.sigma_b2 == 0.0
        and ti.input == "sphere"
    )


def length_ratio(result: Any) -> tuple[np.ndarray, float, str]:
    """Per-net ``M_L`` and the theory's ``E[M_L^2]``.

    Parameters
    ----------
    result : SimulationResult
        A simulation (one input per net).

    Returns
    -------
    (numpy.ndarray, float, str)
        ``M_L`` per net, the predicted ``E[M_L^2]`` and which definition was
        used ("length": ``||x^L||^2 / n_L`` over ``q^0 = 1``, He ReLU, exact;
        "q": ``q^L / E[q^L]``, delta-method moments).
    """
    from initsim import theory
    from initsim.theory import finite_width

    ti = theory_inputs(result)[0]
    if ti is None:
        raise ValueError("finite-width: the theory does not cover these weights")
    depth = len(ti.widths) - 1
    if _is_he_relu(ti):
        sq = result.act_var[:, depth - 1] + result.act_mean[:, depth - 1] ** 2
        return np.asarray(sq, dtype=float), theory.relu_length_moments(ti.widths)[1], "length"
    # a diverging net's moments overflow to inf/NaN: M_L is then NaN and not drawn
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        mean, var, _ = finite_width.q_moments(
            ti.activation, ti.sigma_w2, ti.sigma_b2, ti.q0, ti.widths, ti.q0_var
        )
    m, v = float(mean[-1]), float(var[-1])
    return result.q[:, depth - 1] / m, (v + m * m) / (m * m), "q"


def finite_width_figure(
    study: Any, cells: Sequence[Any], options: dict[str, Any]
) -> tuple[Any, str]:
    """Histograms of ``M_L`` per width and ``E[M_L^2]`` against width with the theory.

    Parameters
    ----------
    study : StudyResults-like
        The study.
    cells : sequence of Cell-like
        "simulate" cells that differ in width.
    options : dict
        ``title``.

    Returns
    -------
    (Figure, str)
        The page and its caption.
    """
    fig, axes = new_page(1, 2)
    ax_h, ax_m = axes[0]
    rows = []
    # "width n", and every other parameter that varies between the cells
    labels, _ = cell_labels(cells, ("width",))
    for c, label in zip(cells, labels, strict=True):
        m, em2, kind = length_ratio(c.result)
        widths = c.result.provenance["config"]["widths"]
        rows.append((min(widths[1:]), m, em2, kind, widths, c, label))
    rows.sort(key=lambda r: r[0])
    kinds = sorted({r[3] for r in rows})
    all_m = np.concatenate([r[1][np.isfinite(r[1]) & (r[1] > 0)] for r in rows])
    lo, hi = np.quantile(all_m, [0.001, 0.999]) if all_m.size else (0.1, 10.0)
    bins = np.geomspace(max(lo, 1e-6), max(hi, lo * 1.01), 60)
    lines = []
    for k, (n, m, em2, _, _, _, label) in enumerate(rows):
        colour = f"C{k % 10}"
        good = m[np.isfinite(m) & (m > 0)]
        counts, _ = np.histogram(good, bins)
        dens = counts / max(good.size, 1) / np.diff(np.log10(bins))
        ax_h.stairs(dens, bins, color=colour, lw=1.4, label=label)
        nets = m.size
        with np.errstate(over="ignore", invalid="ignore"):  # NaN/inf M_L: not finite
            m2 = m**2
            est = float(np.mean(m2))
            half = 1.96 * float(np.std(m2, ddof=1)) / np.sqrt(nets) if nets > 1 else np.nan
        if nets > 1 and not (math.isfinite(est) and math.isfinite(half)):
            est, se = mean_and_se(m2)  # finite values whose squares overflow
            half = 1.96 * se
        ax_m.errorbar([n], [est], yerr=[[half], [half]], fmt="o", color=colour, capsize=3, ms=5)
        ax_m.plot([n], [float(np.mean(m))], "s", mfc="none", color=colour, ms=5)
        lines.append(
            f"{label}: E[M^2] = {fmt(est)} +- {fmt(half, 2)} (theory {fmt(em2)}), "
            f"E[M] = {fmt(float(np.mean(m)))}"
        )
    depth = len(rows[0][4]) - 1
    ax_h.axvline(1.0, color="k", ls="--", lw=0.8)
    fit_log_axis(ax_h, "x")  # log scale
    ax_h.set_xlabel("M_L (log scale)")
    ax_h.set_ylabel("density per unit of log10 M_L")
    ax_h.set_title(f"law of M_L at depth L = {depth}", fontsize=10)
    ax_h.legend(fontsize=8)
    ax_h.grid(True, alpha=0.3)
    ns = np.geomspace(min(r[0] for r in rows) * 0.8, max(r[0] for r in rows) * 1.25, 100)
    if kinds == ["length"]:
        ax_m.plot(
            ns,
            np.prod([1.0 + 5.0 / ns] * depth, axis=0),
            "k-",
            lw=1.2,
            label="theory E[M^2] = prod_l (1 + 5/n_l)",
        )
        ax_m.plot(ns, np.exp(5.0 * depth / ns), "k:", lw=1.0, label="exp(5 L / n)")
    else:
        ax_m.plot(
            [r[0] for r in rows],
            [r[2] for r in rows],
            "k-",
            lw=1.2,
            label="theory E[M^2] (finite-width delta method)",
        )
    ax_m.axhline(1.0, color="0.5", lw=0.8)
    ax_m.plot([], [], "ko", label="Monte Carlo E[M^2], 95% interval")
    ax_m.plot([], [], "ks", mfc="none", label="Monte Carlo E[M] (theory 1)")
    ax_m.set_xscale("log")
    fit_log_axis(ax_m, "y")  # log scale
    ax_m.set_xticks([r[0] for r in rows], [str(r[0]) for r in rows])
    ax_m.xaxis.set_minor_formatter(NullFormatter())
    ax_m.set_xlabel("hidden width n (log scale)")
    ax_m.set_ylabel("moment of M_L (log scale)")
    ax_m.set_title("second moment against width", fontsize=10)
    ax_m.legend(fontsize=8)
    ax_m.grid(True, which="both", alpha=0.3)

    definition = (
        "M_L = (||x^L||^2 / n_L) / (||x^0||^2 / n_0), the squared length of the last hidden "
        "layer's output relative to the input's (He-initialised ReLU, Gaussian weights, no "
        "bias, inputs on the sphere of radius sqrt(n_0)); theory E[M_L] = 1 and "
        "E[M_L^2] = prod_(l=1..L) (1 + 5/n_l) exactly (Hanin and Rolnick 2018)"
        if kinds == ["length"]
        else "M_L = q^L / E[q^L], with E[q^L] and Var(q^L) from the finite-width delta method "
        "(initsim.theory.finite_width.q_moments), so that E[M_L^2] = 1 + Var(q^L) / E[q^L]^2"
    )
    title = options.get("title") or "Finite width: fluctuations of the squared length"
    caption = (
        f"{definition}. Left: histograms of M_L over nets at each width (density per unit of "
        f"log10 M_L, log x axis; dashed: 1). Right: Monte Carlo E[M_L^2] (filled, with 95% "
        f"normal intervals over nets) and E[M_L] (open squares) against width, with the "
        f"theory line; the mean is kept at every width while the spread grows like "
        f"exp(5 L / n) as the width shrinks, so a narrow deep net's output scale is a "
        f"lottery even at the 'right' initialization. Depth L = {depth}; "
        f"{cells_inputs_phrase(cells)}; nets per width: "
        f"{', '.join(str(r[1].size) for r in rows)}. Measured: " + "; ".join(lines) + ". "
        f"{seed_phrase(study, cells)}"
    )
    finish(fig, title, caption)
    return fig, caption
