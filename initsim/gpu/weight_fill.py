"""Weight matrices the dense GPU kernel cannot regenerate entry by entry.

Truncated-Gaussian, sparse and orthogonal matrices are not a function of one
counter per entry: the truncated sampler consumes its uniforms sequentially
(rejections shift every later entry), the sparse law zeroes a partial
Fisher-Yates sample per column, and the orthogonal law is the Q factor of a
Gaussian matrix. :func:`fill_kernel` materialises them, one GPU thread per
``(net, layer)`` matrix, with device ports of
:func:`initsim.engine.laws.fill_weights`: the same substreams, the same
counters, the same algorithms (Householder QR with the same sign correction
for the orthogonal law), so the matrices equal the CPU's to rounding. The
dense kernel then reads them from global memory
(:data:`STORED_LAWS`).

One thread per matrix is slow per matrix (sequential draws, an ``O(n^3)``
QR) but runs thousands of matrices at once; the driver bounds the memory of
a launch (``nets x depth x n_out x n_in`` floats) by batching nets.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda

from initsim.engine.laws import (
    ORTHOGONAL,
    P_GAIN,
    P_HIGH,
    P_LOC,
    P_LOW,
    P_SCALE,
    P_SPARSITY,
    SPARSE,
    TRUNCATED_GAUSSIAN,
)
from initsim.gpu.streams import normal_at, uniform_at
from initsim.rng import P_SPARSE, P_TRUNCATED, P_TRUNCATED_NORMALS, P_WEIGHTS

__all__ = ["STORED_LAWS", "fill_kernel", "is_stored", "work_floats"]

#: Law codes whose matrices :func:`fill_kernel` materialises.
STORED_LAWS = (TRUNCATED_GAUSSIAN, SPARSE, ORTHOGONAL)

_SQRT_2PI = math.sqrt(2.0 * math.pi)
_TN_NORMAL = 0
_TN_UNIFORM_CENTRE = 1
_TN_UNIFORM_TAIL = 2


@cuda.jit(device=True)
def is_stored(law):
    """Whether the dense kernel reads this law's matrices from :func:`fill_kernel`."""
    return law == TRUNCATED_GAUSSIAN or law == SPARSE or law == ORTHOGONAL


def work_floats(code: int, nmax: int) -> int:
    """Floats of per-matrix work space :func:`fill_kernel` needs for a law.

    Parameters
    ----------
    code : int
        Law code.
    nmax : int
        Largest layer width.

    Returns
    -------
    int
        Orthogonal: the Gaussian matrix being factored and its Householder
        scalars (``nmax^2 + nmax``); sparse: a row index (``nmax``);
        otherwise 1.
    """
    if code == ORTHOGONAL:
        return nmax * nmax + nmax
    if code == SPARSE:
        return nmax
    return 1


@cuda.jit(device=True)
def _fill_truncated(loc, scale, low, high, k0, k1, c3, w, n_out, n_in, ki, wi, fi):
    """Port of :func:`initsim.engine.laws._fill_truncated` (row-major, sequential draws)."""
    a = (low - loc) / scale
    b = (high - loc) / scale
    sign = 1.0
    lam = 0.0
    lam_a = 0.0
    if a <= 0.0 and 0.0 <= b:
        method = _TN_NORMAL if b - a >= _SQRT_2PI else _TN_UNIFORM_CENTRE
    else:
        if b < 0.0:
            a, b = -b, -a
            sign = -1.0
        lam_a = 2.0 / (math.sqrt(a * a + 4.0) + a)
        lam = a + lam_a
        method = _TN_UNIFORM_TAIL if b - a < math.exp(0.5 * lam_a * lam_a) / lam else 3
    width = b - a
    nu = 0
    nn = 0
    for k in range(n_out * n_in):
        z = 0.0
        if method == _TN_NORMAL:
            while True:
                z = normal_at(k0, k1, P_TRUNCATED_NORMALS, c3, nn, ki, wi, fi)
                nn += 1
                if a <= z and z <= b:
                    break
        elif method == _TN_UNIFORM_CENTRE:
            while True:
                z = a + width * uniform_at(k0, k1, P_TRUNCATED, c3, nu)
                v = uniform_at(k0, k1, P_TRUNCATED, c3, nu + 1)
                nu += 2
                if v < math.exp(-0.5 * z * z):
                    break
        elif method == _TN_UNIFORM_TAIL:
            while True:
                t = width * uniform_at(k0, k1, P_TRUNCATED, c3, nu)
                v = uniform_at(k0, k1, P_TRUNCATED, c3, nu + 1)
                nu += 2
                if v < math.exp(-t * (a + 0.5 * t)):
                    z = a + t
                    break
        else:
            while True:
                e = -math.log1p(-uniform_at(k0, k1, P_TRUNCATED, c3, nu)) / lam
                v = uniform_at(k0, k1, P_TRUNCATED, c3, nu + 1)
                nu += 2
                d = e - lam_a
                if e <= width and v < math.exp(-0.5 * d * d):
                    z = a + e
                    break
        x = loc + scale * (sign * z)
        w[k] = min(max(x, low), high)


@cuda.jit(device=True)
def _fill_sparse(sparsity, scale, k0, k1, c3, w, n_out, n_in, idx, ki, wi, fi):
    """Port of :func:`initsim.engine.laws._fill_sparse` (``idx``: ``n_out`` floats of work)."""
    for k in range(n_out * n_in):
        w[k] = scale * normal_at(k0, k1, P_WEIGHTS, c3, k, ki, wi, fi)
    # numba-cuda types math.ceil as float64 (the CPU target gives an int)
    nz = min(n_out, int(math.ceil(sparsity * n_out)))  # noqa: RUF046
    for j in range(n_in):
        for r in range(n_out):
            idx[r] = r
        for t in range(nz):
            m = n_out - t
            u = uniform_at(k0, k1, P_SPARSE, c3, j * nz + t)
            pick = t + min(int(u * m), m - 1)
            tmp = idx[t]
            idx[t] = idx[pick]
            idx[pick] = tmp
            w[int(idx[t]) * n_in + j] = 0.0


@cuda.jit(device=True)
def _fill_orthogonal(gain, k0, k1, c3, w, n_out, n_in, work, ki, wi, fi):
    """Port of :func:`initsim.engine.laws._fill_orthogonal` by Householder QR.

    The Gaussian matrix ``G`` (``n_out x n_in``, normal ``i n_in + j`` at
    ``(i, j)``) is factored as ``A = QR`` with ``A = G`` when ``n_out >= n_in``
    and ``A = G^T`` otherwise (``A`` is ``m x n``, ``m >= n``, column-major in
    ``work``); the columns of ``Q`` are multiplied by ``gain`` and the sign
    of ``R``'s diagonal (so ``R``'s is positive: the unique QR that LAPACK's
    factor is corrected to on the CPU) and written back as ``W``.
    """
    tall = n_out >= n_in
    m = n_out if tall else n_in
    n = n_in if tall else n_out
    # A[i, c] is G[i, c] (tall) or G[c, i] (wide): W[a, b] = w[a n_in + b] seen through strides
    rs = n_in if tall else 1
    cs = 1 if tall else n_in
    tau = work[m * n : m * n + n]
    for i in range(m):
        for c in range(n):
            idx = i * rs + c * cs
            work[c * m + i] = normal_at(k0, k1, P_WEIGHTS, c3, idx, ki, wi, fi)
    # Householder: column c becomes (beta, v_1..) with H_c = I - tau v v^T, v_0 = 1
    for c in range(n):
        base = c * m
        norm2 = 0.0
        for i in range(c + 1, m):
            norm2 += work[base + i] * work[base + i]
        alpha = work[base + c]
        if norm2 == 0.0:
            tau[c] = 0.0  # already upper triangular in this column: H = I
            continue
        beta = math.sqrt(alpha * alpha + norm2)
        if alpha > 0.0:
            beta = -beta
        tau[c] = (beta - alpha) / beta
        inv = 1.0 / (alpha - beta)
        for i in range(c + 1, m):
            work[base + i] *= inv
        work[base + c] = beta
        for j in range(c + 1, n):
            bj = j * m
            dot = work[bj + c]
            for i in range(c + 1, m):
                dot += work[base + i] * work[bj + i]
            dot *= tau[c]
            work[bj + c] -= dot
            for i in range(c + 1, m):
                work[bj + i] -= dot * work[base + i]
    # Q e_j = H_0 H_1 .. H_{n-1} e_j, scaled by gain * sign(R_jj), written into W (Q's
    # entry (i, j) at w[i rs + j cs])
    for j in range(n):
        s = gain if work[j * m + j] >= 0.0 else -gain
        q = j * cs
        for i in range(m):
            w[i * rs + q] = 1.0 if i == j else 0.0
        for c in range(min(j, n - 1), -1, -1):
            if tau[c] == 0.0:
                continue
            base = c * m
            dot = w[c * rs + q]
            for i in range(c + 1, m):
                dot += work[base + i] * w[i * rs + q]
            dot *= tau[c]
            w[c * rs + q] -= dot
            for i in range(c + 1, m):
                w[i * rs + q] -= dot * work[base + i]
        for i in range(m):
            w[i * rs + q] *= s


@cuda.jit
def fill_kernel(keys, widths, law, law_params, ki, wi, fi, wts, work):
    """Fill ``wts[net, t, :n_out * n_in]`` (row-major ``W``) for every net and layer.

    One thread per ``(net, t)``; ``work[net, t]`` is that thread's work space
    (:func:`work_floats`). ``ki``, ``wi``, ``fi`` are the ziggurat tables in
    global memory.
    """
    depth = widths.shape[0] - 1
    g = cuda.grid(1)
    if g >= keys.shape[0] * depth:
        return
    net = g // depth
    t = g - net * depth
    k0 = keys[net, 0]
    k1 = keys[net, 1]
    c3 = np.uint64(t)
    n_in = widths[t]
    n_out = widths[t + 1]
    params = law_params[t]
    w = wts[net, t]
    if law == TRUNCATED_GAUSSIAN:
        _fill_truncated(
            params[P_LOC], params[P_SCALE], params[P_LOW], params[P_HIGH], k0, k1, c3, w,
            n_out, n_in, ki, wi, fi,
        )  # fmt: skip
    elif law == SPARSE:
        _fill_sparse(
            params[P_SPARSITY], params[P_SCALE], k0, k1, c3, w, n_out, n_in, work[net, t],
            ki, wi, fi,
        )  # fmt: skip
    elif law == ORTHOGONAL:
        _fill_orthogonal(params[P_GAIN], k0, k1, c3, w, n_out, n_in, work[net, t], ki, wi, fi)
    else:
        for k in range(n_out * n_in):
            w[k] = math.nan
