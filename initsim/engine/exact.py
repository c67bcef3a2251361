"""Exact Gaussian-conditioning sampler for one input per net: O(n) per layer.

For iid Gaussian weights ``W_ij ~ N(0, s^2)`` and a fixed input ``x``, the
pre-activation ``a = W x`` is exactly ``s * ||x|| * z`` with ``z`` standard
normal: one normal per unit instead of a row of ``n_in`` normals and a
matrix-vector product.

Backward, for the *same* ``W``: conditioned on ``W x = a``,
``W = a x^T / ||x||^2 + W' P`` with ``P = I - x x^T / ||x||^2`` and ``W'`` an
independent copy, hence ``W^T d = x (a . d) / ||x||^2 + P z`` with
``z ~ N(0, s^2 ||d||^2 I)``. This is exact: no gradient-independence
assumption. When ``x = 0`` (a dead layer) ``a = 0`` and ``W^T d = z``.

Random substreams per net (see :mod:`initsim.rng`): ``(INPUT, 0)`` input,
``(FORWARD, l)`` layer ``l``'s ``z``, ``(BIAS, l)`` its bias,
``(OUTPUT_DIRECTION, 0)`` the output direction, ``(BACKWARD, l)`` the
backward ``z`` of layer ``l``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from initsim._jit import jit
from initsim.activations import RELU, act_dphi
from initsim.engine.layerstats import GRAD_SQ, close_layer, sum_sq
from initsim.rng import P_BACKWARD, P_FORWARD, P_INPUT, P_OUTPUT_DIRECTION, fill_normals

_ZERO = np.uint64(0)

INPUT_GAUSSIAN = 0
INPUT_SPHERE = 1
INPUT_GIVEN = 2


@jit
def make_input(k0, k1, mode, given, n0, b, x):
    """Write one net's input (``n0 * b`` values, unit-major) into ``x``.

    ``mode`` is INPUT_GAUSSIAN (iid N(0, 1)), INPUT_SPHERE (each of the ``b``
    inputs uniform on the sphere of radius ``sqrt(n0)``, so ``q0 = 1``) or
    INPUT_GIVEN (copy ``given``, already unit-major).
    """
    total = n0 * b
    if mode == INPUT_GIVEN:
        for k in range(total):
            x[k] = given[k]
        return
    fill_normals(k0, k1, P_INPUT, _ZERO, 0, x[:total])
    if mode == INPUT_SPHERE:
        for j in range(b):
            s = 0.0
            for i in range(n0):
                s += x[i * b + j] * x[i * b + j]
            scale = math.sqrt(n0 / s) if s > 0.0 else 0.0
            for i in range(n0):
                x[i * b + j] *= scale


@jit(parallel=True)
def exact_single_input(
    keys,
    widths,
    wstd,
    bias_std,
    act,
    input_mode,
    given,
    backward,
    sat_threshold,
    hedges,
    aedges,
    stats,
    first_nonfinite,
    hist_h,
    hist_a,
):
    """Propagate one input through each net with the exact Gaussian sampler.

    Parameters
    ----------
    keys : uint64 array (nets, 2)
        Per-net Philox keys.
    widths : int64 array (depth + 1,)
        ``n_0 .. n_depth``.
    wstd : float64 array (depth,)
        Standard deviation of one weight entry per layer.
    bias_std : float
        Standard deviation of the biases (0 for none).
    act : tuple
        Activation.
    input_mode : int
        See :func:`make_input`; ``given`` holds the input for INPUT_GIVEN.
    given : float64 array
        The user's input (``n_0`` values) or an empty array.
    backward : bool
        Also propagate a gradient from a random output direction.
    sat_threshold : float
        Saturation threshold on ``|phi'|``.
    hedges, aedges : float64 arrays (3,)
        Histogram ranges ``(lo, hi, nbins)``.
    stats : float64 array (nets, depth, N_STATS)
        Output summaries.
    first_nonfinite : int64 array (nets,)
        Output: first hidden layer (1-based) whose ``q`` is not finite, 0 if
        none.
    hist_h, hist_a : int64 arrays (nets, depth, nbins + 2) or (nets, depth, 0)
        Output histograms.
    """
    nets = keys.shape[0]
    depth = widths.shape[0] - 1
    nmax = 0
    for t in range(depth + 1):
        nmax = max(nmax, widths[t])
    for net in numba.prange(nets):
        k0 = keys[net, 0]
        k1 = keys[net, 1]
        # a = W x (before the bias) is kept for the backward pass; without a bias it is h
        keep_a = backward and bias_std > 0.0
        xs = np.empty((depth + 1 if backward else 2, nmax))
        hs = np.empty((depth if backward else 1, nmax))
        avs = np.empty((depth if keep_a else 1, nmax))
        z = np.empty(nmax)
        x2s = np.empty(depth + 1)
        bz = np.empty(nmax)
        make_input(k0, k1, input_mode, given, widths[0], 1, xs[0])
        first_nonfinite[net] = 0
        x2 = sum_sq(xs[0], widths[0])
        x2s[0] = x2
        for t in range(depth):
            nout = widths[t + 1]
            nxt = t + 1 if backward else (t + 1) % 2
            slot = t if backward else 0
            h = hs[slot]
            av = avs[slot if keep_a else 0]
            c = wstd[t] * math.sqrt(x2)
            fill_normals(k0, k1, P_FORWARD, np.uint64(t), 0, z[:nout])
            if keep_a:
                for i in range(nout):
                    av[i] = c * z[i]
            for i in range(nout):
                h[i] = c * z[i]
            x2 = close_layer(
                k0,
                k1,
                t,
                bias_std,
                bz,
                h,
                xs[nxt],
                nout,
                1,
                act,
                sat_threshold,
                stats[net, t],
                hist_h[net, t],
                hist_a[net, t],
                hedges,
                aedges,
                first_nonfinite,
                net,
            )
            x2s[t + 1] = x2
        if backward:
            a_rows = avs if keep_a else hs
            _exact_backward(k0, k1, widths, wstd, act, xs, x2s, hs, a_rows, z, bz, stats[net])


@jit(inline="always")
def _gate(act, x):
    """phi'(x); ReLU without a data-dependent branch (random signs defeat prediction)."""
    if act[0] == RELU:
        v = 1.0 if x > 0.0 else 0.0
        if x != x:
            v = x
        return v
    return act_dphi(act, x)


@jit
def _exact_backward(k0, k1, widths, wstd, act, xs, x2s, hs, avs, d, g, stats_net):
    """Backward pass of one net (see the module docstring); fills GRAD_SQ.

    One fused pass per layer computes ``W^T d``, gates it with ``phi'`` and
    accumulates ``||d||^2`` and ``a . d`` needed by the next layer down.
    """
    depth = widths.shape[0] - 1
    nl = widths[depth]
    fill_normals(k0, k1, P_OUTPUT_DIRECTION, _ZERO, 0, d[:nl])
    dd = 0.0
    ad = 0.0
    av = avs[depth - 1]
    for i in range(nl):
        di = d[i] * _gate(act, hs[depth - 1, i])
        d[i] = di
        dd += di * di
        ad += av[i] * di
    stats_net[depth - 1, GRAD_SQ] = dd / nl
    for t in range(depth - 1, 0, -1):
        nin = widths[t]
        x = xs[t]
        x2 = x2s[t]
        fill_normals(k0, k1, P_BACKWARD, np.uint64(t), 0, g[:nin])
        sz = wstd[t] * math.sqrt(dd)
        proj = 0.0
        coef = 0.0
        if x2 > 0.0:
            xz = 0.0
            for i in range(nin):
                xz += x[i] * g[i]
            proj = xz / x2
            coef = ad / x2
        hp = hs[t - 1]
        ap = avs[t - 1]
        dd = 0.0
        ad = 0.0
        for i in range(nin):
            gi = x[i] * coef + sz * (g[i] - x[i] * proj)
            di = gi * _gate(act, hp[i])
            d[i] = di
            dd += di * di
            ad += ap[i] * di
        stats_net[t - 1, GRAD_SQ] = dd / nin
