"""Shaped activations: two inputs' correlation and length across a deep net, with verdicts.

One colour per ``pair`` cell (:func:`initsim.shaping_check.propagate_pair`):
the Monte Carlo mean over nets of the output correlation
``c^l = K12 / sqrt(K11 K22)`` of each layer with its confidence band (left),
and of ``q^l = (K11 + K22) / 2`` (right); dashed, the cell's own mean-field
prediction (:func:`initsim.shaping_check.pair_predictions`: its shaping's
local maps, or its activation's at its ``sigma_w2``); dotted, the prediction
of the claim an unshaped cell is held to when the figure's ``claim`` names
another cell (:mod:`initsim.report.shaping_claims`).

The caption gives each cell's verdict from
:func:`initsim.shaping_check.check_pair` (its output layer's ``E[c^L]`` and
``E[q^L]`` against the claim, Holm-combined at the figure's ``alpha``,
default 0.01): PASS or FAIL with the Holm-adjusted p-value of the family,
``min(1, m min_i p_i)`` over its ``m`` tested rows (the family fails exactly
when it is at most ``alpha``). A theory that fails only removes that cell's
line and verdict, and the caption says why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.ticker import MaxNLocator

from initsim.report._common import (
    finish,
    fit_log_axis,
    fmt,
    nets_phrase,
    new_page,
    positive,
    seed_phrase,
)
from initsim.report.shaping_claims import claims

__all__ = ["PairVerdict", "pair_verdict", "shaping_profile_figure"]

_MARKERS = ("o", "s", "^", "D", "v", "P", "X")


@dataclass(frozen=True)
class PairVerdict:
    """One cell's verdict, as the caption states it.

    Attributes
    ----------
    verdict : str
        ``"PASS"``, ``"FAIL"`` or ``"N/A"`` (no row could be tested, or the
        check could not run).
    holm_p : float
        ``min(1, m min_i p_i)`` over the ``m`` tested rows (NaN when none).
    report : CheckReport or None
        What :func:`initsim.shaping_check.check_pair` returned.
    reason : str or None
        Why there is no report.
    """

    verdict: str
    holm_p: float
    report: Any
    reason: str | None


def _is_shaping(act: Any) -> bool:
    return hasattr(act, "input_scale") and hasattr(act, "method")


def _why(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def pair_verdict(result: Any, alpha: float, claim: Any = None) -> PairVerdict:
    """Check a pair run against a claim and give the caption's verdict.

    Parameters
    ----------
    result : PairResult
        The run (its ``activation`` is what was propagated).
    alpha : float
        Family-wise false-rejection rate.
    claim : Activation or Shaping, optional
        Whose maps give the prediction (None: the run's own).

    Returns
    -------
    PairVerdict
        The verdict and the Holm-adjusted family p-value. Never raises: a
        check that cannot run gives ``"N/A"`` and the reason.
    """
    from initsim.shaping_check import check_pair

    try:
        report = check_pair(result, alpha=alpha, claim=claim)
    except Exception as err:  # too few nets, or a theory that fails: no verdict
        return PairVerdict("N/A", math.nan, None, _why(err))
    p = [r.p_value for r in report.rows if not math.isnan(r.p_value)]
    holm_p = min(1.0, len(p) * min(p)) if p else math.nan
    verdict = report.verdict if p else "N/A"
    return PairVerdict(verdict, holm_p, report, None)


def _config(result: Any) -> Mapping[str, Any]:
    return (getattr(result, "provenance", None) or {}).get("config") or {}


def _sigma_w2(result: Any) -> float:
    return float(_config(result).get("sigma_w2", 1.0))


def _c0(result: Any) -> float:
    return float(_config(result).get("c0", 0.0))


def _shaping_text(act: Any) -> str:
    """``TAT leaky_relu (eta 0.9, slope 0.57)``: a shaping's method, base and target."""
    method = str(act.method).upper()
    targets = [
        f"{name} {fmt(v, 4)}"
        for name, v in (("zeta", act.zeta), ("eta", act.eta), ("tau", act.tau))
        if v is not None
    ]
    base = act.base
    if base.name == "leaky_relu":
        targets.append(f"slope {fmt(base.param, 4)}")
        name = "leaky_relu"
    else:
        name = base.label
    return f"{method} {name} ({', '.join(targets)})" if targets else f"{method} {name}"


def _label(cell: Any) -> str:
    act = cell.result.activation
    if _is_shaping(act):
        return _shaping_text(act)
    name = getattr(act, "label", str(act))
    return f"{name}, no shaping, sigma_w2 {fmt(_sigma_w2(cell.result))}"


def _promise(act: Any) -> str:
    """Say what a shaping's maps promise of the output, in the caption's words."""
    if act.method == "tat" and act.eta is not None:
        return f"C_net(0) = {fmt(act.eta, 4)}, Q(q) = q"
    if act.method == "tat":
        return f"Q(1) = 1, C'(1) = 1, C_net''(1) = {fmt(act.tau, 4)}"
    return f"Q(1) = 1, C(0) = 0, C_net'(1) = {fmt(act.zeta, 4)}"


def _claim_text(cell: Any, claim: Any) -> str:
    act = cell.result.activation
    if claim is not None:
        other = claim.result.activation
        return f"{claim.id}'s {str(other.method).upper()} shaping ({_promise(other)})"
    if _is_shaping(act):
        return f"its own {str(act.method).upper()} shaping ({_promise(act)})"
    name = getattr(act, "label", str(act))
    return f"its own {name} maps at sigma_w2 {fmt(_sigma_w2(cell.result))}"


def _p_text(p: float) -> str:
    if math.isnan(p):
        return "NaN"
    return "< 1e-300" if p < 1e-300 else f"= {p:.3g}"


def _verdict_text(cell: Any, claim: Any, v: PairVerdict, alpha: float) -> str:
    head = f"{cell.id} ({_label(cell)}) against {_claim_text(cell, claim)}: "
    if v.report is None:
        return head + f"no verdict ({v.reason})"
    rows = {r.quantity: r for r in v.report.rows}
    parts = [
        f"{q} = {fmt(r.observed, 4)} (predicted {fmt(r.predicted, 4)})"
        for q, r in rows.items()
        if q in ("E[c^L]", "E[q^L]")
    ]
    if v.verdict == "N/A":
        return head + "N/A, no row could be tested; " + ", ".join(parts)
    return head + f"{v.verdict} (Holm p {_p_text(v.holm_p)}, alpha = {alpha:g}; {', '.join(parts)})"


def _band(samples: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-layer mean over nets and its Student-t interval (non-finite values left out)."""
    from scipy import stats

    x = np.asarray(samples, dtype=float)
    ok = np.isfinite(x)
    n = ok.sum(axis=0)
    xs = np.where(ok, x, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = xs.sum(axis=0) / n
        var = np.where(ok, (x - mean) ** 2, 0.0).sum(axis=0) / (n - 1)
        half = stats.t.ppf(0.5 + level / 2, np.maximum(n - 1, 1)) * np.sqrt(var / n)
    half = np.where(n > 1, half, np.nan)
    return mean, mean - half, mean + half


def _theory(act: Any, depth: int, c0: float, sigma_w2: float) -> tuple[Any, Any, str | None]:
    """``(q, c, None)`` predicted per layer, or ``(None, None, reason)``."""
    from initsim.shaping_check import pair_predictions

    try:
        q, c = pair_predictions(act, depth, c0, 1.0 if _is_shaping(act) else sigma_w2)
    except Exception as err:  # a failing theory must not break the report
        return None, None, f"the mean-field maps failed ({_why(err)})"
    q, c = np.asarray(q, dtype=float), np.asarray(c, dtype=float)
    if q.shape != (depth,) or c.shape != (depth,):
        return None, None, f"the maps returned {c.size} values for {depth} layers"
    return q, c, None


def _sizes_text(cells: Sequence[Any]) -> str:
    sizes = sorted(
        {
            (int(c.result.depth), int(_config(c.result).get("width", 0)), _c0(c.result))
            for c in cells
        }
    )
    return "; ".join(
        f"depth L = {L}, width n = {n}, input correlation c0 = {fmt(c0)}" for L, n, c0 in sizes
    )


def _log_q(cells: Sequence[Any]) -> bool:
    """Whether the length panel needs a log axis: the mean q^l of the cells spans > 2 decades."""
    means = np.concatenate([np.nanmean(np.asarray(c.result.q, dtype=float), axis=0) for c in cells])
    means = means[np.isfinite(means)]
    return bool(means.size and means.min() > 0 and means.max() / means.min() > 100.0)


def shaping_profile_figure(
    study: Any, cells: Sequence[Any], options: dict[str, Any]
) -> tuple[Any, str]:
    """Output correlation ``c^l`` and length ``q^l`` against layer, per pair cell, with verdicts.

    Parameters
    ----------
    study : StudyResults-like
        The study (its ``seed`` is named in the caption).
    cells : sequence of Cell-like
        ``pair`` cells (results: :class:`initsim.shaping_check.PairResult`).
    options : dict
        ``title``; ``claim`` (a shaped cell whose shaping every unshaped cell
        is held to, or a table unshaped id -> shaped id; see
        :mod:`initsim.report.shaping_claims`); ``alpha`` (the checks'
        family-wise rate, default 0.01); ``level`` (of the bands, default 0.95).

    Returns
    -------
    (Figure, str)
        The page and its caption.

    Raises
    ------
    ValueError
        For no cells, a cell that is not a pair cell, or an invalid option
        (the message names it).
    """
    if not cells:
        raise ValueError("shaping-profile needs at least one cell")
    claim_of = claims(cells, options)  # raises for an invalid option
    alpha = float(options.get("alpha", 0.01))
    level = float(options.get("level", 0.95))
    fig, axes = new_page(1, 2)
    ax_c, ax_q = axes[0, 0], axes[0, 1]
    verdicts: list[str] = []
    missing: list[str] = []
    log_q = _log_q(cells)  # an unshaped net's length can run off by decades
    for k, c in enumerate(cells):
        r = c.result
        colour, marker = f"C{k % 10}", _MARKERS[k % len(_MARKERS)]
        layers = np.arange(1, r.depth + 1)
        for ax, samples in ((ax_c, r.correlation), (ax_q, r.q)):
            mean, lo, hi = _band(samples, level)
            if ax is ax_q and log_q:  # a band below 0 is cut at the mean
                mean, hi = positive(mean), positive(hi)
                lo = np.where(np.isnan(positive(lo)), mean, lo)
            ax.fill_between(layers, lo, hi, color=colour, alpha=0.22, lw=0)
            every = max(1, r.depth // 25)  # markers readable at depth 100
            ax.plot(layers, mean, marker, ms=3.5, mew=0.9, ls="none", color=colour,
                    markevery=every, label=_label(c) if ax is ax_c else None)  # fmt: skip
        q, cc, reason = _theory(r.activation, r.depth, _c0(r), _sigma_w2(r))
        if reason is None:
            ax_c.plot(layers, cc, "--", lw=1.2, color=colour)
            ax_q.plot(layers, positive(q) if log_q else q, "--", lw=1.2, color=colour)
        else:
            missing.append(f"{c.id}: {reason}")
        claim = claim_of[c.id]
        if claim is not None:
            qc, ccl, why = _theory(claim.result.activation, r.depth, _c0(r), 1.0)
            if why is None:
                ax_c.plot(layers, ccl, ":", lw=1.6, color=colour)
                ax_q.plot(layers, positive(qc) if log_q else qc, ":", lw=1.6, color=colour)
        claim_act = claim.result.activation if claim is not None else None
        verdicts.append(_verdict_text(c, claim, pair_verdict(r, alpha, claim_act), alpha))
    ax_c.set_ylabel("c^l = K12 / sqrt(K11 K22)")
    ax_q.set_ylabel("q^l = (K11 + K22) / 2")
    ax_c.set_title("the two inputs' correlation", fontsize=10)
    ax_q.set_title("their length", fontsize=10)
    if log_q:
        fit_log_axis(ax_q)
    for ax in (ax_c, ax_q):
        ax.set_xlabel("layer l")
        ax.grid(True, which="major", alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_c.plot([], [], "k--", label="mean-field prediction (its own maps)")
    if any(v is not None for v in claim_of.values()):
        ax_c.plot([], [], "k:", label="the claim it is held to (another cell's shaping)")
    ax_c.plot([], [], "ko", ms=3, label=f"Monte Carlo mean, {100 * level:g}% band")
    ax_c.legend(fontsize=7, loc="best")

    missing_text = f" No theory line for {'; '.join(missing)}." if missing else ""
    caption = (
        "Two inputs with ||x||^2 = n and correlation c0 through vanilla nets x -> phi(W x), "
        "W_ij ~ N(0, sigma_w2 / n), no bias (sigma_w2 = 1 for a shaped phi, as its maps "
        "assume), drawn with the exact Gram sampler (initsim.shaping_check.propagate_pair). "
        "Left: mean over nets of the correlation c^l = K12 / sqrt(K11 K22) of layer l's "
        "outputs, K_ij = x_i . x_j / n; right: q^l = (K11 + K22) / 2. Markers: Monte Carlo "
        f"means; shaded bands: {100 * level:g}% Student-t confidence intervals of those means "
        "over nets. Dashed: each cell's mean-field prediction (pair_predictions: a shaped "
        "cell's local Q and C maps, an unshaped cell's activation at its sigma_w2)"
        + (
            "; dotted: the prediction of the claim an unshaped cell is held to (another cell's "
            "shaping, the figure's claim option)"
            if any(v is not None for v in claim_of.values())
            else ""
        )
        + f". {_sizes_text(cells)}; {nets_phrase([c.result for c in cells])}.{missing_text}\n"
        f"Verdicts (check_pair: the output layer's E[c^L] and E[q^L] against the claim, z-tests "
        "that allow the finite-width bias bound, Holm-combined; the p-value is the Holm-adjusted "
        "family p = min(1, m min p_i), FAIL exactly when it is <= alpha): "
        + "; ".join(verdicts)
        + ".\n"
        + seed_phrase(study, cells)
    )
    title = options.get("title") or "Shaped activations: correlation and length across depth"
    finish(fig, title, caption)
    return fig, caption
