"""Zero and constant initialization against random ones: loss curves and unit symmetry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from initsim.report._common import (
    cell_label,
    finish,
    fit_log_axis,
    fmt,
    new_page,
    positive,
    seed_phrase,
)

__all__ = ["training_figure"]


def training_figure(study: Any, cells: Sequence[Any], options: dict[str, Any]) -> tuple[Any, str]:
    """Training loss and the smallest distance between two hidden units, per step.

    Parameters
    ----------
    study : StudyResults-like
        The study.
    cells : sequence of Cell-like
        "train" cells; their results have ``loss`` (repeats, steps + 1),
        ``unit_distance`` (repeats, steps + 1, hidden layers) and
        ``grad_norms``.
    options : dict
        ``title``.

    Returns
    -------
    (Figure, str)
        The page and its caption.
    """
    fig, axes = new_page(1, 2)
    ax_l, ax_d = axes[0]
    summary = []
    for k, c in enumerate(cells):
        loss = np.asarray(c.result.loss, dtype=float)
        dist = np.asarray(c.result.unit_distance, dtype=float)
        if loss.ndim == 1:
            loss, dist = loss[None, :], dist[None, :, :]
        steps = np.arange(loss.shape[1])
        colour = f"C{k % 10}"
        style = ("-", "--", "-.", ":")[k % 4]
        label = cell_label(c.params, ("init", "activation"))
        with np.errstate(over="ignore", invalid="ignore"):  # diverged training: inf or NaN
            mean = loss.mean(axis=0)
        ax_l.fill_between(
            steps,
            positive(loss.min(axis=0)),
            positive(loss.max(axis=0)),
            color=colour,
            alpha=0.2,
            lw=0,
        )
        ax_l.plot(steps, positive(mean), color=colour, ls=style, lw=1.6, label=label)
        dmin = dist.min(axis=2)  # smallest distance over hidden layers, per repeat and step
        ax_d.fill_between(steps, dmin.min(axis=0), dmin.max(axis=0), color=colour, alpha=0.2, lw=0)
        ax_d.plot(steps, dmin.mean(axis=0), color=colour, ls=style, lw=1.6, label=label)
        identical = int(np.sum(dmin[:, -1] == 0.0))
        with np.errstate(over="ignore", invalid="ignore"):
            ratio = mean[-1] / mean[0] if mean[0] > 0 else float("nan")
        summary.append(
            f"{label}: final/initial loss {fmt(ratio)}, identical units after training in "
            f"{identical} of {loss.shape[0]} nets"
        )
    fit_log_axis(ax_l)  # log scale; a diverging training's loss reaches 1e308
    ax_l.set_xlabel("SGD step")
    ax_l.set_ylabel(f"training loss ({cells[0].params.get('loss', 'mse')}, log scale)")
    ax_l.set_title("loss on the whole training set", fontsize=10)
    ax_l.grid(True, alpha=0.3)
    ax_l.legend(fontsize=7)
    ax_d.set_yscale("symlog", linthresh=1e-3)
    ax_d.set_ylim(bottom=-1e-4)
    ax_d.set_xlabel("SGD step")
    ax_d.set_ylabel("min distance between two units (symlog; 0 = identical)")
    ax_d.set_title(
        "smallest distance between the parameter vectors of two hidden units", fontsize=10
    )
    ax_d.grid(True, alpha=0.3)
    ax_d.legend(fontsize=7)

    p = cells[0].params
    data = p.get("data", {})
    data_text = (
        ", ".join(f"{k}={v}" for k, v in sorted(data.items()))
        if isinstance(data, dict)
        else str(data)
    )
    repeats = sorted({int(np.atleast_2d(c.result.loss).shape[0]) for c in cells})
    title = options.get("title") or "Zero and constant initialization cannot break symmetry"
    caption = (
        "Plain SGD on the same data from different initializations. Left: training loss "
        "(line: mean over independent nets; band: min to max). Right: for each net the "
        "smallest Euclidean distance between the parameter vectors (incoming weights and "
        "bias) of two units of the same hidden layer, minimised over the hidden layers (line: "
        "mean over nets; band: min to max); exactly 0 means two units are bitwise identical. "
        "With all weights equal, every unit of a layer computes the same function and receives "
        "the same gradient, so the units stay identical for ever and the net is no more "
        "expressive than one unit per layer; with zero weights no gradient reaches any weight "
        "(the hidden outputs and the output weights are 0), only the output bias learns and "
        "the loss stays flat at the targets' variance after the first steps. Random "
        "initializations break the symmetry at step 0. "
        f"Layer sizes {list(p.get('sizes', []))}, lr {p.get('lr')}, "
        f"{p.get('steps')} steps, batch size {p.get('batch_size', 'full')}, data: {data_text}; "
        f"{'/'.join(map(str, repeats))} independent nets per initialization. "
        + "; ".join(summary)
        + ". "
        + seed_phrase(study, cells)
    )
    finish(fig, title, caption)
    return fig, caption
