"""Exact Gram sampler on the GPU: ``B`` inputs per net, forward and exact backward.

The law and the draws are those of :mod:`initsim.engine.gram`, for
Gaussian and (see :func:`gram_kernel`) Haar-orthogonal weights.
Gaussian: with ``G = X^T X = R^T R`` (``R`` from the eigendecomposition,
ascending eigenvalues, canonical eigenvector signs, the numerically zero
part dropped), ``A = W X = s Z R`` where row ``i`` of ``Z``
is normals ``i * rank .. i * rank + rank - 1`` of substream ``(FORWARD, t)``.
Backward, for the gradient ``D`` at ``A``:
``W^T D = X G^+ A^T D + Y - X G^+ X^T Y`` with ``Y = s Z_b R_D``,
``D^T D = R_D^T R_D`` and ``Z_b`` the normals of ``(BACKWARD, t)``.

Layout: one thread block per net; units spread over the threads. The only
per-unit storage is one layer's activations (for the two-pass variance;
orthogonal backward passes keep the gradient rows ``D`` there too), in
shared memory or, for layers too wide for it, a global array. Everything
else the passes need is a ``B x B`` summary: the forward pass keeps each
layer's ``R`` (orthogonal: ``P = R_Z^{-1} R``), ``G^+`` and rank in a global
scratch array (``2 B^2 + 1`` floats per layer and net), and the backward
pass regenerates ``A``, ``H`` and ``X`` of a layer from the counters and
``R``, so ``D`` enters the next layer only through the reductions
``A^T D`` and ``D^T D``. Every thread factors the ``B x B`` matrices itself
(cyclic Jacobi in registers and local memory, the same instructions on
the same data in every thread, so every thread gets the same bits), which
costs a warp no more than one thread would and needs no barrier.

Agreement with the CPU is to rounding, as for the other kernels: the sums
run in another order and Jacobi's eigenvectors differ from LAPACK's in the
last bits (by ``eps ||G|| / gap`` for an eigenvalue gap ``gap``).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from numba import cuda, float64, uint64

from initsim.engine.gram import RANK_RTOL
from initsim.engine.layerstats import GRAD_SQ
from initsim.gpu.exact_kernels import dphi, phi
from initsim.gpu.inputs import input_writer, load_tables
from initsim.gpu.reduce import hist_add, reducers
from initsim.gpu.streams import normal_at, normal_pair
from initsim.rng import P_BACKWARD, P_BIAS, P_FORWARD, P_OUTPUT_DIRECTION

__all__ = [
    "gram_kernel",
    "psd_factor",
    "psd_factor_kernel",
    "scratch_floats",
    "shared_bytes",
]

#: Jacobi sweeps before giving up (quadratic convergence needs about 6-10).
_MAX_SWEEPS = 60

_ZERO = np.uint64(0)


def shared_bytes(nmax: int, inputs: int) -> int:
    """Dynamic shared memory of one block of :func:`gram_kernel` (bytes).

    Parameters
    ----------
    nmax : int
        Largest layer width (input included).
    inputs : int
        Inputs per net ``B``.

    Returns
    -------
    int
        Bytes: one layer's activations, ``8 nmax B``.
    """
    return 8 * nmax * inputs


def scratch_floats(depth: int, inputs: int) -> int:
    """Floats of global scratch per net for the backward pass (``R``, ``G^+``, rank).

    Parameters
    ----------
    depth : int
        Hidden layers.
    inputs : int
        Inputs per net ``B``.

    Returns
    -------
    int
        ``depth * (2 B^2 + 1)``.
    """
    return depth * (2 * inputs * inputs + 1)


@cuda.jit(device=True)
def _jacobi(a, v, nb):
    """Diagonalise the symmetric ``a`` in place (cyclic Jacobi); ``v`` gets the eigenvectors.

    On return the diagonal of ``a`` holds the eigenvalues and column ``i`` of
    ``v`` the eigenvector of ``a[i, i]``.
    """
    for i in range(nb):
        for j in range(nb):
            v[i, j] = 1.0 if i == j else 0.0
    for _ in range(_MAX_SWEEPS):
        rotated = False
        for p in range(nb - 1):
            for q in range(p + 1, nb):
                apq = a[p, q]
                app = abs(a[p, p])
                aqq = abs(a[q, q])
                # below the last bit of both diagonal entries (or exactly zero): drop it
                if app + 100.0 * abs(apq) == app and aqq + 100.0 * abs(apq) == aqq:
                    a[p, q] = 0.0
                    a[q, p] = 0.0
                    continue
                rotated = True
                theta = (a[q, q] - a[p, p]) / (2.0 * apq)
                if abs(theta) > 1e150:
                    t = 0.5 / theta
                else:
                    t = 1.0 / (abs(theta) + math.sqrt(theta * theta + 1.0))
                    if theta < 0.0:
                        t = -t
                c = 1.0 / math.sqrt(t * t + 1.0)
                s = t * c
                for k in range(nb):
                    akp = a[k, p]
                    akq = a[k, q]
                    a[k, p] = c * akp - s * akq
                    a[k, q] = s * akp + c * akq
                for k in range(nb):
                    apk = a[p, k]
                    aqk = a[q, k]
                    a[p, k] = c * apk - s * aqk
                    a[q, k] = s * apk + c * aqk
                a[p, q] = 0.0
                a[q, p] = 0.0
                for k in range(nb):
                    vkp = v[k, p]
                    vkq = v[k, q]
                    v[k, p] = c * vkp - s * vkq
                    v[k, q] = s * vkp + c * vkq
        if not rotated:
            return


@cuda.jit(device=True)
def psd_factor(g, nb, r, pinv, work, vec, lam):
    """Device twin of :func:`initsim.engine.gram.psd_factor`.

    Parameters
    ----------
    g : array (nb, nb)
        The PSD matrix (read only).
    nb : int
        Its size.
    r, pinv : arrays (nb, nb)
        Receive ``R`` (its first ``rank`` rows) and ``G^+``.
    work, vec : arrays (nb, nb); lam : array (nb,)
        Work space.

    Returns
    -------
    int
        The numerical rank, or -1 (and NaN in ``r`` and ``pinv``) when ``g``
        has a non-finite entry.
    """
    finite = True
    for i in range(nb):
        for j in range(nb):
            work[i, j] = g[i, j]
            if not math.isfinite(g[i, j]):
                finite = False
    if not finite:
        for i in range(nb):
            for j in range(nb):
                r[i, j] = math.nan
                pinv[i, j] = math.nan
        return -1
    _jacobi(work, vec, nb)
    for i in range(nb):
        lam[i] = work[i, i]
    # ascending eigenvalues (selection sort, moving the eigenvectors along)
    for i in range(nb - 1):
        m = i
        for j in range(i + 1, nb):
            if lam[j] < lam[m]:
                m = j
        if m != i:
            tmp = lam[i]
            lam[i] = lam[m]
            lam[m] = tmp
            for k in range(nb):
                tmp = vec[k, i]
                vec[k, i] = vec[k, m]
                vec[k, m] = tmp
    # canonical signs: each eigenvector's first largest-magnitude entry positive
    for i in range(nb):
        best = 0.0
        for j in range(nb):
            if abs(vec[j, i]) > abs(best):
                best = vec[j, i]
        if best < 0.0:
            for j in range(nb):
                vec[j, i] = -vec[j, i]
    # an exactly-zero input stays exactly dead (see the CPU twin)
    for j in range(nb):
        if g[j, j] == 0.0:
            for i in range(nb):
                vec[j, i] = 0.0
    top = 0.0
    for i in range(nb):
        top = max(top, lam[i])
    tol = RANK_RTOL * top
    for j in range(nb):
        for k in range(nb):
            pinv[j, k] = 0.0
            r[j, k] = 0.0
    rank = 0
    for i in range(nb):
        if lam[i] > tol and top > 0.0:
            sq = math.sqrt(lam[i])
            for j in range(nb):
                r[rank, j] = sq * vec[j, i]
            for j in range(nb):
                for k in range(nb):
                    pinv[j, k] += vec[j, i] * vec[k, i] / lam[i]
            rank += 1
    return rank


@cuda.jit(device=True)
def _row_normals(k0, k1, c2, c3, base, count, out, ki, wi, fi):
    """``out[k] = `` normal ``base + k`` of ``(c2, c3)`` for ``k < count``.

    Consecutive normals share a Philox block, so aligned pairs are drawn together.
    """
    k = 0
    idx = base
    if (idx & 1) == 1 and count > 0:
        out[0] = normal_at(k0, k1, c2, c3, idx, ki, wi, fi)
        k = 1
        idx += 1
    while k + 1 < count:
        out[k], out[k + 1] = normal_pair(k0, k1, c2, c3, idx >> 1, ki, wi, fi)
        k += 2
        idx += 2
    if k < count:
        out[k] = normal_at(k0, k1, c2, c3, idx, ki, wi, fi)


@cuda.jit(device=True)
def _pre_activation(k0, k1, t, i, scale, r, rank, nb, has_bias, bias_std, a, h, ki, wi, fi):
    """Row ``i`` of layer ``t``: ``a = s z R`` (NaN for an overflowed Gram) and ``h = a + b``.

    ``h`` holds the normals ``z`` until ``a`` is known.
    """
    tt = np.uint64(t)
    rk = max(rank, 0)
    _row_normals(k0, k1, P_FORWARD, tt, i * rk, rk, h, ki, wi, fi)
    _row_mat(h, r, rk, nb, a)
    bi = 0.0
    if has_bias:
        bi = bias_std * normal_at(k0, k1, P_BIAS, tt, i, ki, wi, fi)
    for j in range(nb):
        a[j] = math.nan if rank < 0 else scale * a[j]
        h[j] = a[j] + bi if has_bias else a[j]


@cuda.jit(device=True)
def _row_mat(v, a, n, m, out):
    """``out[:m] = v[:n] a[:n, :m]``."""
    for j in range(m):
        acc = 0.0
        for k in range(n):
            acc += v[k] * a[k, j]
        out[j] = acc


@cuda.jit(device=True)
def _mat_mat(a, b, n, m, q, out):
    """``out[:n, :q] = a[:n, :m] b[:m, :q]`` (``out`` must not alias ``a`` or ``b``)."""
    for i in range(n):
        for j in range(q):
            acc = 0.0
            for k in range(m):
                acc += a[i, k] * b[k, j]
            out[i, j] = acc


@cuda.jit(device=True)
def _chol_upper(s, n, rr):
    """Upper-triangular ``rr`` with a positive diagonal and ``rr^T rr = s``.

    Returns False (``rr`` NaN) when ``s`` is not numerically positive definite.
    """
    for i in range(n):
        for j in range(n):
            rr[i, j] = 0.0
    for j in range(n):
        d = s[j, j]
        for k in range(j):
            d -= rr[k, j] * rr[k, j]
        if not d > 0.0:
            for i in range(n):
                for c in range(n):
                    rr[i, c] = math.nan
            return False
        rjj = math.sqrt(d)
        rr[j, j] = rjj
        for i in range(j + 1, n):
            v = s[j, i]
            for k in range(j):
                v -= rr[k, j] * rr[k, i]
            rr[j, i] = v / rjj
    return True


@cuda.jit(device=True)
def _upper_inverse(rr, n, inv):
    """Inverse of the upper-triangular ``rr`` (back substitution, column by column)."""
    for j in range(n):
        for i in range(n - 1, -1, -1):
            v = 1.0 if i == j else 0.0
            for k in range(i + 1, n):
                v -= rr[i, k] * inv[k, j]
            inv[i, j] = v / rr[i, i]


@functools.cache
def gram_kernel(
    nb: int,
    block: int,
    code: int,
    backward: bool,
    shuffle: bool = False,
    max_registers: int | None = None,
    spill: bool = False,
    orthogonal: bool = False,
) -> Any:
    """Compile (once per ``B``, block size, activation and law) the Gram kernel.

    Parameters
    ----------
    nb : int
        Inputs per net ``B`` (compile-time: the ``B x B`` work arrays live
        in registers and local memory), at most :data:`initsim.gpu.EXACT_MAX_INPUTS`.
    block : int
        Threads per block, a power of two.
    code : int
        Activation code, compiled in as a constant.
    backward : bool
        Compile the backward pass in.
    shuffle : bool
        Warp-shuffle reductions (real GPUs, ``block >= 32``) or the tree.
    max_registers : int, optional
        Register cap per thread.
    spill : bool
        Keep the per-unit buffers in a global array, the kernel's last
        argument ``(grid, floats)``, instead of dynamic shared memory: for
        layers too wide for a block's shared memory (slower). The kernel
        takes that argument either way (any shape when ``spill`` is false).
    orthogonal : bool
        Haar-orthogonal weights (``wstd`` then holds the gains) instead of
        Gaussian ones; the backward pass needs ``n_out >= n_in`` in every
        layer (the driver checks).

    Returns
    -------
    numba.cuda dispatcher
        ``kernel[nets, block, stream, shared_bytes](...)`` with the
        arguments of the single-input kernel
        (:func:`initsim.gpu.exact_kernels.exact_kernel`), whose scratch here
        is ``(nets, depth, 2 B^2 + 1)`` for the backward pass (any shape
        when ``backward`` is false); the weights argument is unused.

    Notes
    -----
    Orthogonal weights follow :mod:`initsim.engine.gram`: a layer's
    ``A = g Psi[:n_out] R`` with ``Psi`` the Haar frame of a Gaussian
    ``m x r`` matrix ``Z`` (``m = max(n_in, n_out)``). Here ``Psi = Z
    R_Z^{-1}`` with ``R_Z`` from two rounds of Cholesky QR (each a reduction
    over the ``m`` regenerated rows of ``Z``), which equals the CPU's
    Householder frame to ``eps cond(Z)``; the kernel keeps ``P = R_Z^{-1} R``
    so that row ``i`` of ``A`` is ``g z_i P``, as for Gaussian weights. The
    backward pass builds the frames ``Psi_2`` and ``Phi`` and the core ``R_K``
    the same way, keeping the gradient rows ``D`` in the per-unit buffer.
    """
    nred = block
    act = code
    bwd = backward
    orth = orthogonal
    nsym = nb * (nb + 1) // 2
    nsq = nb * nb
    # the largest reduction (A^T D, D^T D and, orthogonal, A^T A), padded to sum5's width
    nvals = 5 * ((nsq + 2 * nsym + 4) // 5)
    _, _, sum5, finish_layer = reducers(shuffle)
    opts = {} if max_registers is None else {"max_registers": max_registers}
    use_global = spill
    write_input = input_writer(shuffle)

    @cuda.jit(device=True)
    def reduce_vals(red, vals, n):
        """Sum ``vals[:n]`` over the block in place (every thread gets the totals)."""
        for g in range(0, n, 5):
            s0, s1, s2, s3, s4 = sum5(
                red, vals[g], vals[g + 1], vals[g + 2], vals[g + 3], vals[g + 4]
            )
            vals[g] = s0
            vals[g + 1] = s1
            vals[g + 2] = s2
            vals[g + 3] = s3
            vals[g + 4] = s4

    @cuda.jit(device=True)
    def zero_vals(vals):
        for k in range(nvals):
            vals[k] = 0.0

    @cuda.jit(device=True)
    def unpack_sym(vals, off, m, n):
        """Fill the symmetric ``m[:n, :n]`` from its packed upper triangle at ``vals[off:]``."""
        idx = off
        for j in range(n):
            for k in range(j, n):
                m[j, k] = vals[idx]
                m[k, j] = vals[idx]
                idx += 1

    @cuda.jit(device=True)
    def add_sym(vals, off, u, n):
        """Accumulate the packed upper triangle of ``u[:n] u[:n]^T`` into ``vals[off:]``."""
        idx = off
        for j in range(n):
            for k in range(j, n):
                vals[idx] += u[j] * u[k]
                idx += 1

    @cuda.jit(device=True)
    def add_backward_row(vals, arow, drow):
        """Accumulate one unit's share of ``A^T D``, ``D^T D`` and (orthogonal) ``A^T A``."""
        for j in range(nb):
            for k in range(nb):
                vals[j * nb + k] += arow[j] * drow[k]
        add_sym(vals, nsq, drow, nb)
        if orth:
            add_sym(vals, nsq + nsym, arow, nb)

    @cuda.jit(device=True)
    def input_row(k0, k1, t, i, scale, r, rank, has_bias, bias_std, param, arow, hrow, xrow,
                  ki, wi, fi):  # fmt: skip
        """Regenerate unit ``i`` of layer ``t``: ``a``, ``h`` and ``x = phi(h)`` (next input)."""
        _pre_activation(
            k0, k1, t, i, scale, r, rank, nb, has_bias, bias_std, arow, hrow, ki, wi, fi
        )
        for j in range(nb):
            xrow[j] = phi(act, param, hrow[j])

    @cuda.jit(device=True)
    def pinv_times(fac, net, t, vals, ncols, out):
        """``out[:, :ncols] = G_t^+ V`` with ``V`` the reduced ``B x ncols`` block in ``vals``."""
        for j in range(nb):
            for k in range(ncols):
                m = 0.0
                for q in range(nb):
                    m += fac[net, t, nsq + j * nb + q] * vals[q * nb + k]
                out[j, k] = m

    @cuda.jit(device=True)
    def projected_row(k0, k1, c3, base, p, xrow, fy, out, tmp, ki, wi, fi):
        """``out = y_g - x F_y``: a Gaussian row of ``(BACKWARD, c3)`` minus its ``col(X)`` part."""
        _row_normals(k0, k1, P_BACKWARD, c3, base, p, out, ki, wi, fi)
        _row_mat(xrow, fy, nb, p, tmp)
        for k in range(p):
            out[k] -= tmp[k]

    @cuda.jit(device=True)
    def gram_chol(red, vals, n, s, rr):
        """Reduce the packed Gram in ``vals``, factor it: ``rr`` (upper) and its success."""
        reduce_vals(red, vals, n * (n + 1) // 2)
        unpack_sym(vals, 0, s, n)
        return _chol_upper(s, n, rr)

    @cuda.jit(device=True)
    def haar_factor(red, vals, k0, k1, c2, c3, base, rows, r, pre, ki, wi, fi, zrow, qrow,
                    s, r1, t1, out_r, out_t):  # fmt: skip
        """Cholesky QR, twice, of the ``rows x r`` matrix with rows ``z_i pre``.

        ``z_i`` are normals ``base + i r ..`` of ``(c2, c3)``. Gives ``out_r``
        (upper, positive diagonal: the matrix is ``Q out_r``) and ``out_t =
        out_r^{-1}``; NaN when the matrix is numerically rank-deficient.
        """
        tid = cuda.threadIdx.x
        bd = cuda.blockDim.x
        zero_vals(vals)
        for i in range(tid, rows, bd):
            _row_normals(k0, k1, c2, c3, base + i * r, r, zrow, ki, wi, fi)
            _row_mat(zrow, pre, r, r, qrow)
            add_sym(vals, 0, qrow, r)
        gram_chol(red, vals, r, s, r1)
        _upper_inverse(r1, r, t1)
        zero_vals(vals)
        for i in range(tid, rows, bd):
            _row_normals(k0, k1, c2, c3, base + i * r, r, zrow, ki, wi, fi)
            _row_mat(zrow, pre, r, r, qrow)
            _row_mat(qrow, t1, r, r, zrow)
            add_sym(vals, 0, zrow, r)
        gram_chol(red, vals, r, s, out_t)  # R_2, for now
        _mat_mat(out_t, r1, r, r, r, out_r)  # R = R_2 R_1
        _upper_inverse(out_r, r, out_t)

    @cuda.jit(**opts)
    def kernel(
        keys,
        widths,
        wstd,
        bias_std,
        param,
        input_mode,
        given,
        sat_threshold,
        hedges,
        aedges,
        ki_g,
        wi_g,
        fi,
        stats,
        first,
        hist_h,
        hist_a,
        fac,
        wts,
        big,
    ):
        ki = cuda.shared.array(256, uint64)
        wi = cuda.shared.array(256, float64)
        red = cuda.shared.array((5, nred), float64)
        if use_global:
            ybuf = big[cuda.blockIdx.x]
        else:
            ybuf = cuda.shared.array(0, float64)
        r = cuda.local.array((nb, nb), float64)
        pinv = cuda.local.array((nb, nb), float64)
        gmat = cuda.local.array((nb, nb), float64)
        work = cuda.local.array((nb, nb), float64)
        vec = cuda.local.array((nb, nb), float64)
        lam = cuda.local.array(nb, float64)
        cmat = cuda.local.array((nb, nb), float64)
        mmat = cuda.local.array((nb, nb), float64)
        fmat = cuda.local.array((nb, nb), float64)
        rd = cuda.local.array((nb, nb), float64)
        m1 = cuda.local.array((nb, nb), float64)
        m2 = cuda.local.array((nb, nb), float64)
        m3 = cuda.local.array((nb, nb), float64)
        eye = cuda.local.array((nb, nb), float64)
        vals = cuda.local.array(nvals, float64)
        arow = cuda.local.array(nb, float64)
        hrow = cuda.local.array(nb, float64)
        yrow = cuda.local.array(nb, float64)
        drow = cuda.local.array(nb, float64)
        xrow = cuda.local.array(nb, float64)
        zrow = cuda.local.array(nb, float64)
        tid = cuda.threadIdx.x
        bd = cuda.blockDim.x
        load_tables(ki, wi, ki_g, wi_g)
        for i in range(nb):
            for j in range(nb):
                eye[i, j] = 1.0 if i == j else 0.0
        nets = keys.shape[0]
        depth = widths.shape[0] - 1
        hist = hedges[2] > 0.0  # (lo, hi, nbins + 2), or nbins + 2 = 0 for none
        has_bias = bias_std > 0.0
        for net in range(cuda.blockIdx.x, nets, cuda.gridDim.x):
            k0 = keys[net, 0]
            k1 = keys[net, 1]
            # ---- input (unit-major n0 x B), as initsim.engine.exact.make_input
            n0 = widths[0]
            write_input(red, ybuf, k0, k1, input_mode, given, n0, nb, ki, wi, fi)
            if tid == 0:
                first[net] = 0
            cuda.syncthreads()
            # ---- G_0 = X_0^T X_0 and its factor
            zero_vals(vals)
            for i in range(tid, n0, bd):
                for j in range(nb):
                    yrow[j] = ybuf[i * nb + j]
                add_sym(vals, 0, yrow, nb)
            reduce_vals(red, vals, nsym)
            unpack_sym(vals, 0, gmat, nb)
            rank = psd_factor(gmat, nb, r, pinv, work, vec, lam)
            # ---- forward
            for t in range(depth):
                nout = widths[t + 1]
                if orth and rank > 0:
                    # r <- P = R_Z^{-1} R, the frame of Z (m x rank) folded in
                    mm = max(widths[t], nout)
                    haar_factor(
                        red, vals, k0, k1, P_FORWARD, np.uint64(t), 0, mm, rank, eye,
                        ki, wi, fi, zrow, xrow, gmat, m1, m2, m3, fmat,
                    )  # fmt: skip
                    _mat_mat(fmat, r, rank, rank, nb, m1)
                    for j in range(rank):
                        for k in range(nb):
                            r[j, k] = m1[j, k]
                if bwd and tid == 0:
                    for j in range(nb):
                        for k in range(nb):
                            fac[net, t, j * nb + k] = r[j, k]
                            fac[net, t, nsq + j * nb + k] = pinv[j, k]
                    fac[net, t, 2 * nsq] = rank
                zero_vals(vals)
                p_h2 = 0.0
                p_y = 0.0
                p_y2 = 0.0
                p_dead = 0.0
                p_sat = 0.0
                for i in range(tid, nout, bd):
                    _pre_activation(
                        k0, k1, t, i, wstd[t], r, rank, nb, has_bias, bias_std, arow, hrow,
                        ki, wi, fi,
                    )  # fmt: skip
                    live = 0.0
                    for j in range(nb):
                        h = hrow[j]
                        y = phi(act, param, h)
                        yrow[j] = y
                        ybuf[i * nb + j] = y
                        p_h2 += h * h
                        p_y += y
                        p_y2 += y * y
                        if y != 0.0:
                            live = 1.0
                        if abs(dphi(act, param, h)) < sat_threshold:
                            p_sat += 1.0
                        if hist:
                            hist_add(hist_h, t, hedges, h)
                            hist_add(hist_a, t, aedges, y)
                    p_dead += 1.0 - live
                    add_sym(vals, 0, yrow, nb)
                finish_layer(
                    red, ybuf, nout, nb, p_h2, p_y, p_y2, p_dead, p_sat, stats, net, t, first
                )
                if t + 1 < depth:
                    reduce_vals(red, vals, nsym)
                    unpack_sym(vals, 0, gmat, nb)
                    rank = psd_factor(gmat, nb, r, pinv, work, vec, lam)
            if not bwd:
                continue
            # ---- backward, top layer: D = U * phi'(H); A^T D, D^T D (and A^T A)
            tl = depth - 1
            nl = widths[depth]
            rank = int(fac[net, tl, 2 * nsq])
            for j in range(nb):
                for k in range(nb):
                    r[j, k] = fac[net, tl, j * nb + k]
            zero_vals(vals)
            for i in range(tid, nl, bd):
                _pre_activation(
                    k0, k1, tl, i, wstd[tl], r, rank, nb, has_bias, bias_std, arow, hrow,
                    ki, wi, fi,
                )  # fmt: skip
                for j in range(nb):
                    u = normal_at(k0, k1, P_OUTPUT_DIRECTION, _ZERO, i * nb + j, ki, wi, fi)
                    drow[j] = u * dphi(act, param, hrow[j])
                    if orth:
                        ybuf[i * nb + j] = drow[j]
                add_backward_row(vals, arow, drow)
            reduce_vals(red, vals, nsq + (2 * nsym if orth else nsym))
            # ---- backward, layers t = depth-1 .. 1: D <- phi'(H_{t-1}) * (W_t^T D)
            for t in range(depth - 1, -1, -1):
                for j in range(nb):
                    for k in range(nb):
                        cmat[j, k] = vals[j * nb + k]
                unpack_sym(vals, nsq, gmat, nb)
                if orth:
                    unpack_sym(vals, nsq + nsym, m1, nb)  # A^T A
                dd = 0.0
                for j in range(nb):
                    dd += gmat[j, j]
                if tid == 0:
                    stats[net, t, GRAD_SQ] = dd / (widths[t + 1] * nb)
                if t == 0:
                    break
                nin = widths[t]
                nout = widths[t + 1]
                st = wstd[t]
                tb = np.uint64(t)
                rank_t = int(fac[net, t, 2 * nsq])
                pinv_times(fac, net, t, vals, nb, mmat)  # M = G_t^+ (A^T D)
                pp = 0  # columns of the orthogonal part's frame Phi
                bnan = False
                rb = 0
                rank_m = 0
                mm2 = 0
                if not orth:
                    rank_d = psd_factor(gmat, nb, rd, pinv, work, vec, lam)
                    bnan = rank_d < 0
                    rb = max(rank_d, 0)
                else:
                    # E = (A^T A)^+ (A^T D); M_res = D - A E; R_M from its Gram (rd, rank_m)
                    psd_factor(m1, nb, work, pinv, m2, vec, lam)
                    _mat_mat(pinv, cmat, nb, nb, nb, m3)
                    for j in range(nb):
                        for k in range(nb):
                            r[j, k] = fac[net, t, j * nb + k]
                    zero_vals(vals)
                    for i in range(tid, nout, bd):
                        _pre_activation(
                            k0, k1, t, i, st, r, rank_t, nb, has_bias, bias_std, arow, hrow,
                            ki, wi, fi,
                        )  # fmt: skip
                        _row_mat(arow, m3, nb, nb, xrow)
                        for j in range(nb):
                            yrow[j] = ybuf[i * nb + j] - xrow[j]
                        add_sym(vals, 0, yrow, nb)
                    reduce_vals(red, vals, nsym)
                    unpack_sym(vals, 0, gmat, nb)
                    rank_m = psd_factor(gmat, nb, rd, pinv, work, vec, lam)
                    bnan = rank_m < 0
                    kdim = nin - rank_t
                    mm2 = nout - rank_t
                    pp = min(kdim, rank_m)
                    if pp > 0:
                        # Psi_2 = Z_2 T_Z (m2 x r_M); core = K (k <= r_M) or R_K
                        haar_factor(
                            red, vals, k0, k1, P_BACKWARD, tb, 0, mm2, rank_m, eye,
                            ki, wi, fi, zrow, xrow, gmat, m1, m2, m3, fmat,
                        )  # fmt: skip
                        if kdim <= rank_m:
                            for i in range(kdim):
                                _row_normals(
                                    k0, k1, P_BACKWARD, tb, i * rank_m, rank_m, zrow, ki, wi, fi
                                )
                                _row_mat(zrow, fmat, rank_m, rank_m, xrow)
                                for j in range(rank_m):
                                    cmat[i, j] = xrow[j]
                        else:
                            for i in range(rank_m):
                                for j in range(rank_m):
                                    work[i, j] = fmat[i, j]
                            haar_factor(
                                red, vals, k0, k1, P_BACKWARD, tb, 0, kdim, rank_m, work,
                                ki, wi, fi, zrow, xrow, gmat, m1, m2, cmat, fmat,
                            )  # fmt: skip
                        # core R_M (p x B) in m3
                        _mat_mat(cmat, rd, pp, rank_m, nb, m3)
                # the rows of layer t's input X_t = phi(H_{t-1}) are regenerated from here on
                rank = int(fac[net, t - 1, 2 * nsq])
                for j in range(nb):
                    for k in range(nb):
                        r[j, k] = fac[net, t - 1, j * nb + k]
                if not orth:
                    # pass 1: X^T Y, Y = s Z_b R_D
                    zero_vals(vals)
                    for i in range(tid, nin, bd):
                        input_row(
                            k0, k1, t - 1, i, wstd[t - 1], r, rank, has_bias, bias_std, param,
                            arow, hrow, xrow, ki, wi, fi,
                        )  # fmt: skip
                        _row_normals(k0, k1, P_BACKWARD, tb, i * rb, rb, zrow, ki, wi, fi)
                        _row_mat(zrow, rd, rb, nb, yrow)
                        for j in range(nb):
                            for k in range(nb):
                                vals[j * nb + k] += xrow[j] * (st * yrow[k])
                    reduce_vals(red, vals, nsq)
                    pinv_times(fac, net, t, vals, nb, fmat)  # F = G_t^+ (X^T Y)
                elif pp > 0:
                    # Phi: Cholesky QR (twice) of Y_p = Y_g - X G^+ X^T Y_g (n_in x p)
                    ybase = mm2 * rank_m
                    zero_vals(vals)
                    for i in range(tid, nin, bd):
                        input_row(
                            k0, k1, t - 1, i, wstd[t - 1], r, rank, has_bias, bias_std, param,
                            arow, hrow, xrow, ki, wi, fi,
                        )  # fmt: skip
                        _row_normals(k0, k1, P_BACKWARD, tb, ybase + i * pp, pp, zrow, ki, wi, fi)
                        for j in range(nb):
                            for k in range(pp):
                                vals[j * nb + k] += xrow[j] * zrow[k]
                    reduce_vals(red, vals, nsq)
                    pinv_times(fac, net, t, vals, pp, fmat)  # F_y = G_t^+ (X^T Y_g)
                    for rnd in range(2):
                        if rnd == 1:
                            _upper_inverse(m1, pp, m2)  # R_1^{-1}
                        zero_vals(vals)
                        for i in range(tid, nin, bd):
                            input_row(
                                k0, k1, t - 1, i, wstd[t - 1], r, rank, has_bias, bias_std,
                                param, arow, hrow, xrow, ki, wi, fi,
                            )  # fmt: skip
                            projected_row(
                                k0, k1, tb, ybase + i * pp, pp, xrow, fmat, zrow, yrow, ki, wi, fi
                            )
                            if rnd == 1:
                                _row_mat(zrow, m2, pp, pp, yrow)
                                for k in range(pp):
                                    zrow[k] = yrow[k]
                            add_sym(vals, 0, zrow, pp)
                        if rnd == 0:
                            gram_chol(red, vals, pp, gmat, m1)  # R_1
                        else:
                            gram_chol(red, vals, pp, gmat, work)  # R_2
                    _mat_mat(work, m1, pp, pp, pp, m2)  # R_Y = R_2 R_1
                    _upper_inverse(m2, pp, m1)
                    _mat_mat(m1, m3, pp, pp, nb, cmat)  # R_Y^{-1} core R_M (p x B)
                # last pass: G = X M + (the part outside col(X)), D = G phi'(H); A^T D,
                # D^T D (and A^T A) of layer t - 1
                zero_vals(vals)
                for i in range(tid, nin, bd):
                    input_row(
                        k0, k1, t - 1, i, wstd[t - 1], r, rank, has_bias, bias_std, param, arow,
                        hrow, xrow, ki, wi, fi,
                    )  # fmt: skip
                    if not orth:
                        _row_normals(k0, k1, P_BACKWARD, tb, i * rb, rb, zrow, ki, wi, fi)
                        _row_mat(zrow, rd, rb, nb, yrow)
                    elif pp > 0:
                        projected_row(
                            k0, k1, tb, mm2 * rank_m + i * pp, pp, xrow, fmat, zrow, yrow,
                            ki, wi, fi,
                        )  # fmt: skip
                        _row_mat(zrow, cmat, pp, nb, yrow)
                    for j in range(nb):
                        xm = 0.0
                        xf = 0.0
                        for q in range(nb):
                            xm += xrow[q] * mmat[q, j]
                            if not orth:
                                xf += xrow[q] * fmat[q, j]
                        if not orth:
                            g = xm + (st * yrow[j] - xf)
                        elif pp > 0:
                            g = xm + st * yrow[j]
                        else:
                            g = xm
                        if bnan:
                            g = math.nan
                        drow[j] = g * dphi(act, param, hrow[j])
                        if orth:
                            ybuf[i * nb + j] = drow[j]
                    add_backward_row(vals, arow, drow)
                reduce_vals(red, vals, nsq + (2 * nsym if orth else nsym))

    return kernel


@cuda.jit
def psd_factor_kernel(gs, rs, pinvs, ranks, work, vec, lam):
    """Factor ``gs[k]`` into ``rs[k]``, ``pinvs[k]``, ``ranks[k]`` (one thread each; for tests)."""
    k = cuda.grid(1)
    if k < gs.shape[0]:
        ranks[k] = psd_factor(gs[k], gs.shape[1], rs[k], pinvs[k], work[k], vec[k], lam[k])
