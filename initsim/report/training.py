"""Zero and constant initialization against random ones: loss, unit symmetry, hidden gradients."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from initsim.report._common import (
    cell_label,
    cell_labels,
    finish,
    fit_log_axis,
    fmt,
    new_page,
    positive,
    seed_phrase,
)

__all__ = ["training_figure"]

#: Below this relative change of the mean loss a training counts as flat in the caption.
FLAT = 0.05


def _facts(c: Any) -> dict[str, Any]:
    """Summarise one training cell: loss change, symmetry and hidden-layer gradients."""
    loss = np.asarray(c.result.loss, dtype=float)
    dist = np.asarray(c.result.unit_distance, dtype=float)
    grads = np.asarray(c.result.grad_norms, dtype=float)
    if loss.ndim == 1:
        loss, dist, grads = loss[None, :], dist[None, :, :], grads[None, :, :]
    with np.errstate(over="ignore", invalid="ignore"):  # diverged training: inf or NaN
        mean = loss.mean(axis=0)
        ratio = mean[-1] / mean[0] if mean[0] > 0 else float("nan")
    dmin = dist.min(axis=2)  # smallest distance over hidden layers, per net and step
    hidden = grads[:, :, :-1]  # every layer but the output layer
    return {
        "loss": loss,
        "mean": mean,
        "ratio": float(ratio),
        "dmin": dmin,
        "hidden_grad": hidden.max(axis=2) if hidden.shape[2] else np.zeros(grads.shape[:2]),
        "nets": loss.shape[0],
        # identical units at every step of every net
        "symmetric": int(np.sum(np.all(dmin == 0.0, axis=1))),
        # no gradient reaches any hidden layer at any step
        "frozen": int(np.sum(np.all(hidden == 0.0, axis=(1, 2)))),
        "broken_at_0": int(np.sum(dmin[:, 0] > 0.0)),
    }


def training_figure(study: Any, cells: Sequence[Any], options: dict[str, Any]) -> tuple[Any, str]:
    """Training loss, the smallest distance between two hidden units and hidden-layer gradients.

    Parameters
    ----------
    study : StudyResults-like
        The study.
    cells : sequence of Cell-like
        "train" cells; their results have ``loss`` (repeats, steps + 1),
        ``unit_distance`` (repeats, steps + 1, hidden layers) and
        ``grad_norms`` (repeats, steps, layers).
    options : dict
        ``title``.

    Returns
    -------
    (Figure, str)
        The page and its caption.
    """
    fig, axes = new_page(1, 3)
    ax_l, ax_d, ax_g = axes[0]
    labels, _ = cell_labels(cells, ("init",))
    facts = [_facts(c) for c in cells]
    for k, f in enumerate(facts):
        loss, dmin = f["loss"], f["dmin"]
        steps = np.arange(loss.shape[1])
        colour = f"C{k % 10}"
        style = ("-", "--", "-.", ":")[k % 4]
        label = labels[k]
        if f["symmetric"] == f["nets"]:
            label += " (units identical)"
        ax_l.fill_between(
            steps,
            positive(loss.min(axis=0)),
            positive(loss.max(axis=0)),
            color=colour,
            alpha=0.2,
            lw=0,
        )
        ax_l.plot(steps, positive(f["mean"]), color=colour, ls=style, lw=1.6, label=label)
        note = (
            "no gradient reaches the hidden layers"
            if f["frozen"] == f["nets"]
            else "units identical: trains as a width-1 net"
            if f["symmetric"] == f["nets"]
            else ""
        )
        mid = len(steps) // 2
        if note and np.isfinite(f["mean"][mid]) and f["mean"][mid] > 0:
            ax_l.annotate(
                note,
                (steps[mid], f["mean"][mid]),
                xytext=(0, 4),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=7,
                color=colour,
            )
        # a symmetric cell is drawn thicker, so that two curves at 0 both show
        lw = 1.6 + 1.6 * (f["symmetric"] == f["nets"]) * (len(cells) - k) / len(cells)
        ax_d.fill_between(steps, dmin.min(axis=0), dmin.max(axis=0), color=colour, alpha=0.2, lw=0)
        ax_d.plot(steps, dmin.mean(axis=0), color=colour, ls=style, lw=lw, label=label)
        g = f["hidden_grad"]
        gsteps = np.arange(g.shape[1])
        ax_g.plot(gsteps, g.mean(axis=0), color=colour, ls=style, lw=lw, label=label)
    fit_log_axis(ax_l)  # log scale; a diverging training's loss reaches 1e308
    ax_l.set_xlabel("SGD step")
    ax_l.set_ylabel(f"training loss ({cells[0].params.get('loss', 'mse')}, log scale)")
    ax_l.set_title("loss on the whole training set", fontsize=10)
    ax_l.grid(True, alpha=0.3)
    ax_l.legend(fontsize=7)
    ax_d.set_yscale("symlog", linthresh=1e-3)
    ax_d.set_ylim(bottom=-1e-4)
    ax_d.set_xlabel("SGD step")
    ax_d.set_ylabel("min distance between two units of a layer (symlog)")
    ax_d.set_title("symmetry: 0 = two units bitwise identical", fontsize=10)
    ax_d.grid(True, alpha=0.3)
    ax_d.legend(fontsize=7)
    ax_g.set_yscale("symlog", linthresh=1e-3)
    ax_g.set_ylim(bottom=-1e-4)
    ax_g.set_xlabel("SGD step")
    ax_g.set_ylabel("largest gradient norm of a hidden layer (symlog)")
    ax_g.set_title("do the hidden layers learn? 0 = no gradient", fontsize=10)
    ax_g.grid(True, alpha=0.3)
    ax_g.legend(fontsize=7)

    p = cells[0].params
    sizes = list(p.get("sizes", []))
    data = p.get("data", {})
    data_text = (
        ", ".join(f"{k}={v}" for k, v in sorted(data.items()))
        if isinstance(data, dict)
        else str(data)
    )
    repeats = sorted({f["nets"] for f in facts})
    acts = sorted({cell_label(c.params, ("activation",)) for c in cells})
    per_cell = []
    symmetric_labels = []
    for label, f in zip(labels, facts, strict=True):
        n = f["nets"]
        text = (
            f"{label}: mean loss {fmt(f['mean'][0])} -> {fmt(f['mean'][-1])} "
            f"(final/initial {fmt(f['ratio'])}"
            + (", flat" if abs(f["ratio"] - 1.0) < FLAT else "")
            + f"); units identical at every step in {f['symmetric']} of {n} nets"
        )
        if f["frozen"]:
            text += f", no gradient reaches a hidden layer in {f['frozen']} of {n}"
        elif f["broken_at_0"] == n:
            text += " (symmetry broken from step 0)"
        per_cell.append(text)
        if f["symmetric"] == n:
            symmetric_labels.append(label)
    why = []
    if any(f["symmetric"] == f["nets"] and not f["frozen"] for f in facts):
        width1 = [sizes[0], *([1] * (len(sizes) - 2)), sizes[-1]] if len(sizes) > 2 else sizes
        why.append(
            "With all weights of a layer equal, every unit of the layer computes the same "
            "function and receives the same gradient, so the units stay identical for ever "
            "(the distance stays exactly 0; by this symmetry all units of the layer, not just "
            "two): the weights do move and the loss can fall, but the net trains as a net of "
            f"width 1 per hidden layer (sizes {width1}), no more expressive than one unit per "
            "layer"
        )
    if any(f["frozen"] for f in facts):
        why.append(
            "With all weights 0 the hidden outputs are phi(0) and the output weights are 0, so "
            "no gradient reaches any hidden weight (right: exactly 0 at every step); only the "
            "output layer can learn, so the loss stays about flat"
        )
    if symmetric_labels:
        verb = "keeps" if len(symmetric_labels) == 1 else "keep"
        title = (
            f"{' and '.join(symmetric_labels)} initialization{'s' if verb == 'keep' else ''} "
            f"{verb} every hidden unit "
            "identical: symmetry never breaks"
        )
    else:
        title = "Training from each initialization: loss, symmetry between units, gradients"
    title = options.get("title") or title[:1].upper() + title[1:]
    caption = (
        f"Plain SGD on the same data from {len(cells)} initializations of a "
        f"{'/'.join(acts)} net with layer sizes {sizes}, lr {p.get('lr')}, {p.get('steps')} "
        f"steps, batch size {p.get('batch_size', 'full')}, loss {p.get('loss', 'mse')}, "
        f"data: {data_text}; {'/'.join(map(str, repeats))} independent nets per "
        "initialization. Left: training loss (line: mean over nets; band: min to max). "
        "Middle: for each net the smallest Euclidean distance between the parameter vectors "
        "(incoming weights and bias) of two units of the same hidden layer, minimised over "
        "the hidden layers (line: mean over nets; band: min to max); exactly 0 means two units "
        "are bitwise identical. Right: the largest norm of a hidden layer's gradient at each "
        "step (mean over nets). "
        + "".join(f"{w}. " for w in why)
        + "Per initialization: "
        + "; ".join(per_cell)
        + ". "
        + seed_phrase(study, cells)
    )
    finish(fig, title, caption, wspace=0.3)
    return fig, caption
