"""Mean-field theory of a recognised MLP chain, held against the audit's measured signals.

For a chain ``Linear_1 -> phi_1 -> Linear_2 -> ... -> Linear_L``
(:func:`initsim.audit.recognise.consumers`) the prediction of the
pre-activation second moment of layer ``l`` is the length map of the
*inventory's* laws,

    ``q^1 = sigma_w2^1 q_x + sigma_b2^1``,
    ``q^l = sigma_w2^l E_{q^{l-1}}[phi_{l-1}^2] + sigma_b2^l``,

with ``sigma_w2^l = true_fan_in Var(W_l)`` and ``sigma_b2^l`` the bias's
``E[b^2]`` (both measured over all re-inits), and ``q_x`` the example
batch's mean square. Each layer's measured ``q`` (a mean over the batch, one
value per re-initialisation) is t-tested against it over the re-inits (at
least :data:`MIN_INITS` of them):
**exact** rows while every activation so far is positively homogeneous
(ReLU, leaky ReLU, linear: the expectation over symmetric weights is exact
at any width), **mean-field** rows otherwise, which fail only beyond the
conservative finite-width allowance ``|q^l| l / n`` (``n`` the narrowest
layer), as :func:`initsim.shaping_check.check_pair` does. The rows are
Holm-combined at ``alpha``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as _stats

__all__ = [
    "MIN_INITS",
    "TheoryRow",
    "chain_rows",
    "holm_verdicts",
    "linear_map",
    "preserving_sigma_w2",
    "tested_row",
]

#: Fewer re-initialisations leave the rows untested (a t test on so few values of a
#: skewed q is not worth a verdict).
MIN_INITS = 10


@dataclass(frozen=True)
class TheoryRow:
    """One layer of a chain against the theory.

    Attributes
    ----------
    layer : int
        1-based.
    module : str
        The Linear's path.
    observed, interval : float, (float, float)
        Mean measured ``q`` and its 95% interval over re-inits.
    predicted : float
        The length map's ``q^l``.
    p_value : float
        Of the row's test (NaN when untestable).
    regime : str
        ``"exact"`` or ``"mean-field, allowance X"``.
    verdict : str
        ``"PASS"``, ``"FAIL"`` (Holm at ``alpha``) or ``"N/A"``.
    """

    layer: int
    module: str
    observed: float
    interval: tuple[float, float]
    predicted: float
    p_value: float
    regime: str
    verdict: str


def preserving_sigma_w2(act: Any) -> float | None:
    """``sigma_w2`` that keeps ``q`` for a positively homogeneous activation (else None).

    ``2 / (1 + a^2)`` for leaky ReLU of slope ``a`` (2 for ReLU, He), 1 for linear.
    """
    if act.name == "linear":
        return 1.0
    if act.name in ("relu", "leaky_relu"):
        return 2.0 / (1.0 + act.param * act.param)
    return None


def chain_rows(
    chain: list[tuple[str, str | None]],
    laws: dict[str, Any],
    q_runs: dict[str, np.ndarray],
    q_x: float,
    *,
    alpha: float = 0.01,
) -> list[TheoryRow]:
    """Test every layer of a chain (see the module docstring).

    Parameters
    ----------
    chain : list of (str, str or None)
        ``(linear path, consumer label)`` pairs.
    laws : dict
        Tensor path -> :class:`~initsim.audit.laws.TensorStats`.
    q_runs : dict
        Module path -> measured ``q`` per re-initialisation.
    q_x : float
        The example batch's mean square.
    alpha : float
        Family-wise level of the Holm combination.

    Returns
    -------
    list of TheoryRow
        One per layer.
    """
    from initsim.audit.recognise import as_activation
    from initsim.theory import gaussian_expectation

    n_min = min(laws[f"{path}.weight"].entry.shape[0] for path, _ in chain)
    rows = []
    q_prev, act_prev, exact = q_x, None, True
    for layer, (path, act_label) in enumerate(chain, start=1):
        if act_prev is None:
            pred = linear_map(laws, path, q_prev)
        else:
            pred = linear_map(laws, path, float(gaussian_expectation(act_prev, q_prev, "phi2")))
            exact = exact and act_prev.positively_homogeneous
        obs = np.asarray(q_runs.get(path, np.array([])), dtype=float)
        if obs.size < MIN_INITS or not math.isfinite(pred):
            rows.append(
                TheoryRow(layer, path, math.nan, (math.nan, math.nan), pred, math.nan, "-", "N/A")
            )
        else:
            bound = 0.0 if exact else abs(pred) * layer / n_min
            rows.append(tested_row(layer, path, obs, pred, bound, exact, alpha))
        q_prev = pred
        act_prev = as_activation(act_label) if act_label is not None else None
    return holm_verdicts(rows, alpha)


def linear_map(laws: dict[str, Any], path: str, m: float) -> float:
    """Return a Linear's length map at the measured laws: ``true_fan_in Var(W) m + E[b^2]``.

    Parameters
    ----------
    laws : dict
        Tensor path -> :class:`~initsim.audit.laws.TensorStats`.
    path : str
        The Linear module's path.
    m : float
        The mean square of its input.

    Returns
    -------
    float
        The mean square of its output (NaN where a law is).
    """
    w = laws[f"{path}.weight"]
    bias = laws.get(f"{path}.bias")
    sw = w.entry.true_fan_in * w.variance
    return sw * m + (0.0 if bias is None else bias.second_moment)


def tested_row(
    index: int,
    module: str,
    observed: np.ndarray,
    predicted: np.ndarray | float,
    bound: float,
    exact: bool,
    alpha: float,
) -> TheoryRow:
    """t-test the per-re-init differences ``observed - predicted`` beyond an allowance.

    Parameters
    ----------
    index : int
        The row's number (layer, or residual addition).
    module : str
        What the row is about.
    observed : numpy.ndarray
        Measured ``q``, one per re-initialisation.
    predicted : numpy.ndarray or float
        Its prediction, per re-initialisation or one for all.
    bound : float
        The finite-width allowance (0 for an exact row).
    exact : bool
        Whether the prediction is exact at any width.
    alpha : float
        The family-wise level (the interval is the ``1 - alpha`` t interval plus ``bound``).

    Returns
    -------
    TheoryRow
        Without a verdict yet (:func:`holm_verdicts` gives it).
    """
    d = observed - predicted
    mean = float(observed.mean())
    se = float(d.std(ddof=1) / math.sqrt(d.size))
    excess = max(0.0, abs(float(d.mean())) - bound)
    df = d.size - 1
    p = float(2.0 * _stats.t.sf(excess / se, df)) if se > 0 else float(excess == 0.0)
    half = float(_stats.t.isf(alpha / 2, df)) * se + bound
    regime = "exact" if exact else f"mean-field, allowance {bound:.3g}"
    pred = float(np.mean(predicted)) if np.ndim(predicted) else float(predicted)
    return TheoryRow(index, module, mean, (mean - half, mean + half), pred, p, regime, "")


def holm_verdicts(rows: list[TheoryRow], alpha: float) -> list[TheoryRow]:
    """Give each tested row (finite p) its Holm verdict at ``alpha``; the others stay N/A."""
    from dataclasses import replace

    from initsim.checks import holm

    tested = [i for i, r in enumerate(rows) if math.isfinite(r.p_value)]
    reject = list(holm(np.array([rows[i].p_value for i in tested]), alpha)) if tested else []
    verdict = {i: bool(r) for i, r in zip(tested, reject, strict=True)}
    return [
        replace(r, verdict="FAIL" if verdict[i] else "PASS") if i in verdict else r
        for i, r in enumerate(rows)
    ]
