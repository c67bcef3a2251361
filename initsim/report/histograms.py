"""Per-layer activation histograms (the seed's figures) with the mean-field law overlaid.

The Monte Carlo bars are the engine's histograms, pooled over nets, units
and inputs. The theory is the mean-field law of one pre-activation,
``h^l ~ N(0, q^l)`` with ``q^l`` from :func:`initsim.theory.q_map`, pushed
through ``phi`` and binned exactly as the engine bins (equal-width bins,
values below / at or above the range counted apart), so point masses
(ReLU's zeros) and saturation (sigmoid's 0 and 1) appear in both alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from initsim.checks import theory_inputs
from initsim.report._common import (
    cell_label,
    cell_labels,
    cells_inputs_phrase,
    finish,
    fmt,
    nets_phrase,
    new_page,
    seed_phrase,
    widths_text,
)

__all__ = ["binned_law", "histograms_figure"]

#: How the caption names the parameters of the row labels.
_ROW_NAMES = {"activation": "activation", "init": "initializer"}

# Quadrature grid of the standard normal used to push N(0, q) through phi.
_Z = np.linspace(-9.0, 9.0, 360_001)
_W = np.exp(-0.5 * _Z**2)
_W /= _W.sum()


def binned_law(activation: Any, q: float, lo: float, hi: float, bins: int) -> np.ndarray:
    """Probabilities of the engine's bins for ``phi(h)``, ``h ~ N(0, q)``.

    Parameters
    ----------
    activation : Activation
        ``phi`` (use the identity's ``linear`` for pre-activations).
    q : float
        Variance of ``h`` (>= 0; 0 gives a point mass at ``phi(0)``).
    lo, hi : float
        The histogram range.
    bins : int
        Number of equal-width bins.

    Returns
    -------
    numpy.ndarray (bins + 2,)
        Slot 0: ``P(phi(h) < lo)``; slots 1..bins: the bins; last slot:
        ``P(phi(h) >= hi)`` (the engine's layout). NaN when ``q`` is not finite.
    """
    out = np.zeros(bins + 2)
    if not np.isfinite(q) or q < 0:
        return np.full(bins + 2, np.nan)
    y = np.asarray(activation.phi(np.sqrt(q) * _Z), dtype=float)
    width = (hi - lo) / bins
    with np.errstate(invalid="ignore"):
        idx = np.floor((y - lo) / width).astype(np.int64) + 1
    idx = np.clip(idx, 1, bins)
    idx[y < lo] = 0
    idx[y >= hi] = bins + 1
    np.add.at(out, idx, _W)
    return out


def _theory_q(result: Any) -> np.ndarray | None:
    from initsim import theory

    ti = theory_inputs(result)[0]
    if ti is None:
        return None
    depth = len(ti.widths) - 1
    with np.errstate(over="ignore", invalid="ignore"):
        return theory.q_map(ti.activation, ti.sigma_w2, ti.sigma_b2, ti.q0, depth)


def histograms_figure(study: Any, cells: Sequence[Any], options: dict[str, Any]) -> tuple[Any, str]:
    """Activation histograms per layer (columns) and case (rows), theory overlaid.

    Parameters
    ----------
    study : StudyResults-like
        The study (seed, name).
    cells : sequence of Cell-like
        "simulate" cells run with ``histograms``.
    options : dict
        ``title``; ``layers`` (1-based hidden layers to show, default the
        first five); ``variable``: "act" (``phi(h)``, default) or "h"
        (pre-activations).

    Returns
    -------
    (Figure, str)
        The page and its caption.
    """
    from initsim import activations

    variable = options.get("variable", "act")
    if variable not in ("act", "h"):
        raise ValueError(f"histograms option 'variable' must be 'act' or 'h'; got {variable!r}")
    for c in cells:
        if getattr(c.result, "histograms", None) is None:
            raise ValueError(
                f"figure 'histograms' needs cells run with histograms; cell {c.id} has none "
                "(add histograms = {bins = 50} to its experiment)"
            )
    depth = min(c.result.depth for c in cells)
    layers = [int(v) for v in options.get("layers", list(range(1, min(depth, 5) + 1)))]
    bad = [v for v in layers if not 1 <= v <= depth]
    if bad:
        raise ValueError(f"histograms option 'layers' must lie in 1..{depth}; got {bad}")

    fig, axes = new_page(len(cells), len(layers))
    identity = activations.get("linear")
    _, keys = cell_labels(cells)
    worst_tv = 0.0
    for i, c in enumerate(cells):
        h = c.result.histograms
        counts = np.asarray(h[variable], dtype=float)
        edges = np.asarray(h[f"{variable}_edges"], dtype=float)
        bins = len(edges) - 1
        q = _theory_q(c.result)
        ti = theory_inputs(c.result)[0]
        act = ti.activation if ti is not None else None
        for j, layer in enumerate(layers):
            ax = axes[i, j]
            row = counts[layer - 1]
            total = row.sum()
            frac = row / total if total > 0 else row
            ax.stairs(frac[1:-1], edges, fill=True, color="C0", alpha=0.55, label="Monte Carlo")
            pred = None
            if q is not None and act is not None:
                phi = act if variable == "act" else identity
                pred = binned_law(phi, float(q[layer - 1]), edges[0], edges[-1], bins)
                if np.all(np.isfinite(pred)):
                    ax.stairs(pred[1:-1], edges, color="k", lw=1.0, label="mean-field theory")
                    worst_tv = max(worst_tv, 0.5 * float(np.abs(pred - frac).sum()))
                else:
                    pred = None
            inner = frac[1:-1]
            tallest = np.sort(np.concatenate([inner, [] if pred is None else pred[1:-1]]))
            top = tallest[-1] if tallest.size else 1.0
            second = np.sort(inner)[-2] if inner.size > 1 else top
            if top > 4 * second and second > 0:
                # one bin (a point mass) dwarfs the rest: clip and say how tall it is
                ylim = 2.5 * max(second, np.sort(pred[1:-1])[-2] if pred is not None else 0)
                k = int(np.argmax(inner))
                ax.annotate(
                    f"{100 * inner[k]:.0f}%",
                    xy=(0.5 * (edges[k] + edges[k + 1]), ylim),
                    xytext=(4, -10),
                    textcoords="offset points",
                    fontsize=6.5,
                    color="C0",
                )
                ax.set_ylim(0, ylim)
            else:
                ax.set_ylim(0, 1.15 * top if top > 0 else 1.0)
            ax.set_xlim(edges[0], edges[-1])
            under, over = 100 * frac[0], 100 * frac[-1]
            shown = [under, over] + ([] if pred is None else [100 * pred[0], 100 * pred[-1]])
            if max(shown) >= 0.05:  # only panels with values outside the range say so
                text = f"<lo {under:.1f}%  >=hi {over:.1f}%"
                if pred is not None:
                    text += f"\n(theory {100 * pred[0]:.1f}%, {100 * pred[-1]:.1f}%)"
                ax.text(0.98, 0.97, text, transform=ax.transAxes, ha="right", va="top", fontsize=6)
            ax.tick_params(labelsize=6.5)
            if i == 0:
                ax.set_title(f"layer {layer}", fontsize=9)
            if i == len(cells) - 1:
                ax.set_xlabel("phi(h)" if variable == "act" else "h", fontsize=8)
            if j == 0:
                parts = [cell_label(c.params, (key,)) for key in keys]
                if ti:
                    parts.append(f"sigma_w2 = {fmt(ti.sigma_w2[-1])}")
                ax.text(
                    -0.3,
                    0.5,
                    "\n".join(p for p in parts if p),
                    transform=ax.transAxes,
                    ha="right",
                    va="center",
                    fontsize=7.5,
                )
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", fontsize=8, frameon=False, ncols=2)
    fig.text(0.005, 0.6, "fraction of values per bin", rotation=90, fontsize=8, va="center")

    widths = sorted({tuple(c.result.provenance.get("config", {}).get("widths", [])) for c in cells})
    q0s = sorted({fmt(t.q0) for t in (theory_inputs(c.result)[0] for c in cells) if t})
    n_bins = sorted({len(c.result.histograms[f"{variable}_edges"]) - 1 for c in cells})
    dead_note = (
        ", so a point mass (ReLU's exact zeros) is one tall bin in both"
        if any(cell_label(c.params, ("activation",)).startswith("relu") for c in cells)
        else ""
    )
    title = options.get("title") or "Activation histograms per layer, with the mean-field law"
    what = "activations phi(h^l)" if variable == "act" else "pre-activations h^l"
    caption = (
        f"Histograms of the {what} in hidden layers {', '.join(map(str, layers))} (columns) for "
        f"each case (rows: {', '.join(_ROW_NAMES.get(k, k) for k in keys)} and "
        f"sigma_w2 = n_in Var(W) of the hidden layers); "
        f"{'; '.join(widths_text(w) for w in widths)}; {cells_inputs_phrase(cells)}; "
        f"{nets_phrase([c.result for c in cells])}. "
        f"Blue bars: fraction of all values (pooled over nets, units and inputs) in each of "
        f"{'/'.join(map(str, n_bins))} equal-width bins; black steps: the mean-field "
        f"prediction, h^l ~ N(0, q^l) with q^l from the length map "
        f"q^l = sigma_w2 E[phi(sqrt(q^(l-1)) z)^2] + sigma_b2 iterated from "
        f"q^0 = {'/'.join(q0s) or '1'}, pushed through phi and binned identically{dead_note}. "
        f"A bin clipped for readability carries its height in percent. Panels with values "
        f"outside the plotted range print the fractions below and at-or-above it (Monte "
        f"Carlo, then theory). Largest total-variation distance between Monte Carlo and "
        f"theory over the panels: {worst_tv:.3f}. "
        f"{seed_phrase(study, cells)}"
    )
    finish(fig, title, caption, hspace=0.3, wspace=0.22, left=0.15)
    return fig, caption
