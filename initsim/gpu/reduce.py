"""Block reductions and the per-layer statistics shared by the GPU kernels.

One thread block works on one net. Each thread accumulates partial sums over
the units it owns; :func:`block_sum1`, :func:`block_sum2` and
:func:`block_sum5` combine them with a fixed-order tree in shared memory
(the block size must be a power of two), so a kernel's result does not
depend on scheduling: the same launch gives the same bits every time. On a real GPU
the ``*_shfl`` variants first sum within each warp by shuffles (fewer
barriers); the simulator has no shuffles and runs the tree. The
order differs from the CPU's sequential sums, which is why GPU and CPU agree
to float64 rounding (relative ~ ``n * 2**-53`` per sum), not bit for bit.

:func:`reducers` also builds ``finish_layer``, the device twin of the
bookkeeping in :func:`initsim.engine.layerstats.forward_layer`: q,
activation mean, (two-pass) activation variance, dead and saturated
fractions, and the first non-finite layer.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from numba import cuda

from initsim.engine.layerstats import ACT_MEAN, ACT_VAR, DEAD, SATURATED, Q

__all__ = [
    "block_sum1",
    "block_sum2",
    "block_sum5",
    "hist_add",
    "reducers",
    "unit_stats",
]


@cuda.jit(device=True)
def block_sum1(red, a):
    """Sum ``a`` over the block; every thread gets the total."""
    tid = cuda.threadIdx.x
    red[0, tid] = a
    cuda.syncthreads()
    s = cuda.blockDim.x >> 1
    while s > 0:
        if tid < s:
            red[0, tid] += red[0, tid + s]
        cuda.syncthreads()
        s >>= 1
    r = red[0, 0]
    cuda.syncthreads()
    return r


@cuda.jit(device=True)
def block_sum2(red, a, b):
    """Sum two values over the block; every thread gets the totals."""
    tid = cuda.threadIdx.x
    red[0, tid] = a
    red[1, tid] = b
    cuda.syncthreads()
    s = cuda.blockDim.x >> 1
    while s > 0:
        if tid < s:
            red[0, tid] += red[0, tid + s]
            red[1, tid] += red[1, tid + s]
        cuda.syncthreads()
        s >>= 1
    ra = red[0, 0]
    rb = red[1, 0]
    cuda.syncthreads()
    return ra, rb


@cuda.jit(device=True)
def block_sum5(red, a, b, c, d, e):
    """Sum five values over the block; every thread gets the totals."""
    tid = cuda.threadIdx.x
    red[0, tid] = a
    red[1, tid] = b
    red[2, tid] = c
    red[3, tid] = d
    red[4, tid] = e
    cuda.syncthreads()
    s = cuda.blockDim.x >> 1
    while s > 0:
        if tid < s:
            red[0, tid] += red[0, tid + s]
            red[1, tid] += red[1, tid + s]
            red[2, tid] += red[2, tid + s]
            red[3, tid] += red[3, tid + s]
            red[4, tid] += red[4, tid + s]
        cuda.syncthreads()
        s >>= 1
    ra = red[0, 0]
    rb = red[1, 0]
    rc = red[2, 0]
    rd = red[3, 0]
    re = red[4, 0]
    cuda.syncthreads()
    return ra, rb, rc, rd, re


@cuda.jit(device=True)
def hist_add(counts, t, edges, x):
    """Add ``x`` to row ``t`` of equal-width ``counts`` (the CPU's ``_histogram``)."""
    if x != x:
        return
    lo = edges[0]
    hi = edges[1]
    nb = counts.shape[1] - 2
    width = (hi - lo) / nb
    if x < lo:
        cuda.atomic.add(counts, (t, 0), 1)
    elif x >= hi:
        cuda.atomic.add(counts, (t, nb + 1), 1)
    else:
        idx = int((x - lo) / width)
        if idx >= nb:
            idx = nb - 1
        cuda.atomic.add(counts, (t, idx + 1), 1)


@cuda.jit(device=True)
def unit_stats(h, y, dy, sat_threshold):
    """Per-value contributions: (h^2, y, y^2, y is nonzero, saturated) as floats."""
    live = 1.0 if y != 0.0 else 0.0
    sat = 1.0 if abs(dy) < sat_threshold else 0.0
    return h * h, y, y * y, live, sat


@cuda.jit(device=True)
def _warp_sum(v):
    """Sum over a warp's 32 lanes (valid in lane 0), in a fixed order."""
    off = 16
    while off > 0:
        v += cuda.shfl_down_sync(0xFFFFFFFF, v, off)
        off >>= 1
    return v


@cuda.jit(device=True)
def block_sum1_shfl(red, a):
    """:func:`block_sum1` with warp shuffles (block a multiple of 32; not in the simulator)."""
    tid = cuda.threadIdx.x
    a = _warp_sum(a)
    if (tid & 31) == 0:
        red[0, tid >> 5] = a
    cuda.syncthreads()
    r = 0.0
    for w in range(cuda.blockDim.x >> 5):
        r += red[0, w]
    cuda.syncthreads()
    return r


@cuda.jit(device=True)
def block_sum2_shfl(red, a, b):
    """:func:`block_sum2` with warp shuffles."""
    tid = cuda.threadIdx.x
    a = _warp_sum(a)
    b = _warp_sum(b)
    if (tid & 31) == 0:
        red[0, tid >> 5] = a
        red[1, tid >> 5] = b
    cuda.syncthreads()
    ra = 0.0
    rb = 0.0
    for w in range(cuda.blockDim.x >> 5):
        ra += red[0, w]
        rb += red[1, w]
    cuda.syncthreads()
    return ra, rb


@cuda.jit(device=True)
def block_sum5_shfl(red, a, b, c, d, e):
    """:func:`block_sum5` with warp shuffles."""
    tid = cuda.threadIdx.x
    a = _warp_sum(a)
    b = _warp_sum(b)
    c = _warp_sum(c)
    d = _warp_sum(d)
    e = _warp_sum(e)
    if (tid & 31) == 0:
        w = tid >> 5
        red[0, w] = a
        red[1, w] = b
        red[2, w] = c
        red[3, w] = d
        red[4, w] = e
    cuda.syncthreads()
    ra = 0.0
    rb = 0.0
    rc = 0.0
    rd = 0.0
    re = 0.0
    for w in range(cuda.blockDim.x >> 5):
        ra += red[0, w]
        rb += red[1, w]
        rc += red[2, w]
        rd += red[3, w]
        re += red[4, w]
    cuda.syncthreads()
    return ra, rb, rc, rd, re


@functools.cache
def reducers(shuffle: bool) -> tuple[Any, Any, Any, Any]:
    """Return ``(sum1, sum2, sum5, finish_layer)`` device functions.

    Parameters
    ----------
    shuffle : bool
        Warp-shuffle reductions (two barriers each; real GPUs, blocks of a
        multiple of 32 threads) or the shared-memory tree (any power-of-two
        block; the only kind the CUDA simulator runs).

    Returns
    -------
    tuple
        ``sum1(red, a)``, ``sum2(red, a, b)``, ``sum5(red, a, ..., e)`` and
        ``finish_layer(red, y, n, b, p_h2, p_y, p_y2, p_dead, p_sat, stats,
        net, t, first)``: reduce a layer's partial sums, write ``stats[net, t,
        :5]`` and return ``||y||^2``. ``y`` (shared memory, ``n * b`` values)
        must be complete; a second pass over it gives the variance about the
        mean, as on the CPU.
    """
    sum1 = block_sum1_shfl if shuffle else block_sum1
    sum2 = block_sum2_shfl if shuffle else block_sum2
    sum5 = block_sum5_shfl if shuffle else block_sum5

    @cuda.jit(device=True)
    def finish_layer(red, y, n, b, p_h2, p_y, p_y2, p_dead, p_sat, stats, net, t, first):
        tid = cuda.threadIdx.x
        bd = cuda.blockDim.x
        s_h2, s_y, s_y2, dead, sat = sum5(red, p_h2, p_y, p_y2, p_dead, p_sat)
        total = n * b
        mean = s_y / total
        p_dev = 0.0
        for k in range(tid, total, bd):
            dv = y[k] - mean
            p_dev += dv * dv
        s_dev = sum1(red, p_dev)
        if tid == 0:
            q = s_h2 / total
            stats[net, t, Q] = q
            stats[net, t, ACT_MEAN] = mean
            stats[net, t, ACT_VAR] = s_dev / total
            stats[net, t, DEAD] = dead / n
            stats[net, t, SATURATED] = sat / total
            if first[net] == 0 and not math.isfinite(q):
                first[net] = t + 1
        return s_y2

    return sum1, sum2, sum5, finish_layer
