"""Signal, gradient and correlation propagation through residual networks.

This module owns the theory of the residual nets that
``initsim.simulate(arch="residual")`` samples (:mod:`initsim.residual`).

The model
---------
* The stream ``x^l`` has width ``n``; ``q^l = ||x^l||^2 / n`` is its mean
  square, ``q^0`` is given (the input) and block ``l = 1..L`` maps
  ``x^{l-1}`` to ``x^l``.
* The branch ``F`` of a block has ``m = branch_layers`` dense layers of
  hidden width ``n_b``. For ``m >= 2``,
  ``F(u) = W_m gamma phi(... gamma phi(W_2 gamma phi(W_1 u + b_1) + b_2) ...) + b_m``
  (``W_1: n -> n_b``, ``W_2 .. W_{m-1}: n_b -> n_b``, ``W_m: n_b -> n``);
  for ``m = 1``, ``F(u) = W_1 gamma phi(u) + b_1`` (``W_1: n -> n``; ``phi``
  acts on the branch input itself). ``gamma = act_scale`` multiplies every
  activation (NF-ResNets' ``gamma``, :func:`nf_gamma`; 1 otherwise).
* Weights are independent with mean 0 and ``Var(W_k[i, j]) = sigma_k^2 /
  fan_in`` (``sigma_w2`` is one ``sigma^2`` for every branch layer, or the
  ``m`` values ``sigma_1^2 .. sigma_m^2``); biases are ``N(0, sigma_b2)``.
* With the branch multiplier ``alpha``, the skip multiplier ``skip`` and the
  branch-input scale ``in_scale = s`` (NF-ResNets' ``1 / beta_l``), each
  per block or one value for all:

  - ``norm="none"``: ``x^l = skip x^{l-1} + alpha F(s x^{l-1})``;
  - ``norm="pre"``: ``x^l = skip x^{l-1} + alpha F(s N(x^{l-1}))``;
  - ``norm="post"``: ``x^l = N(skip x^{l-1} + alpha F(s x^{l-1}))``;

  ``N`` is RMSNorm ``z / sqrt(mean(z^2) + eps)`` or LayerNorm
  ``(z - mean z) / sqrt(var z + eps)`` over the units (no affine). Its output
  has mean square ``v / (v + eps)`` exactly, ``v`` the mean square (RMSNorm)
  or the variance over units (LayerNorm): 1 for ``eps = 0``. The maps use
  ``q / (q + eps)`` (``v = q`` in mean field, where the units' mean
  vanishes). BatchNorm is not modelled.

Length map (:func:`residual_q_map`)
-----------------------------------
The branch's output mean square given an input of mean square ``q_u`` is
the MLP length map run through the branch (Poole et al. 2016):

* ``m >= 2``: ``q_1 = sigma_1^2 q_u + sigma_b2``,
  ``q_{k+1} = sigma_{k+1}^2 gamma^2 E[phi(sqrt(q_k) z)^2] + sigma_b2`` and
  ``Q_F(q_u) = q_m``;
* ``m = 1``: ``Q_F(q_u) = sigma_1^2 gamma^2 E[phi(sqrt(q_u) z)^2] + sigma_b2``
  (the input's entries treated as ``N(0, q_u)``, as in mean field).

Skip and branch are uncorrelated given ``x`` (``E[W_m] = 0``, ``E[b_m] = 0``),
so ``q^l = skip^2 q^{l-1} + alpha^2 Q_F(s^2 q^{l-1})`` (none),
``q^l = skip^2 q^{l-1} + alpha^2 Q_F(s^2 q^{l-1} / (q^{l-1} + eps))`` (pre) and
``q^l = p / (p + eps)`` with ``p = skip^2 q^{l-1} + alpha^2 Q_F(s^2 q^{l-1})``
(post: 1 for ``eps = 0``).

Exact at every finite width (derived here). Let ``phi`` be positively
homogeneous (linear, relu, leaky_relu with slope ``a``), so that
``E[phi(h)^2] = c_phi E[h^2]`` for any symmetric ``h`` (``c_phi = 1, 1/2,
(1 + a^2) / 2``). Given the branch input ``u``, ``(W_1, b_1)`` and ``-(W_1,
b_1)`` are equally likely, so ``h_1 = W_1 u + b_1`` is symmetric and
``E[||phi(h_1)||^2 / n_b | u] = c_phi (sigma_1^2 ||u||^2 / n + sigma_b2)``;
the same holds layer by layer, so ``E[||F||^2 / n | u] = Q_F(||u||^2 / n)``
exactly (``Q_F`` is affine). Hence, for ``m >= 2``, **any** widths ``n``,
``n_b``, any input and any weight law with independent, symmetric entries
(Gaussian or not), ``E[q^l]`` follows the map exactly for ``norm="none"``;
for ``norm="pre"`` with ``eps = 0`` (``||N(x)||^2 / n = 1`` exactly, for
RMSNorm and for LayerNorm alike: centring does not matter), and for
``norm="post"`` with ``eps = 0`` (``q^l = 1`` for every net). E.g. relu,
``m = 2``, ``norm="none"``:
``E[q^l] = E[q^{l-1}] (skip^2 + alpha^2 s^2 sigma_1^2 sigma_2^2 / 2)``
(+ the bias terms); ``norm="pre"``: ``E[q^l] = skip^2 E[q^{l-1}] +
alpha^2 s^2 sigma_1^2 sigma_2^2 / 2``. A linear ``phi`` is exact for
``m = 1`` too. For relu and leaky_relu with ``m = 1``, ``phi`` acts on the
stream, whose entries are not symmetric at finite width after the first
block (``x^1 = x^0 + alpha W relu(x^0)`` is not): the map is mean field
there, with ``O(1/n)`` errors (the first block is exact for a sign-symmetric
input, e.g. uniform on a sphere; measured for He relu, ``alpha = 0.8``: the
fifth block's ``E[q]`` exceeds the map by about ``1.1 / n`` relative). For
other activations the map is mean field; with Gaussian weights and
``m = 2`` the branch is still exact given ``u`` and the only finite-width error is Jensen's gap
``E[Q_F(s^2 q)] - Q_F(s^2 E[q])``, at most ``s^4 sup|Q_F''| Var(q) / 2``.

Gradient map (:func:`residual_grad_map`)
----------------------------------------
``g^l`` is the mean square of ``dL/dx^l`` for ``L = u . x^L``, ``u ~ N(0, I)``
(so ``g^L = 1``; the convention of :class:`initsim.result.ResidualResult`).
With ``D_k = gamma diag(phi'(h_k))`` the branch Jacobian is
``J_F = W_m D_{m-1} W_{m-1} ... D_1 W_1`` (``m >= 2``) or ``W_1 D(u)``
(``m = 1``). Because ``Var(W[i, j]) = sigma^2 / fan_in``,
``E||W^T v||^2 = sigma^2 ||v||^2`` (the mean square per unit scales by
``sigma^2 fan_out / fan_in``), and the width factors cancel along the branch
(``n / n_b`` at ``W_m``, ``n_b / n`` at ``W_1``). Under the
gradient-independence assumption (Schoenholz et al. 2017) the branch's mean
squared Jacobian factor is

* ``chi_F(q_u) = prod_{k=1..m} sigma_k^2 * prod_{k=1..m-1} gamma^2 E[phi'(sqrt(q_k) z)^2]``
  (``m >= 2``, with the ``q_k`` of the length map), and
* ``chi_F(q_u) = sigma_1^2 gamma^2 E[phi'(sqrt(q_u) z)^2]`` (``m = 1``),

the cross term ``2 skip alpha s g^T J_F g`` averages to 0 (``E[W_m] = 0``),
and

* none: ``g^{l-1} = (skip^2 + alpha^2 s^2 chi_F(s^2 q^{l-1})) g^l``;
* pre: ``g^{l-1} = (skip^2 + alpha^2 s^2 chi_F(q_u) / (q^{l-1} + eps)) g^l``
  with ``q_u = s^2 q^{l-1} / (q^{l-1} + eps)``;
* post: ``g^{l-1} = (skip^2 + alpha^2 s^2 chi_F(s^2 q^{l-1})) g^l / (p^l + eps)``
  with ``p^l = skip^2 q^{l-1} + alpha^2 Q_F(s^2 q^{l-1})`` the mean square
  entering ``N``.

The norms' Jacobians: RMSNorm at ``x`` of mean square ``q`` is
``(I - beta xhat xhat^T) / sqrt(q + eps)``, ``beta = q / (q + eps)``;
LayerNorm at ``x`` of variance ``v`` removes the directions ``1`` and
``x - mean x`` and scales by ``1 / sqrt(v + eps)``. On a gradient that is
isotropic relative to ``x`` they multiply its mean square by
``(1 - (2 beta - beta^2) / n) / (q + eps)`` (RMSNorm) resp.
``(1 - 1/n - (2 beta - beta^2) / n) / (v + eps)`` (LayerNorm). The maps keep
``1 / (q + eps)`` and **drop** the ``O(1/n)`` terms: the removed directions
(``-1/n``, ``-2/n``), ``v = q (1 - 1/n)`` for LayerNorm, and the gap between
``E[1 / q]`` and ``1 / E[q]`` (``+O(1/n)``, from the fluctuations of ``q``).
Measured for pre-RMSNorm He relu, ``alpha = 0.8``, four blocks: the first
block's ``g`` exceeds the map by about ``2 / n`` relative (post: about
``4.5 / n``); the forward map stays exact.

With pre-norm relu (``m >= 2``, skip 1, ``s = 1``, ``eps = 0``),
``Q_F(1) = chi_F``, so ``g^{l-1} = g^l q^l / q^{l-1}`` and
``g^l = q^L / q^l``: gradients at block ``l`` are larger than at the output
by the growth of the stream after it.

Exact at every finite width (derived here): for ``m >= 2``, positively
homogeneous ``phi`` and ``norm="none"``, the recursion is exact (no
gradient-independence assumption), for any widths and any weight law with
independent, symmetric entries. Proof: ``E||J^T u||^2 = E tr(J^T J) =
sum_p E||J e_p||^2`` for ``J = dx^L / dx^l``, i.e. forward tangents.
Block ``b`` maps a tangent ``t`` at ``x^{b-1}`` to
``skip t + alpha s J_F t``, and ``(x^{b-1}, t)`` depend on earlier blocks
only. Given them, ``E[t^T J_F t] = 0`` (``E[W_m] = 0``),
``E||W_k v||^2 = sigma_k^2 (fan_out / fan_in) ||v||^2``, and
``E[phi'(h_i)^2 w_i^2] = c_phi E[w_i^2]`` because row ``i`` of ``(W_k, b_k)``
and its negative are equally likely and flip ``(h_i, w_i)``; so
``E[||t'||^2 | x, t] = (skip^2 + alpha^2 s^2 chi_F) ||t||^2`` with the
constant ``chi_F = prod sigma_k^2 (c_phi gamma^2)^{m-1}``. Outside this regime
the map is mean field: ``m = 1`` relu/leaky_relu (``D(x)`` is a function of
the stream, correlated with the tangent; a linear ``phi`` is exact),
pre/post norms (the ``O(1/n)`` terms above) and non-homogeneous ``phi``.

Correlation map (:func:`residual_c_map`)
----------------------------------------
Two inputs with the same ``q`` and correlation ``c``: the branch runs the MLP
correlation map (Poole et al. 2016) layer by layer (``E[phi(u_1) phi(u_2)]``
by :func:`initsim.theory.gaussian.bivariate`), the skip path keeps its
covariance, and ``c^l = (skip^2 q^{l-1} c^{l-1} + alpha^2 K_F) / q^l``.
It is evaluated through the gap ``q (1 - c)`` so that ``1 - c`` stays
accurate as ``c -> 1``. Rank collapse: with relu and He weights, ``m = 2``,
``c^l = (c^{l-1} + 2 alpha^2 kappa(c^{l-1})) / (1 + 2 alpha^2)`` with the
arc-cosine kernel ``kappa(c) = (sqrt(1 - c^2) + (pi - arccos c) c) / pi > c``,
so ``c -> 1`` with depth at ``alpha = 1``; at ``alpha = 1 / sqrt(L)`` the
correlation follows ``dc/dt = 2 (kappa(c) - c)`` on ``t in [0, 1]`` and
stays below 1 as ``L -> inf``.

Depth regimes (:func:`depth_regimes`)
-------------------------------------
With ``alpha = L^(-beta)``, skip 1 and no norm, relu (homogeneous, no bias)
gives ``q^L / q^0 = (1 + kappa L^(-2 beta))^L`` with
``kappa = Q_F(q) / q`` (He/He relu, ``m = 2``: ``kappa = 2``): it explodes
like ``exp(kappa L^(1 - 2 beta))`` for ``beta < 1/2``, tends to ``e^kappa``
at ``beta = 1/2`` (He/He relu: ``e^2``; in general ``q(1) / q(0)`` for
``dq/dt = Q_F(q)``) and to 1 for ``beta > 1/2``
(``q^L / q^0 - 1 ~ kappa L^(1 - 2 beta)``).

NF-ResNets (:func:`nf_gamma`)
-----------------------------
Brock et al. scale activations by ``gamma = 1 / sqrt(Var phi(z))``,
``z ~ N(0, 1)``, so that a unit-variance input gives a unit-variance
activation; :func:`nf_gamma` computes it by quadrature and
:data:`NF_GAMMA_PUBLISHED` holds the constants of the ``nfnets`` code
(:func:`nf_gamma_error` their relative errors, 3e-4 to 9e-4, all positive:
they are sample estimates).

References
----------
B. Poole, S. Lahiri, M. Raghu, J. Sohl-Dickstein and S. Ganguli, Exponential
expressivity in deep neural networks through transient chaos, NeurIPS 2016.

S. S. Schoenholz, J. Gilmer, S. Ganguli and J. Sohl-Dickstein, Deep
information propagation, ICLR 2017.

G. Yang and S. S. Schoenholz, Mean field residual networks: on the edge of
chaos, NeurIPS 2017.

S. Hayou, E. Clerico, B. He, G. Deligiannidis, A. Doucet and J. Rousseau,
Stable ResNet, AISTATS 2021.

A. Brock, S. De and S. L. Smith, Characterizing signal propagation to close
the performance gap in unnormalized ResNets, ICLR 2021 (and the ``nfnets``
code of google-deepmind/deepmind-research, ``nfnets/base.py``).

B. Hanin, Which neural net architectures give rise to exploding and
vanishing gradients?, NeurIPS 2018.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import integrate

from initsim._validate import check_choice, check_int, check_real
from initsim.activations import Activation
from initsim.theory._checks import (
    as_activation,
    as_real,
    check_c0,
    check_q0,
    check_sigma_b2,
    check_sigma_w2,
)
from initsim.theory.gaussian import (
    DPHI2,
    PHI,
    PHI2,
    FloatArray,
    bivariate,
    expect_scalar,
    through_gap,
)

__all__ = [
    "NF_GAMMA_PUBLISHED",
    "depth_regimes",
    "nf_gamma",
    "nf_gamma_error",
    "residual_c_map",
    "residual_grad_map",
    "residual_q_map",
]

#: Normalization placements the maps model.
_NORMS: tuple[str, ...] = ("none", "pre", "post")

#: NF-ResNet activation gains as published (Brock et al. 2021; the ``nfnets`` code,
#: ``nonlinearities`` in ``nfnets/base.py``, copied as ``_nonlin_gamma`` by timm),
#: keyed by initsim's activation names (``identity`` is ``linear``; ``swish`` is
#: ``silu``). They hold for the framework's default parameters: leaky_relu slope
#: 0.01 and elu alpha 1 (JAX's), and ``jax.nn.gelu``, whose default is the tanh
#: approximation (initsim's gelu is the exact ``x Phi(x)``).
NF_GAMMA_PUBLISHED: dict[str, float] = {
    "linear": 1.0,
    "relu": 1.7139588594436646,
    "leaky_relu": 1.70590341091156,
    "gelu": 1.7015043497085571,
    "silu": 1.7881293296813965,
    "tanh": 1.5939117670059204,
    "sigmoid": 4.803835391998291,
    "elu": 1.2716004848480225,
    "softplus": 1.9203323125839233,
    "selu": 1.0008515119552612,
}
_ALIASES = {"identity": "linear", "swish": "silu"}
# Activations with a closed-form bivariate kernel (where the gap is a subtraction anyway)


# ----------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------


def _per_block(name: str, value: Any, depth: int, *, minimum: float | None) -> FloatArray:
    """One finite float (>= minimum) per block, from a scalar or a sequence of ``depth``."""
    if np.ndim(value) == 0:
        values = [value] * depth
    else:
        if isinstance(value, str | bytes) or np.ndim(value) != 1:
            raise ValueError(f"{name} must be a number or one number per block; got {value!r}")
        values = list(value)
        if len(values) != depth:
            raise ValueError(
                f"{name} as a sequence must give one value per block: expected {depth} "
                f"(depth), got {len(values)}"
            )
    out = []
    for v in values:
        x = as_real(name, v)
        if not math.isfinite(x) or (minimum is not None and x < minimum):
            bound = "" if minimum is None else f" and >= {minimum:g}"
            raise ValueError(f"{name} must be finite{bound} in every block; got {value!r}")
        out.append(x)
    return np.array(out, dtype=np.float64)


def _branch_sigmas(sigma_w2: Any, m: int) -> FloatArray:
    """``sigma_1^2 .. sigma_m^2`` from one value or a sequence of ``m``."""
    if np.ndim(sigma_w2) == 0:
        return np.full(m, float(check_sigma_w2(sigma_w2)))
    if isinstance(sigma_w2, str | bytes) or np.ndim(sigma_w2) != 1 or len(sigma_w2) != m:
        raise ValueError(
            f"sigma_w2 must be one value or one value per branch layer (length {m}, "
            f"branch_layers); got {sigma_w2!r}"
        )
    return np.asarray(check_sigma_w2(sigma_w2, m), dtype=np.float64)


@dataclass(frozen=True)
class _Setup:
    act: Activation
    depth: int
    m: int
    sw: FloatArray  # (m,)
    sb: float
    alpha: FloatArray  # (depth,)
    skip: FloatArray
    s: FloatArray  # in_scale
    g2: float  # act_scale^2
    norm: str
    eps: float
    q0: float


def _setup(
    activation: Any,
    sigma_w2: Any,
    alpha: Any,
    depth: Any,
    q0: Any,
    branch_layers: Any,
    norm: Any,
    skip: Any,
    sigma_b2: Any,
    in_scale: Any,
    act_scale: Any,
    eps: Any,
) -> _Setup:
    act = as_activation(activation)
    depth = check_int("depth", depth)
    m = check_int("branch_layers", branch_layers)
    norm = check_choice("norm", norm, _NORMS)
    g = check_real("act_scale", act_scale, minimum=0.0)
    return _Setup(
        act=act,
        depth=depth,
        m=m,
        sw=_branch_sigmas(sigma_w2, m),
        sb=check_sigma_b2(sigma_b2),
        alpha=_per_block("alpha", alpha, depth, minimum=0.0),
        skip=_per_block("skip", skip, depth, minimum=None),
        s=_per_block("in_scale", in_scale, depth, minimum=0.0),
        g2=g * g,
        norm=norm,
        eps=check_real("eps", eps, minimum=0.0),
        q0=check_q0(q0),
    )


# ----------------------------------------------------------------------------------
# The branch and the forward pass
# ----------------------------------------------------------------------------------


def _branch(su: _Setup, q_u: float) -> tuple[float, float, list[float]]:
    """``(Q_F(q_u), chi_F(q_u), [q_1 .. q_{m-1}])`` of the branch (q_k: hidden layers)."""
    act, sw, sb, g2 = su.act, su.sw, su.sb, su.g2
    if math.isnan(q_u):
        return math.nan, math.nan, []
    if su.m == 1:
        qf = sw[0] * g2 * expect_scalar(act, q_u, PHI2) + sb
        return float(qf), float(sw[0] * g2 * expect_scalar(act, q_u, DPHI2)), []
    q = sw[0] * q_u + sb
    chi = float(sw[0])
    hidden = [float(q)]
    for k in range(1, su.m):
        chi *= g2 * expect_scalar(act, float(q), DPHI2) * sw[k]
        q = sw[k] * g2 * expect_scalar(act, float(q), PHI2) + sb
        if k < su.m - 1:
            hidden.append(float(q))
    return float(q), chi, hidden


def _normalised(q: float, eps: float) -> float:
    """Mean square ``q / (q + eps)`` of a normalization's output (mean field)."""
    if math.isnan(q):
        return math.nan
    if eps == 0.0:
        return 1.0 if q > 0.0 else math.nan
    return 1.0 if math.isinf(q) else q / (q + eps)


@dataclass(frozen=True)
class _Forward:
    q: FloatArray  # (depth + 1,): q^0 .. q^L
    q_u: FloatArray  # (depth,): the branch input's mean square, block 1..L
    q_f: FloatArray  # (depth,): Q_F
    chi_f: FloatArray  # (depth,): chi_F
    p: FloatArray  # (depth,): the mean square of skip x + alpha F (before a post norm)


def _forward(su: _Setup) -> _Forward:
    q = np.empty(su.depth + 1)
    q_u = np.empty(su.depth)
    q_f = np.empty(su.depth)
    chi_f = np.empty(su.depth)
    p = np.empty(su.depth)
    q[0] = su.q0
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging map overflows to inf
        for t in range(su.depth):
            prev = float(q[t])
            s2 = su.s[t] * su.s[t]
            qu = s2 * (_normalised(prev, su.eps) if su.norm == "pre" else prev)
            qf, chi, _ = _branch(su, qu)
            tot = su.skip[t] ** 2 * prev + su.alpha[t] ** 2 * qf
            q_u[t], q_f[t], chi_f[t], p[t] = qu, qf, chi, tot
            q[t + 1] = _normalised(tot, su.eps) if su.norm == "post" else tot
    return _Forward(q=q, q_u=q_u, q_f=q_f, chi_f=chi_f, p=p)


def residual_q_map(
    activation: str | Activation,
    sigma_w2: float | Sequence[float],
    alpha: float | Sequence[float],
    depth: int,
    q0: float = 1.0,
    *,
    branch_layers: int = 2,
    norm: str = "none",
    skip: float | Sequence[float] = 1.0,
    sigma_b2: float = 0.0,
    in_scale: float | Sequence[float] = 1.0,
    act_scale: float = 1.0,
    eps: float = 0.0,
) -> FloatArray:
    """Length map of a residual net: ``E[q^1], ..., E[q^L]``.

    ``q^l = skip^2 q^{l-1} + alpha^2 Q_F(s^2 q^{l-1})`` (``norm="none"``),
    ``q^l = skip^2 q^{l-1} + alpha^2 Q_F(s^2 q^{l-1} / (q^{l-1} + eps))``
    (``"pre"``) and ``q^l = p / (p + eps)`` with
    ``p = skip^2 q^{l-1} + alpha^2 Q_F(s^2 q^{l-1})`` (``"post"``), where
    ``Q_F`` is the MLP length map run through the branch
    (``q_1 = sigma_1^2 q_u + sigma_b2``,
    ``q_{k+1} = sigma_{k+1}^2 gamma^2 E[phi(sqrt(q_k) z)^2] + sigma_b2``,
    ``Q_F = q_m``; for one branch layer
    ``Q_F = sigma_1^2 gamma^2 E[phi(sqrt(q_u) z)^2] + sigma_b2``). The model and
    the derivations are in :mod:`initsim.theory.residual`.

    Parameters
    ----------
    activation : str or Activation
        The branch nonlinearity ``phi``.
    sigma_w2 : float or sequence of float
        ``sigma_k^2 = fan_in Var(W_k[i, j]) > 0``: one value for every branch
        layer or ``branch_layers`` values (``sigma_1^2 .. sigma_m^2``).
    alpha : float or sequence of float
        Branch multiplier ``>= 0``, one value or one per block (length ``depth``).
    depth : int
        Number of blocks ``L >= 1``.
    q0 : float, optional
        ``q^0 = ||x^0||^2 / n > 0`` (default 1).
    branch_layers : int, optional
        ``m >= 1`` (default 2).
    norm : {"none", "pre", "post"}, optional
        Where the normalization sits (default ``"none"``).
    skip : float or sequence of float, optional
        Skip multiplier (finite), one value or one per block (default 1).
    sigma_b2 : float, optional
        Variance of every branch bias, ``>= 0`` (default 0).
    in_scale : float or sequence of float, optional
        ``s >= 0``: the branch input is ``s x`` (``s N(x)`` for ``norm="pre"``),
        one value or one per block (default 1; NF-ResNets' ``1 / beta_l``).
    act_scale : float, optional
        ``gamma >= 0`` multiplying every activation (default 1; NF-ResNets' gamma).
    eps : float, optional
        The normalization's epsilon ``>= 0`` (default 0: the exact regime).

    Returns
    -------
    numpy.ndarray
        Shape ``(depth,)``; entry ``l - 1`` is ``E[q^l]``, the mean square of
        block ``l``'s output (``inf`` where the map overflows).

    Raises
    ------
    ValueError
        For an unknown activation or norm, ``depth < 1``,
        ``branch_layers < 1``, ``sigma_w2`` not positive or of the wrong
        length, ``alpha`` negative or not finite, a per-block sequence of the
        wrong length, ``sigma_b2 < 0``, ``q0 <= 0`` or ``eps < 0``; the
        message names the parameter.

    Notes
    -----
    Exact at every finite width (not only mean field) for linear, relu and
    leaky_relu with ``branch_layers >= 2``, any widths and any weight law
    with independent symmetric entries: for ``norm="none"``, and for
    ``"pre"`` and ``"post"`` with ``eps = 0`` (RMSNorm or LayerNorm); for a
    linear ``phi`` also with one branch layer. E.g. relu, two branch layers,
    no bias: ``E[q^l] = E[q^{l-1}] (skip^2 + alpha^2 s^2 sigma_1^2 sigma_2^2 / 2)``.

    Examples
    --------
    >>> residual_q_map("relu", 2.0, 1.0, 3)  # (1 + 2 * 2 / 2)^l
    array([ 3.,  9., 27.])
    >>> residual_q_map("relu", 2.0, 0.5, 3, norm="pre")  # 1 + l * 0.25 * 2
    array([1.5, 2. , 2.5])
    """
    su = _setup(
        activation, sigma_w2, alpha, depth, q0, branch_layers, norm, skip, sigma_b2,
        in_scale, act_scale, eps,
    )  # fmt: skip
    return _forward(su).q[1:].copy()


def residual_grad_map(
    activation: str | Activation,
    sigma_w2: float | Sequence[float],
    alpha: float | Sequence[float],
    depth: int,
    q0: float = 1.0,
    *,
    branch_layers: int = 2,
    norm: str = "none",
    skip: float | Sequence[float] = 1.0,
    sigma_b2: float = 0.0,
    in_scale: float | Sequence[float] = 1.0,
    act_scale: float = 1.0,
    eps: float = 0.0,
) -> FloatArray:
    """Mean squared back-propagated gradient of a residual net, block by block.

    ``g^l = E[||dL/dx^l||^2 / n]`` for ``L = u . x^L`` with ``u ~ N(0, I)``
    (``g^L = 1``), under the gradient-independence assumption:

    * none: ``g^{l-1} = (skip^2 + alpha^2 s^2 chi_F(s^2 q^{l-1})) g^l``;
    * pre: ``g^{l-1} = (skip^2 + alpha^2 s^2 chi_F(q_u) / (q^{l-1} + eps)) g^l``,
      ``q_u = s^2 q^{l-1} / (q^{l-1} + eps)``;
    * post: ``g^{l-1} = (skip^2 + alpha^2 s^2 chi_F(s^2 q^{l-1})) g^l / (p^l + eps)``,
      ``p^l = skip^2 q^{l-1} + alpha^2 Q_F(s^2 q^{l-1})``;

    with the branch's mean squared Jacobian factor
    ``chi_F = prod_{k=1..m} sigma_k^2 prod_{k=1..m-1} gamma^2 E[phi'(sqrt(q_k) z)^2]``
    (``q_k`` the branch's hidden mean squares; one branch layer:
    ``sigma_1^2 gamma^2 E[phi'(sqrt(q_u) z)^2]``). The hidden width cancels. The
    norms' ``O(1/n)`` terms are dropped (see :mod:`initsim.theory.residual`).

    Parameters
    ----------
    activation : str or Activation
        The branch nonlinearity ``phi``.
    sigma_w2 : float or sequence of float
        ``sigma_k^2 = fan_in Var(W_k[i, j]) > 0``: one value for every branch
        layer or ``branch_layers`` values (``sigma_1^2 .. sigma_m^2``).
    alpha : float or sequence of float
        Branch multiplier ``>= 0``, one value or one per block (length ``depth``).
    depth : int
        Number of blocks ``L >= 1``.
    q0 : float, optional
        ``q^0 > 0`` (default 1).
    branch_layers : int, optional
        ``m >= 1`` (default 2).
    norm : {"none", "pre", "post"}, optional
        Where the normalization sits (default ``"none"``).
    skip : float or sequence of float, optional
        Skip multiplier (finite), one value or one per block (default 1).
    sigma_b2 : float, optional
        Variance of every branch bias, ``>= 0`` (default 0).
    in_scale : float or sequence of float, optional
        ``s >= 0``: the branch input is ``s x`` (``s N(x)`` for ``norm="pre"``),
        one value or one per block (default 1; NF-ResNets' ``1 / beta_l``).
    act_scale : float, optional
        ``gamma >= 0`` multiplying every activation (default 1; NF-ResNets' gamma).
    eps : float, optional
        The normalization's epsilon ``>= 0`` (default 0: the exact regime).

    Returns
    -------
    numpy.ndarray
        Shape ``(depth,)``; entry ``l - 1`` is ``g^l``, the gradient at block
        ``l``'s output (the last entry is 1), as in
        :attr:`initsim.result.ResidualResult.grad_sq`.

    Raises
    ------
    ValueError
        As :func:`residual_q_map`.

    Notes
    -----
    Exact at every finite width for ``norm="none"``, linear, relu or
    leaky_relu and ``branch_layers >= 2`` (any widths, any weight law with
    independent symmetric entries; a linear ``phi`` also with one layer):
    the forward-tangent argument of :mod:`initsim.theory.residual`. Mean field
    otherwise (relu with one branch layer, pre/post norms, other activations).

    Examples
    --------
    >>> residual_grad_map("relu", 2.0, 1.0, 3)  # factor 3 per block
    array([9., 3., 1.])
    >>> residual_grad_map("relu", 2.0, 0.5, 3, norm="pre")  # q^L / q^l
    array([1.66666667, 1.25      , 1.        ])
    """
    su = _setup(
        activation, sigma_w2, alpha, depth, q0, branch_layers, norm, skip, sigma_b2,
        in_scale, act_scale, eps,
    )  # fmt: skip
    fw = _forward(su)
    out = np.empty(su.depth)
    out[-1] = 1.0
    with np.errstate(over="ignore", invalid="ignore"):  # exploding gradients overflow to inf
        for t in range(su.depth - 1, 0, -1):  # block t + 1 maps x^t to x^{t+1}
            qin = float(fw.q[t])
            branch = su.alpha[t] ** 2 * su.s[t] ** 2 * fw.chi_f[t]
            if su.norm == "pre":
                branch /= qin + su.eps
            factor = su.skip[t] ** 2 + branch
            if su.norm == "post":
                factor /= fw.p[t] + su.eps
            out[t - 1] = factor * out[t]
    return out


def _gap(act: Activation, q: float, c: float) -> float:
    """``E[(phi(u_1) - phi(u_2))^2] / 2`` at variance ``q`` and correlation ``c``."""
    if through_gap(act, c):
        return bivariate(act, q, c, "gap")
    return expect_scalar(act, q, PHI2) - bivariate(act, q, c, "phi")


def residual_c_map(
    activation: str | Activation,
    sigma_w2: float | Sequence[float],
    alpha: float | Sequence[float],
    depth: int,
    c0: float,
    q0: float = 1.0,
    *,
    branch_layers: int = 2,
    norm: str = "none",
    skip: float | Sequence[float] = 1.0,
    sigma_b2: float = 0.0,
    in_scale: float | Sequence[float] = 1.0,
    act_scale: float = 1.0,
    eps: float = 0.0,
) -> FloatArray:
    """Mean-field correlation of two inputs through residual blocks: ``c^1, ..., c^L``.

    Both inputs have mean square ``q0`` and correlation ``c0``. The branch
    runs the MLP correlation map on its input correlation (``c`` for every
    norm: scaling and RMSNorm keep it, and LayerNorm's centring does not
    change it in mean field): covariances ``k_1 = sigma_1^2 q_u c + sigma_b2``,
    ``k_{j+1} = sigma_{j+1}^2 gamma^2 E[phi(u_1) phi(u_2)] + sigma_b2`` with
    ``(u_1, u_2)`` centred normal with variances ``q_j`` and correlation
    ``k_j / q_j`` (one branch layer: ``K_F = sigma_1^2 gamma^2 E[phi(u_1) phi(u_2)]
    + sigma_b2`` at ``(q_u, c)``). Then
    ``c^l = (skip^2 q^{l-1} c^{l-1} + alpha^2 K_F) / p^l`` with
    ``p^l = skip^2 q^{l-1} + alpha^2 Q_F`` (a post norm rescales both
    inputs alike). Computed through the gaps ``q - k`` so that ``1 - c`` is
    accurate near 1.

    Parameters
    ----------
    activation : str or Activation
        The branch nonlinearity ``phi``.
    sigma_w2 : float or sequence of float
        ``sigma_k^2 = fan_in Var(W_k[i, j]) > 0``: one value for every branch
        layer or ``branch_layers`` values (``sigma_1^2 .. sigma_m^2``).
    alpha : float or sequence of float
        Branch multiplier ``>= 0``, one value or one per block (length ``depth``).
    depth : int
        Number of blocks ``L >= 1``.
    c0 : float
        Correlation of the two inputs, in ``[-1, 1]``.
    q0 : float, optional
        Their common mean square (default 1).
    branch_layers : int, optional
        ``m >= 1`` (default 2).
    norm : {"none", "pre", "post"}, optional
        Where the normalization sits (default ``"none"``).
    skip : float or sequence of float, optional
        Skip multiplier (finite), one value or one per block (default 1).
    sigma_b2 : float, optional
        Variance of every branch bias, ``>= 0`` (default 0).
    in_scale : float or sequence of float, optional
        ``s >= 0``: the branch input is ``s x`` (``s N(x)`` for ``norm="pre"``),
        one value or one per block (default 1; NF-ResNets' ``1 / beta_l``).
    act_scale : float, optional
        ``gamma >= 0`` multiplying every activation (default 1; NF-ResNets' gamma).
    eps : float, optional
        The normalization's epsilon ``>= 0`` (default 0: the exact regime).

    Returns
    -------
    numpy.ndarray
        Shape ``(depth,)``; entry ``l - 1`` is ``c^l``; NaN once ``q``
        overflows.

    Raises
    ------
    ValueError
        As :func:`residual_q_map`, or ``|c0| > 1``.

    Notes
    -----
    Rank collapse: ``c^l -> 1`` with depth at ``alpha = 1`` (relu, He
    weights, two branch layers:
    ``c^l = (c^{l-1} + 2 alpha^2 kappa(c^{l-1})) / (1 + 2 alpha^2)``, ``kappa``
    the arc-cosine kernel), while at ``alpha = 1 / sqrt(L)`` ``c^L`` tends
    to ``c(1)`` of ``dc/dt = 2 (kappa(c) - c)``, ``c(0) = c0``, below 1.
    Closed bivariate kernels for linear, relu, leaky_relu and erf; otherwise
    the two-dimensional rule of :mod:`initsim.theory.gaussian` (about
    ``1e-11`` absolute, 10-50 ms per branch layer and block).

    Examples
    --------
    >>> c = residual_c_map("relu", 2.0, 1.0, 200, 0.0)  # alpha = 1: c -> 1
    >>> round(float(1.0 - c[-1]), 5)
    0.00216
    >>> c = residual_c_map("relu", 2.0, 200**-0.5, 200, 0.0)  # alpha = 1 / sqrt(L)
    >>> round(float(1.0 - c[-1]), 3)
    0.582
    """
    su = _setup(
        activation, sigma_w2, alpha, depth, q0, branch_layers, norm, skip, sigma_b2,
        in_scale, act_scale, eps,
    )  # fmt: skip
    c0 = check_c0(c0)
    act, sw, g2 = su.act, su.sw, su.g2
    # Homogeneous phi without bias (and no eps): c does not depend on the scale of q,
    # so q is reset to 1 after every block (q itself may overflow, c need not).
    scale_free = (
        act.positively_homogeneous and su.sb == 0.0 and (su.eps == 0.0 or su.norm == "none")
    )
    out = np.empty(su.depth)
    q = su.q0
    d = su.q0 * (1.0 - c0)  # the gap q - k of the stream
    for t in range(su.depth):
        if not (math.isfinite(q) and q > 0.0) or math.isnan(d):
            out[t:] = math.nan
            break
        c = 1.0 - d / q
        s2 = su.s[t] * su.s[t]
        qu = s2 * (_normalised(q, su.eps) if su.norm == "pre" else q)
        qf, _, hidden = _branch(su, qu)
        if su.m == 1:
            d_f = sw[0] * g2 * _gap(act, qu, c) if qu > 0.0 else 0.0
        else:
            qh = sw[0] * qu + su.sb
            dh = sw[0] * qu * (1.0 - c)
            for k in range(1, su.m):
                ch = 1.0 - dh / qh if qh > 0.0 else 1.0
                dh = sw[k] * g2 * _gap(act, qh, ch) if qh > 0.0 else 0.0
                if k < su.m - 1:
                    qh = hidden[k]
            d_f = dh
        with np.errstate(over="ignore", invalid="ignore"):
            tot = su.skip[t] ** 2 * q + su.alpha[t] ** 2 * qf
            d_tot = su.skip[t] ** 2 * d + su.alpha[t] ** 2 * d_f
        if not (math.isfinite(tot) and tot > 0.0):
            out[t:] = math.nan
            break
        gap = min(2.0, max(0.0, d_tot / tot))  # 1 - c^{t+1}
        out[t] = 1.0 - gap
        q = _normalised(tot, su.eps) if su.norm == "post" else tot
        if scale_free:
            q = 1.0
        d = q * gap  # a post norm rescales q, not the correlation
    return out


# ----------------------------------------------------------------------------------
# NF-ResNets
# ----------------------------------------------------------------------------------


def nf_gamma(activation: str | Activation) -> float:
    """Return NF-ResNets' activation gain ``gamma = 1 / sqrt(Var phi(z))``, ``z ~ N(0, 1)``.

    ``Var phi(z) = E[phi(z)^2] - E[phi(z)]^2`` by the quadrature (or closed
    forms) of :mod:`initsim.theory.gaussian`, about ``1e-15`` relative each;
    relu: ``1 / sqrt(1/2 - 1/(2 pi)) = 1.7128585504...``; selu: 1 (by design);
    linear: 1. Brock et al. 2021 scale activations by it so that a
    unit-variance input gives a unit-variance output.

    Parameters
    ----------
    activation : str or Activation
        The activation (``"identity"`` and ``"swish"`` are accepted for
        linear and silu).

    Returns
    -------
    float
        ``gamma``.

    Raises
    ------
    ValueError
        For an unknown activation, or a constant ``phi`` (``Var = 0``).

    Examples
    --------
    >>> round(nf_gamma("relu"), 12)
    1.71285855045
    """
    act = _nf_activation(activation)
    mean = expect_scalar(act, 1.0, PHI)
    var = expect_scalar(act, 1.0, PHI2) - mean * mean
    if not var > 0.0:
        raise ValueError(f"{act.label}: Var phi(z) = {var!r}, so gamma is undefined")
    return 1.0 / math.sqrt(var)


def _nf_activation(activation: str | Activation) -> Activation:
    if isinstance(activation, str):
        activation = _ALIASES.get(activation, activation)
    return as_activation(activation)


def nf_gamma_error(activation: str | Activation) -> float:
    """Relative error of the published NF-ResNet gamma: ``(published - exact) / exact``.

    Parameters
    ----------
    activation : str or Activation
        An activation of :data:`NF_GAMMA_PUBLISHED` with its default
        parameter (leaky_relu slope 0.01, elu alpha 1).

    Returns
    -------
    float
        The relative error against :func:`nf_gamma`. The published values
        are sample estimates: every error is positive, between about
        ``3e-4`` (gelu) and ``9e-4`` (tanh, selu), and 0 for linear.

    Raises
    ------
    ValueError
        For an activation without a published constant, or with a
        non-default parameter.

    Examples
    --------
    >>> f"{nf_gamma_error('relu'):.2e}"
    '6.42e-04'
    """
    act = _nf_activation(activation)
    default = as_activation(act.name)
    if act.name not in NF_GAMMA_PUBLISHED or act.param != default.param:
        have = ", ".join(sorted(NF_GAMMA_PUBLISHED))
        raise ValueError(
            f"activation {act.label} has no published NF-ResNet gamma; the published "
            f"constants are for (default parameters): {have}"
        )
    exact = nf_gamma(act)
    return (NF_GAMMA_PUBLISHED[act.name] - exact) / exact


# ----------------------------------------------------------------------------------
# Depth regimes
# ----------------------------------------------------------------------------------


def _limit_half(su: _Setup) -> float:
    """``lim_{L -> inf} q^L / q^0`` at ``alpha = L^(-1/2)``, skip 1, in_scale 1."""
    q0 = su.q0
    if su.norm == "pre":  # eps = 0: q_u = 1 in every block, q^L = q0 + L alpha^2 Q_F(1)
        return (q0 + _branch(su, 1.0)[0]) / q0
    if su.act.positively_homogeneous:
        b = _branch(su, 0.0)[0]  # the bias part of the affine Q_F
        kappa = _branch(su, 1.0)[0] - b
        if kappa == 0.0:
            return (q0 + b) / q0
        return ((q0 + b / kappa) * math.exp(kappa) - b / kappa) / q0
    sol = integrate.solve_ivp(
        lambda _t, y: [_branch(su, float(y[0]))[0]],
        (0.0, 1.0),
        [q0],
        method="DOP853",
        rtol=1e-11,
        atol=1e-14 * q0,
    )
    return float(sol.y[0, -1]) / q0


def depth_regimes(
    activation: str | Activation = "relu",
    sigma_w2: float | Sequence[float] = 2.0,
    betas: Sequence[float] = (0.25, 0.5, 1.0),
    depths: Sequence[int] = (10, 100, 1000),
    *,
    q0: float = 1.0,
    branch_layers: int = 2,
    norm: str = "none",
    sigma_b2: float = 0.0,
    act_scale: float = 1.0,
) -> list[dict[str, Any]]:
    """Return the final ``E[q^L] / q^0`` for ``alpha = L^(-beta)`` (explosion, limit, identity).

    With skip 1, no norm and a positively homogeneous ``phi`` without bias,
    ``q^L / q^0 = (1 + kappa L^(-2 beta))^L`` with ``kappa = Q_F(q) / q``
    (relu, ``sigma_w2 = 2`` in both of two branch layers: ``kappa = 2``):

    * ``beta < 1/2``: explodes, ``~ exp(kappa L^(1 - 2 beta))``;
    * ``beta = 1/2``: tends to ``e^kappa`` (He/He relu: ``e^2 = 7.389``), with
      a relative error ``~ kappa^2 / (2 L)``; in general (bias, other
      activations) to ``q(1) / q0`` for ``dq/dt = Q_F(q)``, ``q(0) = q0``;
    * ``beta > 1/2``: tends to 1, ``q^L / q^0 - 1 ~ kappa L^(1 - 2 beta)``.

    With ``norm="pre"`` (``eps = 0``) ``q^L = q^0 + L^(1 - 2 beta) Q_F(1)``:
    polynomial growth for ``beta < 1/2``, ``1 + Q_F(1) / q0`` at every ``L``
    for ``beta = 1/2``, 1 in the limit for ``beta > 1/2``.

    Parameters
    ----------
    activation : str or Activation, optional
        The activation (default relu).
    sigma_w2 : float or sequence of float, optional
        ``sigma_k^2`` of the branch layers (default 2, He).
    betas : sequence of float, optional
        Exponents ``beta >= 0`` (default ``(0.25, 0.5, 1.0)``).
    depths : sequence of int, optional
        Depths ``L >= 1`` (default ``(10, 100, 1000)``).
    q0 : float, optional
        ``q^0 > 0`` (default 1).
    branch_layers : int, optional
        ``m >= 1`` (default 2).
    norm : {"none", "pre"}, optional
        Default ``"none"``.
    sigma_b2 : float, optional
        Branch bias variance (default 0).
    act_scale : float, optional
        Activation multiplier (default 1).

    Returns
    -------
    list of dict
        One row per ``(beta, L)``: ``beta``, ``depth``, ``alpha``, ``ratio``
        (``E[q^L] / q^0`` from :func:`residual_q_map`), ``regime``
        (``"explodes"``, ``"finite"`` or ``"identity"``) and ``limit`` (the
        ``L -> inf`` limit of the ratio: ``inf``, the finite value, or 1).

    Raises
    ------
    ValueError
        For invalid parameters (named), a negative or non-finite ``beta``, or
        ``norm="post"`` (its ``q`` is 1 at every depth).

    Examples
    --------
    >>> rows = depth_regimes(betas=(0.5,), depths=(1000,))
    >>> round(rows[0]["ratio"], 4), round(rows[0]["limit"], 4)
    (7.3743, 7.3891)
    """
    norm = check_choice("norm", norm, ("none", "pre"))
    if isinstance(betas, str | bytes) or np.ndim(betas) != 1 or len(betas) == 0:
        raise ValueError(f"betas must be a non-empty sequence of numbers >= 0; got {betas!r}")
    if isinstance(depths, str | bytes) or np.ndim(depths) != 1 or len(depths) == 0:
        raise ValueError(f"depths must be a non-empty sequence of integers >= 1; got {depths!r}")
    bs = [check_real("betas", b, minimum=0.0) for b in betas]
    ls = [check_int("depths", d) for d in depths]
    base = _setup(
        activation, sigma_w2, 1.0, 1, q0, branch_layers, norm, 1.0, sigma_b2, 1.0,
        act_scale, 0.0,
    )  # fmt: skip
    half = _limit_half(base)
    rows = []
    for beta in bs:
        if abs(beta - 0.5) <= 1e-12:
            regime, limit = "finite", half
        elif beta < 0.5:
            regime, limit = "explodes", math.inf
        else:
            regime, limit = "identity", 1.0
        for L in ls:
            a = float(L) ** (-beta)
            q = residual_q_map(
                base.act, base.sw, a, L, q0, branch_layers=base.m, norm=norm,
                sigma_b2=base.sb, act_scale=math.sqrt(base.g2),
            )  # fmt: skip
            rows.append(
                {
                    "beta": beta,
                    "depth": L,
                    "alpha": a,
                    "ratio": float(q[-1]) / base.q0,
                    "regime": regime,
                    "limit": limit,
                }
            )
    return rows
