"""Monte Carlo verification of activation shaping: two inputs through a deep vanilla net.

:func:`propagate_pair` sends two inputs of correlation ``c0`` (and
``||x||^2 = n``) through ``depth`` dense layers of width ``n`` with weights
``N(0, sigma_w2 / n)`` and no biases, with a built-in activation or a shaped
one (a :class:`initsim.theory.shaping.Shaping` from
:func:`initsim.theory.dks` or :func:`initsim.theory.tat`, whose
``phi_hat(x) = output_scale (phi(input_scale x + input_shift) +
output_shift)``), using the exact Gram sampler of
:mod:`initsim.engine.pairs`. It records per net and layer the kernel
``K_ij = x_i . x_j / n`` of the layer's outputs.

:func:`check_pair` holds the output layer against the mean-field prediction:

- ``E[c^L]``, the mean over nets of the output correlation
  ``K12 / sqrt(K11 K22)``, against the network C-map ``C_net(c0)``;
- ``E[q^L]``, the mean over nets of ``(K11 + K22) / 2``, against the network
  Q-map (1 for a shaped activation, whose ``Q(1) = 1``).

Finite width. Given the previous layer, a layer's empirical kernel is an
unbiased estimate of the dual kernel, so ``E[q^L]`` is exact at every width
for positively homogeneous activations (ReLU and leaky ReLU, TAT's); every
other row is mean-field, with a bias of order ``depth / n`` (the curvature of
the maps acting on the ``O(1/n)`` fluctuations). The check does not ignore
it: each mean-field row is a z-test of ``|observed - predicted| <= B``
(the p-value of ``max(0, |d| - B) / SE``), with the conservative bound
``B = depth (1 - |c_pred|) / n`` for the correlation and
``B = |q_pred| depth / n`` for ``q``. So a row fails only when the Monte
Carlo is farther from the theory than finite width can explain (at depth
100 and width 512 the measured bias of TAT's output correlation is about
``-2 / n``, five times inside its bound). The rows' p-values are
Holm-combined at ``alpha``. The ``E[q^L]`` row is left untested when its
mean is too skewed for a z-test (:func:`initsim.checks.skew_regime`), judged
from the predicted relative variance of ``q^L`` (:func:`_predicted_rel_var`),
not the sample's.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from initsim import activations as _activations
from initsim._validate import check_int, check_real

__all__ = ["PairResult", "check_pair", "pair_predictions", "propagate_pair"]


def _parts(activation: Any) -> tuple[_activations.Activation, str]:
    """Return the activation to propagate (a shaping's :attr:`Shaping.activation`), its label."""
    if _is_shaping(activation):
        try:
            act = activation.activation  # shaped() refuses non-finite parameters, naming them
        except ValueError as err:
            raise ValueError(f"activation: {err}") from None
        return act, f"{getattr(activation, 'method', 'shaped')}({activation.base.label})"
    try:
        act = _activations.get(activation)
    except (TypeError, ValueError) as err:
        raise ValueError(f"activation: {err}") from None
    return act, act.label


@dataclass(frozen=True)
class PairResult:
    """Per-net, per-layer kernels of two inputs (what :func:`propagate_pair` returns).

    Attributes
    ----------
    k11, k22, k12 : numpy.ndarray (nets, depth)
        ``x_i . x_j / n`` of layer ``l``'s outputs (column ``l - 1``).
    provenance : dict
        Seed, configuration (with its sha256), versions, timing.
    activation : Activation or Shaping
        What was propagated (the check's predictions are its maps).
    """

    k11: np.ndarray
    k22: np.ndarray
    k12: np.ndarray
    provenance: dict[str, Any] = field(default_factory=dict)
    activation: Any = None

    @property
    def nets(self) -> int:
        """Number of nets."""
        return int(self.k11.shape[0])

    @property
    def depth(self) -> int:
        """Number of layers."""
        return int(self.k11.shape[1])

    @property
    def correlation(self) -> np.ndarray:
        """``K12 / sqrt(K11 K22)`` per net and layer (NaN where a kernel is 0)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.k12 / np.sqrt(self.k11 * self.k22)

    @property
    def q(self) -> np.ndarray:
        """``(K11 + K22) / 2`` per net and layer."""
        return 0.5 * (self.k11 + self.k22)


def propagate_pair(
    activation: Any,
    depth: int,
    *,
    width: int = 512,
    c0: float = 0.0,
    sigma_w2: float = 1.0,
    nets: int = 200,
    seed: Any = 0,
    threads: int | None = None,
) -> PairResult:
    """Propagate two inputs of correlation ``c0`` through many random vanilla nets.

    Parameters
    ----------
    activation : str, Activation or Shaping
        A built-in activation, or the result of :func:`initsim.theory.dks` /
        :func:`initsim.theory.tat` (its transformed ``phi_hat``).
    depth : int
        Number of dense layers, ``>= 1``.
    width : int
        Width of every layer, ``>= 1``.
    c0 : float
        Correlation of the two inputs, in ``[-1, 1]`` (0: orthogonal inputs).
    sigma_w2 : float
        ``n Var(W_ij) > 0``; 1 is the shaping papers' convention.
    nets : int
        Number of independent nets.
    seed : int, SeedSequence, Generator or None
        The run's seed; the same seed gives bit-identical results for any
        thread count.
    threads : int, optional
        Numba threads.

    Returns
    -------
    PairResult
        The kernels and the provenance.

    Raises
    ------
    ValueError
        For an invalid argument (the message names it).
    """
    from initsim.engine.pairs import N_PAIR_STATS, pair_kernel
    from initsim.plan import MAX_DEPTH, check_width
    from initsim.provenance import (
        check_threads,
        config_hash,
        numba_threads,
        seed_record,
        versions,
    )
    from initsim.rng import net_keys, root_key
    from initsim.seeding import as_seed_sequence

    act, label = _parts(activation)
    depth = check_int("depth", depth, maximum=MAX_DEPTH)
    n = check_width("width", width)
    c0 = check_real("c0", c0, minimum=-1.0)
    if c0 > 1.0:
        raise ValueError(f"c0 must be a correlation in [-1, 1]; got {c0}")
    sigma_w2 = check_real("sigma_w2", sigma_w2, minimum=0.0, strict=True)
    nets = check_int("nets", nets)
    threads = check_threads(threads)
    ss = as_seed_sequence(seed)
    root = root_key(ss)
    stats = np.zeros((nets, depth, N_PAIR_STATS))
    started = time.perf_counter()
    with numba_threads(threads) as used:
        pair_kernel(net_keys(root, 0, nets), n, depth, sigma_w2, c0, act.kernel, stats)
    config = {
        "kind": "pair",
        **act.config(),
        "label": label,
        "depth": depth,
        "width": n,
        "c0": c0,
        "sigma_w2": sigma_w2,
        "nets": nets,
    }
    provenance = {
        **seed_record(ss, root),
        "config": config,
        "config_sha256": config_hash(config),
        "threads": used,
        "elapsed_s": time.perf_counter() - started,
        "versions": versions(),
    }
    return PairResult(
        k11=stats[:, :, 0].copy(),
        k22=stats[:, :, 1].copy(),
        k12=stats[:, :, 2].copy(),
        provenance=provenance,
        activation=activation,
    )


def pair_predictions(
    activation: Any, depth: int, c0: float, sigma_w2: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Mean-field ``q^l`` and ``c^l`` of the layers' outputs, ``l = 1 .. depth``.

    Parameters
    ----------
    activation : str, Activation or Shaping
        As for :func:`propagate_pair`.
    depth : int
        Number of layers.
    c0 : float
        The inputs' correlation.
    sigma_w2 : float
        ``n Var(W_ij)``; a shaping needs 1 (its maps assume it).

    Returns
    -------
    q, c : numpy.ndarray (depth,)
        Predicted ``E[K11]`` and correlation of layer ``l``'s outputs.
    """
    if _is_shaping(activation):
        if sigma_w2 != 1.0:
            raise ValueError(
                f"sigma_w2: a shaped activation's maps assume sigma_w2 = 1; got {sigma_w2}"
            )
        c = np.empty(depth)
        q = np.empty(depth)
        cur = float(c0)
        qq = 1.0
        for t in range(depth):
            cur = float(activation.local_c_map(cur))
            qq = float(activation.q_map(qq))
            c[t] = cur
            q[t] = qq
        return q, c
    from initsim import theory

    act = _activations.get(activation)
    # pre-activations of layer l + 1 have q^{l+1} = sigma_w2 K11^l and correlation c^l
    qh = theory.q_map(act, sigma_w2, 0.0, 1.0, depth + 1)
    ch = theory.c_map(act, sigma_w2, 0.0, c0, depth + 1, 1.0)
    return np.asarray(qh[1:]) / sigma_w2, np.asarray(ch[1:])


def _predicted_rel_var(target: Any, q_pred: np.ndarray, sigma_w2: float, n: int) -> float:
    """Relative variance of one net's ``K11`` at the output, under the claim's law.

    Given the previous layer, ``K11^l`` is the mean of ``n`` iid ``phi(h)^2``,
    ``h ~ N(0, sigma_w2 K11^{l-1})``, with relative variance
    ``kappa_l / n``, ``kappa_l = E[phi^4] / E[phi^2]^2 - 1``; over the
    layers the relative variances compound, ``prod(1 + kappa_l / n) - 1``
    (exact for positively homogeneous activations, as Hanin and Rolnick's
    ``prod(1 + 5/n)`` for ReLU; mean-field otherwise). ``q = (K11 + K22) / 2``
    varies less, so this is a conservative input to the skewness guard: the
    sample variance of such log-normal-like values underestimates the true
    one (:func:`initsim.checks.skew_regime`).
    """
    from initsim.theory.gaussian import PHI2, PHI4, expect_scalar

    act = _parts(target)[0]
    total = 1.0
    q_in = 1.0
    for q_out in q_pred:
        qh = sigma_w2 * q_in
        m2 = expect_scalar(act, qh, PHI2)
        m4 = expect_scalar(act, qh, PHI4)
        if not (m2 > 0.0 and math.isfinite(m4)):
            return math.inf
        total *= 1.0 + (m4 / (m2 * m2) - 1.0) / n
        q_in = float(q_out)
    return total - 1.0


def _is_shaping(activation: Any) -> bool:
    return hasattr(activation, "input_scale") and hasattr(activation, "base")


def check_pair(result: PairResult, *, alpha: float = 0.01, claim: Any = None) -> Any:
    """Hold the output layer of a :func:`propagate_pair` run against the theory.

    Parameters
    ----------
    result : PairResult
        The run.
    alpha : float
        Family-wise false-rejection rate in (0, 1).
    claim : str, Activation or Shaping, optional
        Whose maps give the prediction: by default the propagated activation's
        (at the run's ``sigma_w2``); a shaping's own maps (``sigma_w2 = 1``)
        to ask whether a net keeps what the shaping promises, e.g. a plain
        ReLU net against TAT's ``C_net(0) = eta``.

    Returns
    -------
    initsim.checks.CheckReport
        Rows ``E[c^L]`` and ``E[q^L]`` (see the module docstring), Holm-combined.
    """
    from dataclasses import replace

    from scipy import stats as _stats

    from initsim.checks import MIN_NETS, CheckReport, holm, skew_regime, z_row

    alpha = check_real("alpha", alpha, minimum=0.0, strict=True)
    if not alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1); got {alpha}")
    if result.nets < MIN_NETS:
        raise ValueError(f"checks need at least {MIN_NETS} nets; the result has {result.nets}")
    cfg = result.provenance["config"]
    activation = (
        result.activation
        if result.activation is not None
        else _activations.Activation.from_config(cfg)
    )
    target = activation if claim is None else claim
    depth, n = result.depth, int(cfg["width"])
    sigma_w2 = 1.0 if _is_shaping(target) else cfg["sigma_w2"]
    q_pred, c_pred = pair_predictions(target, depth, cfg["c0"], sigma_w2)
    homogeneous = _parts(target)[0].positively_homogeneous
    zc = _stats.norm.isf(alpha / 2)
    rows = []
    c_bound = depth * (1.0 - abs(c_pred[-1])) / n
    q_bound = 0.0 if homogeneous else abs(q_pred[-1]) * depth / n
    for quantity, obs, pred, bound in (
        ("E[c^L]", result.correlation[:, -1], c_pred[-1], c_bound),
        ("E[q^L]", result.q[:, -1], q_pred[-1], q_bound),
    ):
        regime = "exact" if bound == 0.0 else f"mean-field, finite-width bound {bound:.3g}"
        row, se = z_row(depth, quantity, obs, float(pred), alpha, regime)
        if bound > 0.0 and se > 0.0 and math.isfinite(row.observed):
            excess = max(0.0, abs(row.observed - float(pred)) - bound)
            p = float(2.0 * _stats.norm.sf(excess / se))
            half = zc * se + bound
            row = replace(row, p_value=p, interval=(row.observed - half, row.observed + half))
        if quantity == "E[q^L]":
            row = skew_regime(row, _predicted_rel_var(target, q_pred, sigma_w2, n), result.nets)
        rows.append(row)
    tested = [i for i, r in enumerate(rows) if not math.isnan(r.p_value)]
    reject = holm(np.array([rows[i].p_value for i in tested]), alpha) if tested else []
    for i, rej in zip(tested, reject, strict=True):
        rows[i] = replace(rows[i], verdict="FAIL" if rej else "PASS")
    verdict = "FAIL" if any(r.verdict == "FAIL" for r in rows) else "PASS"
    notes = [] if tested else ["no row could be tested: run more nets"]
    return CheckReport(rows=rows, alpha=alpha, verdict=verdict, notes=notes)
