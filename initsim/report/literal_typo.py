"""The seed's literal formula ``randn / sqrt(1/n)`` next to the intended ``randn * sqrt(1/n)``.

Dividing by ``sqrt(1/n)`` multiplies by ``sqrt(n)``: ``Var(W_ij) = n``
instead of ``1/n``, so ``sigma_w2 = n Var(W_ij)`` is ``n^2`` times too large.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.ticker import MaxNLocator

from initsim.checks import theory_inputs
from initsim.report._common import (
    cell_labels,
    cells_inputs_phrase,
    exactness_phrase,
    finish,
    fit_log_axis,
    fmt,
    nets_phrase,
    new_page,
    positive,
    seed_phrase,
)
from initsim.report.depth_profiles import theory_profiles

__all__ = ["literal_typo_figure"]


def literal_typo_figure(
    study: Any, cells: Sequence[Any], options: dict[str, Any]
) -> tuple[Any, str]:
    """``q^l`` (log scale) and the saturated / dead fractions per layer for each weight variance.

    Parameters
    ----------
    study : StudyResults-like
        The study.
    cells : sequence of Cell-like
        "simulate" cells, typically ``normal(std=sqrt(n))`` (the literal
        formula) and ``normal(std=sqrt(1/n))`` (the intended one).
    options : dict
        ``title``.

    Returns
    -------
    (Figure, str)
        The page and its caption.
    """
    fig, axes = new_page(1, 2)
    ax_q, ax_s = axes[0]
    lines = []
    labels, _ = cell_labels(cells)
    shown = {"dead": [], "saturated": []}
    thresholds = set()
    widths_in = set()
    for k, c in enumerate(cells):
        r = c.result
        colour = f"C{k % 10}"
        layers = np.arange(1, r.depth + 1)
        ti = theory_inputs(r)[0]
        widths = r.provenance.get("config", {}).get("widths", [])
        var_w = (
            f"Var(W)={fmt(ti.sigma_w2[-1] / widths[-2])}, sigma_w2={fmt(ti.sigma_w2[-1])}"
            if ti and len(widths) > 1
            else ""
        )
        widths_in.update(int(w) for w in widths[:-1])
        thresholds.add(float(r.provenance.get("config", {}).get("saturation_threshold", 0.01)))
        label = f"{labels[k]}: {var_w}"
        mean = positive(r.layer_mean("q"))
        lo, hi = r.layer_interval("q")
        ax_q.fill_between(
            layers,
            np.where(np.isnan(positive(lo)), mean, positive(lo)),
            positive(hi),
            color=colour,
            alpha=0.25,
            lw=0,
        )
        ax_q.plot(layers, mean, "o", ms=4, color=colour, label=label)
        th = theory_profiles(r)
        if th is not None:
            ax_q.plot(layers, positive(th[0]), "-", color=colour, lw=1.2)
            lines.append(f"{labels[k]}: q^L = {fmt(mean[-1])} (theory {fmt(th[0][-1])})")
        act = ti.activation if ti else None
        if act is not None and act.can_be_dead:
            shown["dead"].append(act.name)
            ax_s.plot(
                layers,
                r.layer_mean("dead_fraction"),
                "s--",
                ms=4,
                color=colour,
                label=f"{labels[k]}: dead units",
            )
        elif act is not None and act.positively_homogeneous:
            # piecewise linear and never 0: neither dead nor saturated (as `simulate` says)
            ax_s.plot([], [], color=colour, label=f"{labels[k]}: piecewise linear, n/a")
        else:
            shown["saturated"].append(act.name if act is not None else "?")
            ax_s.plot(
                layers,
                r.layer_mean("saturated_fraction"),
                "o-",
                ms=4,
                color=colour,
                label=f"{labels[k]}: saturated",
            )
    ax_q.plot([], [], "k-", label="mean-field theory")
    fit_log_axis(ax_q)  # log scale; diverging nets reach 1e308
    for ax in (ax_q, ax_s):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_q.set_xlabel("hidden layer l")
    ax_q.set_ylabel("q^l = mean_i (h_i^l)^2  (log scale)")
    ax_q.set_title("pre-activation second moment", fontsize=10)
    ax_q.grid(True, alpha=0.3)
    ax_q.legend(fontsize=7)
    ax_s.set_ylim(-0.03, 1.03)
    ax_s.set_xlabel("hidden layer l")
    thr = "/".join(fmt(t) for t in sorted(thresholds)) or "0.01"
    ax_s.set_ylabel(
        "fraction of units"
        if not shown["saturated"]
        else "fraction of (unit, input) pairs"
        if not shown["dead"]
        else "fraction of units or (unit, input) pairs"
    )
    ax_s.set_title(
        " or ".join(
            t
            for t, on in (
                (f"saturated (|phi'(h)| < {thr})", shown["saturated"]),
                ("dead units (0 for every input)", shown["dead"]),
            )
            if on
        ),
        fontsize=10,
    )
    ax_s.grid(True, alpha=0.3)
    ax_s.legend(fontsize=7)

    right = []
    if shown["saturated"]:
        right.append(
            f"mean fraction of saturated (unit, input) pairs, |phi'(h)| < {thr} (almost no "
            f"gradient flows back through them), for "
            f"{' and '.join(sorted(set(shown['saturated'])))}"
        )
    if shown["dead"]:
        right.append(
            f"mean fraction of dead units (output exactly 0 for every input, so no signal or "
            f"gradient passes), for {' and '.join(sorted(set(shown['dead'])))}"
        )
    n_text = "/".join(str(n) for n in sorted(widths_in))
    ti0 = theory_inputs(cells[0].result)[0]
    title = options.get("title") or "The seed's literal randn / sqrt(1/n) against randn * sqrt(1/n)"
    caption = (
        "The seed writes w = randn(n_in, n_out) / sqrt(1/n_in) for its 'Xavier' (LeCun) "
        "initialization; read literally that multiplies by sqrt(n_in), so Var(W_ij) = n_in "
        "instead of the intended 1/n_in (w = randn * sqrt(1/n_in)), and sigma_w2 = n_in Var(W) "
        f"is n_in^2 times too large (here n_in = {n_text}: a factor "
        f"{'/'.join(fmt(n * n) for n in sorted(widths_in))}). Left: per-layer mean over nets "
        "of q^l on a log scale (markers: Monte Carlo; bands: 95% confidence intervals of the "
        f"mean; lines: the mean-field length map from q^0 = {fmt(ti0.q0) if ti0 else 1}"
        f"{exactness_phrase(cells)}). Right: " + "; ".join(right) + ". "
        f"{nets_phrase([c.result for c in cells])}, {cells_inputs_phrase(cells)}. "
        + ("At the last layer: " if lines else "")
        + "; ".join(lines)
        + ". "
        f"{seed_phrase(study, cells)}"
    )
    finish(fig, title, caption)
    return fig, caption
