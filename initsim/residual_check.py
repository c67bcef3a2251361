"""Statistical verdicts for residual nets: a :class:`ResidualResult` held against the theory.

:func:`initsim.check` calls :func:`check_residual` for results of
``simulate(arch="residual")``. Rows, per block:

- ``E[q]`` of the stream, a z-test of the mean over nets against
  :func:`initsim.theory.residual.residual_q_map`. Exact at every width for
  positively homogeneous activations (ReLU, linear, leaky ReLU) with
  zero-mean symmetric weights, two or more branch layers (linear also one)
  and ``norm="none"``; with ``norm="pre"`` exact up to the normalization's
  ``eps`` (the normalised input has mean square
  ``v / (v + eps)`` instead of 1), tested while that bias stays below half
  the standard error. Otherwise mean-field, tested only while a conservative
  bound on the neglected ``O(1/n)`` terms (``|prediction| * blocks / n``)
  stays below half the standard error. With ``norm="post"`` the stream is
  normalised after every block: ``q`` is fixed, not tested.
- ``E[branch q]``, the mean square entering the branch's first
  nonlinearity: ``sigma_1^2 ms(u) + sigma_b^2`` with ``ms(u)`` the previous
  ``E[q]`` (``norm="none"``) or 1 (a normalised input, up to ``eps``). Exact
  for any activation with a normalised input, and where ``E[q]`` is exact.
- ``E[grad^2]`` of the stream (``backward=True``), against
  :func:`initsim.theory.residual.residual_grad_map`: exact in the exact
  forward regime with ``norm="none"`` (no gradient-independence assumption is
  needed there), mean-field otherwise, guarded the same way.

Rows whose per-net values are too skewed for a z-test (the empirical
relative variance, through :func:`initsim.checks._skew_regime`) or that
overflowed are not tested. The p-values of the tested rows are combined with
Holm's step-down method at the family-wise rate ``alpha``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from initsim import initializers as _initializers
from initsim.activations import Activation
from initsim.residual import branch_fans

__all__ = [
    "ResidualTheoryInputs",
    "check_residual",
    "residual_predictions",
    "residual_theory_inputs",
    "theory_args",
]


@dataclass(frozen=True)
class ResidualTheoryInputs:
    """What the residual theory needs from a stored result.

    Attributes
    ----------
    activation : Activation
        The branch nonlinearity.
    sigma_w2 : tuple of float
        ``fan_in * Var(W_k)`` per branch layer (0 for a zero layer).
    act_scale : float
        The activations' multiplier (NF's gamma; 1 otherwise).
    alpha, skip, in_scale : numpy.ndarray
        Per block.
    branch_layers, width, width_branch, blocks : int
        ``m``, ``n``, ``n_b``, ``L``.
    norm, norm_kind : str
        The normalization.
    eps, sigma_b2 : float
        The normalization's epsilon and the bias variance.
    """

    activation: Activation
    sigma_w2: tuple[float, ...]
    act_scale: float
    alpha: np.ndarray
    skip: np.ndarray
    in_scale: np.ndarray
    branch_layers: int
    width: int
    width_branch: int
    blocks: int
    norm: str
    norm_kind: str
    eps: float
    sigma_b2: float


def residual_theory_inputs(result: Any) -> tuple[ResidualTheoryInputs, None] | tuple[None, str]:
    """Read the residual theory's inputs from a result's provenance, or say why it does not apply.

    Parameters
    ----------
    result : ResidualResult
        A result of ``simulate(arch="residual")``.

    Returns
    -------
    (ResidualTheoryInputs, None) or (None, str)
        The inputs, or None and the reason: no config, a branch law that is
        neither zero-mean symmetric random nor exactly zero, or a user array
        as input.
    """
    provenance = getattr(result, "provenance", None)
    cfg = provenance.get("config") if provenance else None
    if not cfg or cfg.get("arch") != "residual":
        return None, "result has no residual provenance config: pass simulate(arch='residual')"
    try:
        return _read_inputs(cfg)
    except (KeyError, TypeError, ValueError) as err:
        return None, f"its config could not be read ({type(err).__name__}: {err})"


def _read_inputs(cfg: Any) -> tuple[ResidualTheoryInputs, None] | tuple[None, str]:
    n, nb, m = int(cfg["width"]), int(cfg["width_branch"]), int(cfg["branch_layers"])
    fans = branch_fans(n, nb, m)
    act_scale = float(cfg.get("act_scale", 1.0))
    if len(cfg["init"]) != m or len(cfg["init_params"]) != m:
        raise ValueError(f"it names {len(cfg['init'])} initializers for {m} branch layers")
    sigma_w2 = []
    for k, (name, params) in enumerate(zip(cfg["init"], cfg["init_params"], strict=True)):
        ini = _initializers.get(name, **params)
        spec = ini.law_spec(*fans[k])
        if spec.law == "constant" and spec.value == 0.0:
            s2 = 0.0  # a zero-initialised layer: the branch is exactly 0
        elif not spec.is_centred():
            return None, (
                f"the theory covers zero-mean symmetric random (or zero) branch weights; "
                f"branch layer {k + 1} ({ini.name!r}, law {spec.law!r}) is neither"
            )
        elif spec.law == "orthogonal":
            s2 = spec.gain**2 * fans[k][0] / max(fans[k])
        else:
            s2 = ini.sigma_w2(*fans[k])
        sigma_w2.append(s2)
    if cfg["input"] not in ("sphere", "gaussian"):
        return None, "checks need input='sphere' or 'gaussian' (a known input norm law)"
    act = Activation.from_config(cfg)
    return ResidualTheoryInputs(
        activation=act,
        sigma_w2=tuple(sigma_w2),
        act_scale=act_scale,
        alpha=np.asarray(cfg["alpha"], dtype=float),
        skip=np.asarray(cfg["skip"], dtype=float),
        in_scale=np.asarray(cfg["in_scale"], dtype=float),
        branch_layers=m,
        width=n,
        width_branch=nb,
        blocks=int(cfg["depth"]),
        norm=cfg["norm"],
        norm_kind=cfg["norm_kind"],
        eps=float(cfg["eps"]),
        sigma_b2=float(cfg["bias_std"]) ** 2,
    ), None


def theory_args(ti: ResidualTheoryInputs) -> tuple[list[float], np.ndarray, dict[str, Any]]:
    """Return ``(sigma_w2, alpha, keywords)`` of the theory maps for this configuration.

    A zero branch layer without biases makes the branch exactly 0: the maps
    (which take positive variances) then get ``alpha = 0``.

    Parameters
    ----------
    ti : ResidualTheoryInputs
        What :func:`residual_theory_inputs` read.

    Returns
    -------
    sigma_w2 : list of float
        Per branch layer.
    alpha : numpy.ndarray
        Per block.
    keywords : dict
        The maps' other keywords (``branch_layers``, ``norm``, ``skip``,
        ``sigma_b2``, ``in_scale``, ``act_scale``, ``eps``).

    Raises
    ------
    ValueError
        For a zero branch layer followed by biases (not modelled).
    """
    sigma = list(ti.sigma_w2)
    alpha = ti.alpha
    if any(s == 0.0 for s in sigma):
        if ti.sigma_b2 > 0.0:
            raise ValueError(
                "the residual theory needs positive branch variances when the branch has "
                "biases (a zero branch layer with bias_std > 0)"
            )
        sigma = [1.0] * len(sigma)
        alpha = np.zeros_like(alpha)
    kwargs = {
        "branch_layers": ti.branch_layers,
        "norm": ti.norm,
        "skip": ti.skip,
        "sigma_b2": ti.sigma_b2,
        "in_scale": ti.in_scale,
        "act_scale": ti.act_scale,
        "eps": ti.eps,
    }
    return sigma, alpha, kwargs


def residual_predictions(
    ti: ResidualTheoryInputs, *, backward: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Return the theory's ``E[q^l]`` and ``E[grad_sq^l]``, ``l = 1 .. L``, for these inputs.

    The lines :func:`check_residual` tests against (and the report draws):
    :func:`initsim.theory.residual.residual_q_map` and
    :func:`~initsim.theory.residual.residual_grad_map` with ``q0 = 1`` (the
    input has ``E[||x^0||^2] = n``) and :func:`theory_args`.

    Parameters
    ----------
    ti : ResidualTheoryInputs
        What :func:`residual_theory_inputs` read.
    backward : bool
        Also return the gradient line (None otherwise).

    Returns
    -------
    q : numpy.ndarray (L,)
        Predicted ``E[q^l]`` (inf or NaN past an overflow).
    grad_sq : numpy.ndarray (L,) or None
        Predicted ``E[grad_sq^l]``.

    Raises
    ------
    ValueError
        Where the theory does not cover the configuration.
    """
    from initsim.theory.residual import residual_grad_map, residual_q_map

    sigma, alpha_eff, kw = theory_args(ti)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        q = np.asarray(residual_q_map(ti.activation, sigma, alpha_eff, ti.blocks, 1.0, **kw))
        g = None
        if backward:
            g = np.asarray(residual_grad_map(ti.activation, sigma, alpha_eff, ti.blocks, 1.0, **kw))
    return q, g


def check_residual(result: Any, *, alpha: float, claims: Sequence[str] = ()) -> Any:
    """Test a residual simulation against the theory (see the module docstring).

    Parameters
    ----------
    result : ResidualResult
        Output of ``simulate(arch="residual")``.
    alpha : float
        Family-wise false-rejection rate in (0, 1), validated by :func:`initsim.check`.
    claims : sequence of str
        Claims (none apply to residual nets yet; a claim is an error).

    Returns
    -------
    CheckReport
        Rows, notes and the verdict.

    Raises
    ------
    ValueError
        For a claim, too few nets, or a configuration the theory does not cover.
    """
    from initsim.checks import (
        MIN_NETS,
        REGIME_FRACTION,
        CheckReport,
        CheckRow,
        holm,
        overflow_row,
        skew_regime,
        z_row,
    )
    from initsim.result import mean_and_se

    if claims:
        raise ValueError(f"claims ({', '.join(claims)}) apply to arch='mlp' results only")
    if result.nets < MIN_NETS:
        raise ValueError(f"checks need at least {MIN_NETS} nets; the result has {result.nets}")
    ti, reason = residual_theory_inputs(result)
    if ti is None:
        raise ValueError(reason)
    act, L, n = ti.activation, ti.blocks, min(ti.width, ti.width_branch)
    homogeneous = act.positively_homogeneous
    pred_q, pred_g = residual_predictions(ti, backward=result.grad_sq is not None)
    rows: list[CheckRow] = []
    nets = result.nets
    # exact at every width (initsim.theory.residual): positively homogeneous activations
    # with two or more branch layers (linear also with one); gradients with norm none
    forward_exact = homogeneous and (ti.branch_layers >= 2 or act.name == "linear")
    grad_exact = forward_exact and ti.branch_layers >= 2 and ti.norm == "none"

    def regime_guard(row: CheckRow, se: float, bias: float, why: str) -> CheckRow:
        if not bias <= REGIME_FRACTION * se:
            return replace(row, p_value=math.nan, regime=why)
        return row

    for t in range(L):
        obs = result.q[:, t]
        if ti.norm == "post":
            m_obs = float(mean_and_se(obs)[0]) if np.all(np.isfinite(obs)) else math.nan
            rows.append(
                CheckRow(t + 1, "E[q]", m_obs, float(pred_q[t]), (math.nan, math.nan), math.nan,
                         "fixed by the post-normalization: not tested")
            )  # fmt: skip
            continue
        if not np.all(np.isfinite(obs)) or not math.isfinite(pred_q[t]):
            rows.append(overflow_row(t + 1, "E[q]", obs, pred_q[t]))
            continue
        regime = "mean-field"
        if forward_exact:
            regime = "exact" if ti.norm == "none" else "exact up to eps"
        row, se = z_row(t + 1, "E[q]", obs, float(pred_q[t]), alpha, regime)
        if ti.norm == "pre" and forward_exact:
            # the normalised input's mean square is v / (v + eps) <= 1: the bias of E[q]
            # is at most the increments times eps / (smallest variance, about 1)
            incr = np.abs(np.diff(np.concatenate(([1.0], pred_q[: t + 1]))))
            bias = float(np.sum(incr)) * ti.eps
            row = regime_guard(row, se, bias, f"eps = {ti.eps:g} too large for the exact rows")
        elif not forward_exact:
            bias = abs(float(pred_q[t])) * (t + 1) / n
            row = regime_guard(row, se, bias, f"outside the mean-field regime at width {n}")
        rel_var = float(np.var(obs) / np.mean(obs) ** 2) if np.mean(obs) != 0 else 0.0
        rows.append(skew_regime(row, rel_var, nets))

    # E[branch q]: the first branch layer sees u = in_scale (N(x^l) or x^l), and
    # E|W_1 u|^2 / n_b = sigma_1^2 ms(u) exactly for zero-mean iid (or Haar) weights;
    # ms(u) is E[q^l] (norm none) or 1 up to eps (pre: N(x^l); post: x^l, normalised)
    q_in = np.concatenate(([1.0], pred_q[:-1]))
    s1 = ti.sigma_w2[0] if ti.branch_layers >= 2 else 1.0
    sb = ti.sigma_b2 if ti.branch_layers >= 2 else 0.0
    for t in range(L):
        obs = result.branch_q[:, t]
        normalised = ti.norm == "pre" or (ti.norm == "post" and t > 0)
        ms_u = ti.in_scale[t] ** 2 * (1.0 if normalised else q_in[t])
        pred = s1 * ms_u + sb
        if not np.all(np.isfinite(obs)) or not math.isfinite(pred):
            rows.append(overflow_row(t + 1, "E[branch q]", obs, pred))
            continue
        exact = normalised or forward_exact or t == 0
        row, se = z_row(t + 1, "E[branch q]", obs, pred, alpha, "exact" if exact else "mean-field")
        if normalised:
            bias = s1 * ti.in_scale[t] ** 2 * ti.eps  # ms(N(x)) = v / (v + eps), v about 1
            row = regime_guard(row, se, bias, f"eps = {ti.eps:g} too large for the exact rows")
        elif not exact:
            bias = abs(pred) * t / n
            row = regime_guard(row, se, bias, f"outside the mean-field regime at width {n}")
        rel_var = float(np.var(obs) / np.mean(obs) ** 2) if np.mean(obs) != 0 else 0.0
        rows.append(skew_regime(row, rel_var, nets))

    if pred_g is not None:
        for t in range(L):
            obs = result.grad_sq[:, t]
            if not np.all(np.isfinite(obs)) or not math.isfinite(pred_g[t]):
                rows.append(overflow_row(t + 1, "E[grad^2]", obs, pred_g[t]))
                continue
            regime = "exact" if grad_exact else "mean-field"
            row, se = z_row(t + 1, "E[grad^2]", obs, float(pred_g[t]), alpha, regime)
            if not grad_exact:
                bias = abs(float(pred_g[t])) * (L - t) / n
                row = regime_guard(row, se, bias, f"outside the mean-field regime at width {n}")
            rel_var = float(np.var(obs) / np.mean(obs) ** 2) if np.mean(obs) != 0 else 0.0
            rows.append(skew_regime(row, rel_var, nets))

    tested = [i for i, r in enumerate(rows) if not math.isnan(r.p_value)]
    reject = holm(np.array([rows[i].p_value for i in tested]), alpha) if tested else []
    for i, rej in zip(tested, reject, strict=True):
        rows[i] = replace(rows[i], verdict="FAIL" if rej else "PASS")
    notes = []
    if not tested:
        notes.append("no row could be tested: run more nets, wider nets, or fewer blocks")
    if any(r.regime.startswith("outside") for r in rows):
        notes.append(
            "rows outside the mean-field regime are not tested: the simulation resolves "
            "effects of order 1/width that the theory leaves out (use wider nets)"
        )
    verdict = "FAIL" if any(r.verdict == "FAIL" for r in rows) else "PASS"
    return CheckReport(rows=rows, alpha=alpha, verdict=verdict, notes=notes)
