"""Plain-numpy twin of :mod:`initsim.engine.residual`, for tests only (slow).

It follows the kernel's documented model and random-number layout (see
:mod:`initsim.engine.residual`): with the dense sampler every weight matrix is
materialised with :func:`initsim.engine.laws.fill_weights_reference`; with
the exact one each ``W X`` and ``W^T D`` is drawn by the Gram formulas of
:mod:`initsim.engine.residual_exact` written in plain numpy (for every
``B``, where the kernel has a one-input shortcut); biases, inputs and the
output direction come from the same substreams of :mod:`initsim.rng`, and
the arithmetic is the obvious numpy on ``(units, B)`` matrices. The backward
pass applies each Jacobian transpose explicitly.

:func:`finite_difference_input_gradient` is an independent, autograd-free
check of that backward pass: central differences of the scalar
``<g^L, x^L>`` with respect to every entry of ``x^0``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from initsim import activations
from initsim.activations import Activation
from initsim.engine import laws
from initsim.engine.exact import INPUT_GIVEN, INPUT_SPHERE
from initsim.engine.gram import RANK_RTOL
from initsim.engine.reference import haar_frame_reference, psd_factor_reference
from initsim.engine.residual import (
    BATCHNORM,
    LAYERNORM,
    N_RES_STATS,
    NORM_POST,
    NORM_PRE,
    R_BRANCH_Q,
    R_DEAD,
    R_GRAD_SQ,
    R_Q,
    R_SATURATED,
    R_SHARE,
    RMSNORM,
    SAMPLER_DENSE,
)
from initsim.rng import Purpose, fill_normals

__all__ = [
    "ResidualTrace",
    "exact_layer_reference",
    "exact_layer_t_reference",
    "finite_difference_input_gradient",
    "norm_backward_reference",
    "norm_reference",
    "reference_weights",
    "residual_reference",
    "residual_reference_net",
]

U = np.uint64


@dataclass
class ResidualTrace:
    """Everything the twin computes for one net.

    Attributes
    ----------
    stats : numpy.ndarray (blocks, N_RES_STATS)
        The kernel's rows.
    first : int
        First non-finite block, 1-based (0 for none).
    xs : list of numpy.ndarray (n, B)
        The stream ``x^0 .. x^L`` (shorter when a block is not finite).
    direction : numpy.ndarray (n, B) or None
        The output direction ``g^L`` (when ``backward``).
    grad0 : numpy.ndarray (n, B) or None
        The gradient of ``<g^L, x^L>`` with respect to ``x^0`` (when
        ``backward`` and every block is finite).
    """

    stats: np.ndarray
    first: int
    xs: list[np.ndarray] = field(default_factory=list)
    direction: np.ndarray | None = None
    grad0: np.ndarray | None = None


def _activation(act: Any) -> Activation:
    """Return the :class:`Activation` of a kernel tuple (or ``act`` itself if it is one)."""
    if isinstance(act, Activation):
        return act
    code, param, affine = int(act[1]), float(act[2]), tuple(float(v) for v in act[3:7])
    if code == activations.USER:
        raise ValueError("a registered activation's twin needs the Activation, not its tuple")
    for name in activations.names():
        if activations.get(name).code == code:
            base = Activation.from_param(name, param)
            if affine == activations.IDENTITY_AFFINE:
                return base
            a_in, b_in, a_out, b_out = affine
            return activations.shaped(
                base, input_scale=a_in, input_shift=b_in, output_scale=a_out, output_shift=b_out
            )
    raise ValueError(f"unknown activation code {code}")


def _normals(key: np.ndarray, purpose: int, layer: int, n: int) -> np.ndarray:
    out = np.empty(n)
    fill_normals(U(key[0]), U(key[1]), U(purpose), U(layer), 0, out)
    return out


def _input(key: np.ndarray, mode: int, given: np.ndarray, n: int, b: int) -> np.ndarray:
    """Return the net's input as an ``(n, b)`` matrix (twin of ``make_input``)."""
    if mode == INPUT_GIVEN:
        return np.asarray(given, dtype=np.float64)[: n * b].reshape(n, b).copy()
    x = _normals(key, Purpose.INPUT, 0, n * b).reshape(n, b)
    if mode == INPUT_SPHERE:
        s = np.sum(x**2, axis=0)
        x = x * np.where(s > 0, np.sqrt(n / np.where(s > 0, s, 1.0)), 0.0)
    return x


def norm_reference(z: np.ndarray, kind: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Normalise an ``(n, B)`` matrix; return ``(y, s)`` with ``s`` the divisors.

    Parameters
    ----------
    z : numpy.ndarray (n, B)
        Input.
    kind : int
        LAYERNORM (over units, per input), RMSNORM (same, uncentred) or
        BATCHNORM (over inputs, per unit).
    eps : float
        Added under the square root.

    Returns
    -------
    y : numpy.ndarray (n, B)
        The normalised matrix.
    s : numpy.ndarray
        The divisors, shape ``(1, B)`` or ``(n, 1)`` for BATCHNORM.
    """
    axis = 1 if kind == BATCHNORM else 0
    if kind == LAYERNORM or kind == BATCHNORM:
        mu = np.mean(z, axis=axis, keepdims=True)
    else:
        mu = np.zeros_like(np.mean(z, axis=axis, keepdims=True))
    s = np.sqrt(np.mean((z - mu) ** 2, axis=axis, keepdims=True) + eps)
    return (z - mu) / s, s


def norm_backward_reference(dy: np.ndarray, y: np.ndarray, s: np.ndarray, kind: int) -> np.ndarray:
    """Return ``J_N^T dy`` for :func:`norm_reference`'s output ``y`` and divisors ``s``.

    Parameters
    ----------
    dy, y : numpy.ndarray (n, B)
        Gradient with respect to the output, and the output.
    s : numpy.ndarray
        The divisors from :func:`norm_reference`.
    kind : int
        As for :func:`norm_reference`.

    Returns
    -------
    numpy.ndarray (n, B)
        The gradient with respect to the input.
    """
    axis = 1 if kind == BATCHNORM else 0
    mdy = np.mean(dy * y, axis=axis, keepdims=True)
    md = np.mean(dy, axis=axis, keepdims=True) if kind != RMSNORM else 0.0
    return (dy - md - y * mdy) / s


def _weights(key: np.ndarray, code: int, params: np.ndarray, t: int, shape: tuple) -> np.ndarray:
    w = np.empty(shape)
    laws.fill_weights_reference(int(code), params, U(key[0]), U(key[1]), t, w)
    return w


def _normals_matrix(key: np.ndarray, purpose: int, t: int, start: int, rows: int, cols: int):
    return _normals(key, purpose, t, start + rows * cols)[start:].reshape(rows, cols)


def exact_layer_reference(
    key: np.ndarray, code: int, params: np.ndarray, t: int, nout: int, x: np.ndarray
) -> np.ndarray:
    """Twin of :func:`initsim.engine.residual_exact.exact_layer`: ``W_t x`` for ``x`` (nin, B)."""
    nin, b = x.shape
    if code == laws.CONSTANT:
        return np.zeros((nout, b))
    r, _, rank = psd_factor_reference(x.T @ x, RANK_RTOL)
    if rank < 0:
        return np.full((nout, b), np.nan)
    if rank == 0:
        return np.zeros((nout, b))
    if code == laws.GAUSSIAN:
        return params[laws.P_SCALE] * _normals_matrix(key, Purpose.FORWARD, t, 0, nout, rank) @ r
    psi = haar_frame_reference(_normals_matrix(key, Purpose.FORWARD, t, 0, max(nin, nout), rank))
    return params[laws.P_GAIN] * psi[:nout] @ r


def exact_layer_t_reference(
    key: np.ndarray,
    code: int,
    params: np.ndarray,
    t: int,
    x: np.ndarray,
    a: np.ndarray,
    d: np.ndarray,
) -> np.ndarray:
    """Twin of :func:`initsim.engine.residual_exact.exact_layer_t`: ``W_t^T d`` given ``W_t x``."""
    nin, _ = x.shape
    nout = a.shape[0]
    if code == laws.CONSTANT:
        return np.zeros_like(x)
    _, g_pinv, rank = psd_factor_reference(x.T @ x, RANK_RTOL)
    g = x @ g_pinv @ a.T @ d
    if rank < 0:
        return np.full_like(x, np.nan)
    if code == laws.GAUSSIAN:
        r_d, _, rank_d = psd_factor_reference(d.T @ d, RANK_RTOL)
        if rank_d < 0:
            return np.full_like(x, np.nan)
        if rank_d:
            y = (
                params[laws.P_SCALE]
                * _normals_matrix(key, Purpose.BACKWARD, t, 0, nin, rank_d)
                @ r_d
            )
            g = g + y - x @ g_pinv @ x.T @ y
        return g
    _, a_pinv, _ = psd_factor_reference(a.T @ a, RANK_RTOL)
    res = d - a @ a_pinv @ a.T @ d
    r_m, _, rank_m = psd_factor_reference(res.T @ res, RANK_RTOL)
    if rank_m < 0:
        g = np.full_like(x, np.nan)
    k, m2 = nin - rank, nout - rank
    p = min(k, rank_m)
    if p > 0:
        core = haar_frame_reference(_normals_matrix(key, Purpose.BACKWARD, t, 0, m2, rank_m))[:k]
        if k > rank_m:  # R of the QR with a positive diagonal
            core = np.linalg.qr(core)[1]
            core = core * np.where(np.diag(core) < 0, -1.0, 1.0)[:, None]
        yg = _normals_matrix(key, Purpose.BACKWARD, t, m2 * rank_m, nin, p)
        phi = haar_frame_reference(yg - x @ g_pinv @ x.T @ yg)
        g = g + params[laws.P_GAIN] * phi @ core @ r_m
    return g


def reference_weights(
    key: np.ndarray,
    n: int,
    nb: int,
    m: int,
    blocks: int,
    law_codes: np.ndarray,
    law_params: np.ndarray,
    bias_std: float,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Return the dense sampler's matrices and biases of one net, ``t = 0 .. blocks * m - 1``.

    What :func:`residual_reference_net` draws itself when not given
    ``weights`` and ``biases`` (the biases already multiplied by ``bias_std``).
    """
    shapes = [(n, n)] if m == 1 else [(nb, n)] + [(nb, nb)] * (m - 2) + [(n, nb)]
    ws, bs = [], []
    for t in range(blocks * m):
        rows = shapes[t % m][0]
        ws.append(_weights(key, int(law_codes[t]), law_params[t], t, shapes[t % m]))
        bs.append(bias_std * _normals(key, Purpose.BIAS, t, rows))
    return ws, bs


def residual_reference_net(
    key: np.ndarray,
    n: int,
    nb: int,
    m: int,
    blocks: int,
    law_codes: np.ndarray,
    law_params: np.ndarray,
    sampler: int,
    bias_std: float,
    act: Any,
    alpha: np.ndarray,
    skip: np.ndarray,
    in_scale: np.ndarray,
    act_scale: float,
    norm: int,
    norm_kind: int,
    eps: float,
    input_mode: int,
    given: np.ndarray,
    n_inputs: int,
    backward: bool,
    sat_threshold: float,
    weights: list[np.ndarray] | None = None,
    biases: list[np.ndarray] | None = None,
) -> ResidualTrace:
    """Run one net as :func:`initsim.engine.residual.residual_net` does, in numpy.

    Parameters
    ----------
    key : numpy.ndarray of uint64 (2,)
        The net's key.
    n, nb, m, blocks, law_codes, law_params, sampler, bias_std, act, alpha,
    skip, in_scale, act_scale, norm, norm_kind, eps, input_mode, given, n_inputs,
    backward, sat_threshold
        As for :func:`initsim.engine.residual.residual_kernel`.
    weights, biases : list of numpy.ndarray, optional
        Dense sampler only: matrix ``t`` (``rows x cols``) and its bias
        (``rows``) for every ``t = l * m + k``, used instead of the key's
        draws (``biases`` needs ``bias_std > 0`` to be used at all).

    Returns
    -------
    ResidualTrace
        Stats, the stream, and (when ``backward``) the gradient of ``x^0``.
    """
    act = _activation(act)
    b = n_inputs
    stats = np.full((blocks, N_RES_STATS), np.nan)
    x = _input(key, input_mode, given, n, b)
    trace = ResidualTrace(stats=stats, first=0, xs=[x])
    shapes = [(n, n)] if m == 1 else [(nb, n)] + [(nb, nb)] * (m - 2) + [(n, nb)]
    # per matrix t: the dense W, or the exact sampler's (X, W X)
    kept: dict[int, Any] = {}

    def layer(t: int, inp: np.ndarray) -> np.ndarray:
        code, params, rows = int(law_codes[t]), law_params[t], shapes[t % m][0]
        if sampler == SAMPLER_DENSE:
            given_w = weights is not None
            kept[t] = weights[t] if given_w else _weights(key, code, params, t, shapes[t % m])
            out = kept[t] @ inp
        else:
            out = exact_layer_reference(key, code, params, t, rows, inp)
            kept[t] = (inp, out)
        if bias_std > 0 and biases is not None:
            out = out + biases[t][:, None]
        elif bias_std > 0:
            out = out + bias_std * _normals(key, Purpose.BIAS, t, rows)[:, None]
        return out

    def layer_t(t: int, d: np.ndarray) -> np.ndarray:
        if sampler == SAMPLER_DENSE:
            return kept[t].T @ d
        inp, a = kept[t]
        return exact_layer_t_reference(key, int(law_codes[t]), law_params[t], t, inp, a, d)

    tape = []  # per block: (v or None, s_pre, [pre-activations], y_post, s_post)
    with np.errstate(all="ignore"):
        for blk in range(blocks):
            t0 = blk * m
            s_pre = None
            v = x
            if norm == NORM_PRE:
                v, s_pre = norm_reference(x, norm_kind, eps)
            u = in_scale[blk] * v
            pre = []
            if m == 1:
                pre.append(u)
                f = layer(t0, act_scale * act.phi(u))
            else:
                a = u
                for k in range(m - 1):
                    h = layer(t0 + k, a)
                    pre.append(h)
                    a = act_scale * act.phi(h)
                f = layer(t0 + m - 1, a)
            phis = [act.phi(h) for h in pre]
            stats[blk, R_BRANCH_Q] = np.mean(pre[0] ** 2)
            stats[blk, R_DEAD] = np.mean([np.mean(np.all(p == 0.0, axis=1)) for p in phis])
            stats[blk, R_SATURATED] = np.mean(
                [np.mean(np.abs(act.dphi(h)) < sat_threshold) for h in pre]
            )
            sx = skip[blk] * x
            af = alpha[blk] * f
            den = np.sum(sx**2) + np.sum(af**2)
            stats[blk, R_SHARE] = np.sum(af**2) / den if den != 0 else 0.0
            z = sx + af
            s_post = None
            if norm == NORM_POST:
                z, s_post = norm_reference(z, norm_kind, eps)
            x = z
            trace.xs.append(x)
            stats[blk, R_Q] = np.mean(x**2)
            tape.append((v, s_pre, pre, x, s_post))
            if not np.isfinite(stats[blk, R_Q]):
                trace.first = blk + 1
                return trace
        if not backward:
            return trace
        g = _normals(key, Purpose.OUTPUT_DIRECTION, 0, n * b).reshape(n, b)
        trace.direction = g.copy()
        stats[blocks - 1, R_GRAD_SQ] = np.mean(g**2)
        for blk in range(blocks - 1, -1, -1):
            v, s_pre, pre, y_post, s_post = tape[blk]
            t0 = blk * m
            gz = norm_backward_reference(g, y_post, s_post, norm_kind) if norm == NORM_POST else g
            d = alpha[blk] * gz  # gradient with respect to F
            if m == 1:
                gu = act_scale * act.dphi(pre[0]) * layer_t(t0, d)
            else:
                for k in range(m - 1, 0, -1):
                    d = layer_t(t0 + k, d) * (act_scale * act.dphi(pre[k - 1]))
                gu = layer_t(t0, d)
            gv = in_scale[blk] * gu
            if norm == NORM_PRE:
                gv = norm_backward_reference(gv, v, s_pre, norm_kind)
            g = skip[blk] * gz + gv
            if blk > 0:
                stats[blk - 1, R_GRAD_SQ] = np.mean(g**2)
        trace.grad0 = g
    return trace


def residual_reference(keys: np.ndarray, *args: Any) -> tuple[np.ndarray, np.ndarray]:
    """Twin of :func:`initsim.engine.residual.residual_kernel` (returns its outputs).

    Parameters
    ----------
    keys : numpy.ndarray of uint64 (nets, 2)
        Per-net keys.
    *args
        The kernel's arguments from ``n`` to ``sat_threshold``, in its order.

    Returns
    -------
    stats : numpy.ndarray (nets, blocks, N_RES_STATS)
        As the kernel's.
    first_nonfinite : numpy.ndarray of int64 (nets,)
        As the kernel's.
    """
    traces = [residual_reference_net(key, *args) for key in keys]
    stats = np.stack([t.stats for t in traces])
    first = np.array([t.first for t in traces], dtype=np.int64)
    return stats, first


def finite_difference_input_gradient(
    key: np.ndarray, x0: np.ndarray, direction: np.ndarray, step: float = 1e-6, **config: Any
) -> np.ndarray:
    """Central differences of ``<direction, x^L>`` with respect to ``x^0``.

    Parameters
    ----------
    key : numpy.ndarray of uint64 (2,)
        The net's key (it fixes the weights and biases).
    x0 : numpy.ndarray (n, B)
        The input at which to differentiate.
    direction : numpy.ndarray (n, B)
        ``g^L``.
    step : float
        The difference step.
    **config
        :func:`residual_reference_net`'s other arguments, by name;
        ``input_mode``, ``given`` and ``backward`` are overridden (the input
        is ``x0`` and its perturbations).

    Returns
    -------
    numpy.ndarray (n, B)
        The estimated gradient.
    """
    config = {**config, "input_mode": INPUT_GIVEN, "backward": False}

    def objective(x: np.ndarray) -> float:
        config["given"] = np.ascontiguousarray(x).ravel()
        trace = residual_reference_net(key, **config)
        return float(np.sum(direction * trace.xs[-1]))

    grad = np.empty_like(x0)
    for idx in np.ndindex(*x0.shape):
        xp = x0.copy()
        xm = x0.copy()
        xp[idx] += step
        xm[idx] -= step
        grad[idx] = (objective(xp) - objective(xm)) / (2.0 * step)
    return grad
