"""Per-layer statistics shared by the exact and the dense kernels.

A layer's pre-activations arrive as a flat buffer ``h`` of ``n * B`` values,
unit-major (unit ``i`` owns ``h[i*B:(i+1)*B]``). One pass applies the
activation, writes the next layer's input and accumulates the summaries.
"""

from __future__ import annotations

import math

import numpy as np

from initsim._jit import jit
from initsim.activations import LINEAR, RELU, act_dphi, act_phi
from initsim.rng import P_BIAS, fill_normals

# Column indices of the per-net, per-layer summary array ``stats[net, layer, :]``.
Q = 0
ACT_MEAN = 1
ACT_VAR = 2
DEAD = 3
SATURATED = 4
GRAD_SQ = 5
N_STATS = 6


@jit
def forward_layer(h, y, n, b, act, sat_threshold, stats_row, hist_h, hist_a, hedges, aedges):
    """Apply phi to ``h`` into ``y`` and write this layer's summaries.

    Parameters
    ----------
    h, y : 1-D float64 arrays
        Pre-activations (read) and activations (written), ``n * b`` values.
    n, b : int
        Units and inputs.
    act : tuple
        The activation (see :mod:`initsim.activations`).
    sat_threshold : float
        A (unit, input) pair counts as saturated when ``|phi'(h)| < sat_threshold``.
    stats_row : 1-D float64 array
        Receives q, act mean, act variance, dead fraction, saturated fraction.
    hist_h, hist_a : 1-D int64 arrays
        Histogram counts (``nbins + 2``: underflow first, overflow last) or
        empty arrays when no histograms are requested.
    hedges, aedges : 1-D float64 arrays
        Equal-width bin edges ``(lo, hi, nbins)`` packed as three floats.

    Returns
    -------
    float
        The sum of squared activations, ``||y||^2`` (the next layer's input
        norm); the layer overflowed when ``stats_row[Q]`` is not finite.
    """
    total = n * b
    if act[0] == RELU and b == 1:
        s_h2, s_y, s_y2, dead, sat = _relu_pass_single(h, y, n, sat_threshold)
    elif act[0] == RELU:
        s_h2, s_y, s_y2, dead, sat = _relu_pass(h, y, n, b, sat_threshold)
    elif act[0] == LINEAR:
        s_h2, s_y, s_y2, dead, sat = _linear_pass(h, y, n, b, sat_threshold)
    else:
        s_h2, s_y, s_y2, dead, sat = _generic_pass(h, y, n, b, act, sat_threshold)
    mean_y = s_y / total
    s_dev = _sum_sq_dev(y, total, mean_y)
    stats_row[Q] = s_h2 / total
    stats_row[ACT_MEAN] = mean_y
    stats_row[ACT_VAR] = s_dev / total
    stats_row[DEAD] = dead / n
    stats_row[SATURATED] = sat / total
    if hist_h.shape[0] > 0:
        _histogram(h, total, hedges, hist_h)
        _histogram(y, total, aedges, hist_a)
    return s_y2


@jit
def close_layer(
    k0,
    k1,
    t,
    bias_std,
    bz,
    h,
    y,
    nout,
    b,
    act,
    sat_threshold,
    stats_row,
    hist_h,
    hist_a,
    hedges,
    aedges,
    first_nonfinite,
    net,
):
    """Finish layer ``t`` of a net, the same way in every kernel.

    Adds the per-unit bias (substream ``(BIAS, t)``, shared by the ``b``
    inputs) to the pre-activations ``h`` (``W x`` on entry), applies the
    activation into ``y`` with :func:`forward_layer`, and records the layer in
    ``first_nonfinite[net]`` (1-based) when its ``q`` is the net's first
    non-finite one.

    Returns
    -------
    float
        ``||y||^2``, as :func:`forward_layer`.
    """
    if bias_std > 0.0:
        fill_normals(k0, k1, P_BIAS, np.uint64(t), 0, bz[:nout])
        for i in range(nout):
            bi = bias_std * bz[i]
            for j in range(b):
                h[i * b + j] += bi
    y2 = forward_layer(h, y, nout, b, act, sat_threshold, stats_row, hist_h, hist_a, hedges, aedges)
    if first_nonfinite[net] == 0 and not math.isfinite(stats_row[Q]):
        first_nonfinite[net] = t + 1
    return y2


@jit
def _generic_pass(h, y, n, b, act, sat_threshold):
    """Any activation: phi and phi' through the compiled registry."""
    s_h2 = 0.0
    s_y = 0.0
    s_y2 = 0.0
    dead = 0
    sat = 0
    for i in range(n):
        unit_dead = True
        for j in range(b):
            k = i * b + j
            x = h[k]
            v = act_phi(act, x)
            y[k] = v
            s_h2 += x * x
            s_y += v
            s_y2 += v * v
            if v != 0.0:
                unit_dead = False
            if abs(act_dphi(act, x)) < sat_threshold:
                sat += 1
        if unit_dead:
            dead += 1
    return s_h2, s_y, s_y2, dead, sat


@jit
def _sum_sq_dev(y, total, mean):
    """Sum of ``(y - mean)^2`` with two accumulators (halves the add-latency chain)."""
    s0 = 0.0
    s1 = 0.0
    k = 0
    while k + 1 < total:
        d0 = y[k] - mean
        d1 = y[k + 1] - mean
        s0 += d0 * d0
        s1 += d1 * d1
        k += 2
    if k < total:
        d0 = y[k] - mean
        s0 += d0 * d0
    return s0 + s1


@jit(inline="always")
def _relu1(x):
    """ReLU of one value, NaN propagated, as (value, is positive, is NaN)."""
    pos = x > 0.0
    v = x if pos else 0.0
    isnan = x != x
    if isnan:  # rare, so well predicted
        v = x
    return v, pos, isnan


@jit
def _relu_pass_single(h, y, n, sat_threshold):
    """ReLU pass for one input per net, two elements per step (independent sums)."""
    a_h2 = 0.0
    b_h2 = 0.0
    a_y = 0.0
    b_y = 0.0
    a_y2 = 0.0
    b_y2 = 0.0
    live = 0
    npos = 0
    nnan = 0
    k = 0
    while k + 1 < n:
        x0 = h[k]
        x1 = h[k + 1]
        v0, p0, n0 = _relu1(x0)
        v1, p1, n1 = _relu1(x1)
        y[k] = v0
        y[k + 1] = v1
        a_h2 += x0 * x0
        b_h2 += x1 * x1
        a_y += v0
        b_y += v1
        a_y2 += v0 * v0
        b_y2 += v1 * v1
        live += (v0 != 0.0) + (v1 != 0.0)
        npos += p0 + p1
        nnan += n0 + n1
        k += 2
    if k < n:
        x0 = h[k]
        v0, p0, n0 = _relu1(x0)
        y[k] = v0
        a_h2 += x0 * x0
        a_y += v0
        a_y2 += v0 * v0
        live += v0 != 0.0
        npos += p0
        nnan += n0
    sat = (npos if 1.0 < sat_threshold else 0) + (n - npos - nnan if 0.0 < sat_threshold else 0)
    return a_h2 + b_h2, a_y + b_y, a_y2 + b_y2, n - live, sat


@jit
def _relu_pass(h, y, n, b, sat_threshold):
    """ReLU without data-dependent branches (random signs would defeat branch prediction).

    Gives the same values as the generic pass: NaN propagates, relu'(x) is 1
    for x > 0, 0 for x <= 0 and NaN (never saturated) for NaN.
    """
    s_h2 = 0.0
    s_y = 0.0
    s_y2 = 0.0
    dead = 0
    npos = 0
    nnan = 0
    for i in range(n):
        live = 0
        for j in range(b):
            k = i * b + j
            x = h[k]
            pos = x > 0.0
            v = x if pos else 0.0
            if x != x:  # rare, so well predicted
                v = x
                nnan += 1
            y[k] = v
            s_h2 += x * x
            s_y += v
            s_y2 += v * v
            live += v != 0.0
            npos += pos
        dead += live == 0
    sat = (npos if 1.0 < sat_threshold else 0) + (n * b - npos - nnan if 0.0 < sat_threshold else 0)
    return s_h2, s_y, s_y2, dead, sat


@jit
def _linear_pass(h, y, n, b, sat_threshold):
    """Identity activation: phi' = 1 everywhere."""
    s_h2 = 0.0
    s_y = 0.0
    s_y2 = 0.0
    dead = 0
    sat_each = 1 if 1.0 < sat_threshold else 0
    for i in range(n):
        live = 0
        for j in range(b):
            k = i * b + j
            x = h[k]
            y[k] = x
            s_h2 += x * x
            s_y += x
            s_y2 += x * x
            live += x != 0.0
        dead += live == 0
    return s_h2, s_y, s_y2, dead, sat_each * n * b


@jit
def _histogram(v, total, edges, counts):
    """Add ``v[:total]`` to equal-width ``counts`` (slot 0 under, slot -1 over; NaN skipped)."""
    lo = edges[0]
    hi = edges[1]
    nb = counts.shape[0] - 2
    width = (hi - lo) / nb
    for k in range(total):
        x = v[k]
        if x != x:
            continue
        if x < lo:
            counts[0] += 1
        elif x >= hi:
            counts[nb + 1] += 1
        else:
            idx = int((x - lo) / width)
            if idx >= nb:
                idx = nb - 1
            counts[idx + 1] += 1


@jit
def sum_sq(v, total):
    """Sum of ``v[:total] ** 2``."""
    s = 0.0
    for k in range(total):
        s += v[k] * v[k]
    return s


@jit
def mean_square(v, total):
    """Mean of ``v[:total] ** 2``."""
    return sum_sq(v, total) / total


def empty_hist() -> np.ndarray:
    """Return the zero-length int64 array kernels take for 'no histogram'."""
    return np.zeros(0, dtype=np.int64)
