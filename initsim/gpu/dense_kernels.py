"""Dense sampler on the GPU: weights regenerated from their counters (or read back).

Entry ``(i, j)`` of layer ``t``'s ``W`` (``n_out x n_in``) is draw number
``i * n_in + j`` of substream ``(WEIGHTS, t)``, exactly as in
:func:`initsim.engine.laws.fill_weights`; a thread computes it where the
product needs it, so ``W`` never touches global memory. Forward, thread ``r``
owns output rows and walks along them (consecutive entries share a Philox
block); backward (``W^T d``) it owns pairs of columns, regenerating the same
entries. Laws computed in place: Gaussian (``loc + scale z``), uniform
(``low + (high - low) u``), constant and identity. Orthogonal,
truncated-Gaussian and sparse matrices need a factorisation or sequential
draws: :mod:`initsim.gpu.weight_fill` materialises them first and the
products read them from global memory.

One thread block per net; the ``B`` inputs of a layer live in shared memory
(two ping-pong buffers, unit-major). The pre-activations of every layer are
kept in a global scratch array for the backward pass.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from numba import cuda, float64, uint64

from initsim.engine.laws import (
    CONSTANT,
    GAUSSIAN,
    IDENTITY,
    P_GAIN,
    P_HIGH,
    P_LOC,
    P_LOW,
    P_SCALE,
    P_VALUE,
    UNIFORM,
)
from initsim.engine.layerstats import GRAD_SQ
from initsim.gpu.exact_kernels import dphi, phi
from initsim.gpu.inputs import input_writer, load_tables
from initsim.gpu.reduce import hist_add, reducers
from initsim.gpu.streams import normal_at, normal_from_word, uniform_at, word_pair
from initsim.gpu.weight_fill import is_stored
from initsim.rng import P_BIAS, P_OUTPUT_DIRECTION, P_WEIGHTS

__all__ = ["dense_kernel", "shared_bytes", "weight_at", "weight_pair"]

_ZERO = np.uint64(0)
_ONE = np.uint64(1)
_S11 = np.uint64(11)
_TWO_M53 = 1.0 / 9007199254740992.0


def shared_bytes(nmax: int, inputs: int) -> int:
    """Dynamic shared memory of one block of :func:`dense_kernel` (bytes).

    Parameters
    ----------
    nmax : int
        Largest layer width.
    inputs : int
        Inputs per net.

    Returns
    -------
    int
        Bytes.
    """
    return 16 * nmax * inputs


@cuda.jit(device=True)
def weight_pair(law, params, k0, k1, c3, blk, i, j, ki, wi, fi, stored):
    """Entries ``2 blk`` and ``2 blk + 1`` of a weight matrix: ``(i, j)`` and ``(i, j + 1)``.

    Laws in :data:`~initsim.gpu.weight_fill.STORED_LAWS` read them from
    ``stored`` (the layer's row-major matrix); the others compute them
    (Gaussian first: the common case pays for no other test).
    """
    if law == GAUSSIAN:
        u0, u1 = word_pair(k0, k1, P_WEIGHTS, c3, blk)
        z0 = normal_from_word(u0, k0, k1, P_WEIGHTS, c3, blk, _ZERO, ki, wi, fi)
        z1 = normal_from_word(u1, k0, k1, P_WEIGHTS, c3, blk, _ONE, ki, wi, fi)
        return params[P_LOC] + params[P_SCALE] * z0, params[P_LOC] + params[P_SCALE] * z1
    if law == UNIFORM:
        u0, u1 = word_pair(k0, k1, P_WEIGHTS, c3, blk)
        low = params[P_LOW]
        span = params[P_HIGH] - low
        v0 = float(u0 >> _S11) * _TWO_M53
        v1 = float(u1 >> _S11) * _TWO_M53
        return low + span * v0, low + span * v1
    if law == CONSTANT:
        return params[P_VALUE], params[P_VALUE]
    if law == IDENTITY:
        g = params[P_GAIN]
        return (g if i == j else 0.0), (g if i == j + 1 else 0.0)
    if is_stored(law):
        k = blk + blk
        return stored[k], stored[k + 1]
    return math.nan, math.nan


@cuda.jit(device=True)
def weight_at(law, params, k0, k1, c3, k, i, j, ki, wi, fi, stored):
    """Entry ``(i, j)`` of a weight matrix, draw number ``k = i * n_in + j``."""
    if law == GAUSSIAN:
        return params[P_LOC] + params[P_SCALE] * normal_at(k0, k1, P_WEIGHTS, c3, k, ki, wi, fi)
    if law == UNIFORM:
        low = params[P_LOW]
        return low + (params[P_HIGH] - low) * uniform_at(k0, k1, P_WEIGHTS, c3, k)
    if law == CONSTANT:
        return params[P_VALUE]
    if law == IDENTITY:
        return params[P_GAIN] if i == j else 0.0
    if is_stored(law):
        return stored[k]
    return math.nan


@functools.cache
def dense_kernel(
    nb: int,
    block: int,
    code: int,
    backward: bool,
    shuffle: bool = False,
    max_registers: int | None = None,
    spill: bool = False,
) -> Any:
    """Compile (once per number of inputs and block size) the dense kernel.

    Parameters
    ----------
    nb : int
        Inputs per net ``B`` (a compile-time constant: per-thread
        accumulators live in registers).
    block : int
        Threads per block, a power of two.
    code : int
        Activation code, compiled in as a constant.
    backward : bool
        Compile the backward pass in (a forward-only kernel needs fewer registers).
    shuffle : bool
        Warp-shuffle reductions (real GPUs, ``block >= 32``) or the tree.
    max_registers : int, optional
        Register cap per thread.
    spill : bool
        Keep the per-unit buffers in a global array, the kernel's last
        argument ``(grid, floats)``, instead of dynamic shared memory: for
        layers too wide for a block's shared memory (slower). The kernel
        takes that argument either way (any shape when ``spill`` is false).

    Returns
    -------
    numba.cuda dispatcher
        ``kernel[nets, block, stream, shared_bytes](...)``; arguments as in
        :func:`initsim.engine.dense.dense_kernel` (without ``code`` and ``backward`` and
        ``n_inputs``), plus
        the ziggurat tables, histograms summed over nets ``(depth, nbins +
        2)``, a scratch array ``(nets, depth, nmax * B)`` for the backward
        pass (any shape when ``backward`` is false) and the stored weights
        ``(nets, depth, n_out * n_in)`` from
        :func:`initsim.gpu.weight_fill.fill_kernel` for the laws in
        :data:`~initsim.gpu.weight_fill.STORED_LAWS` (any shape otherwise),
        then the spill buffer: the trailing arguments of every GPU kernel
        (:class:`initsim.gpu.driver.GpuKernel`).
    """
    nred = block
    act = code
    bwd = backward
    sum1, _, _, finish_layer = reducers(shuffle)
    opts = {} if max_registers is None else {"max_registers": max_registers}
    use_global = spill
    write_input = input_writer(shuffle)

    @cuda.jit(**opts)
    def kernel(
        keys,
        widths,
        law,
        law_params,
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
        hs,
        wts,
        big,
    ):
        ki = cuda.shared.array(256, uint64)
        wi = cuda.shared.array(256, float64)
        red = cuda.shared.array((5, nred), float64)
        if use_global:
            buf = big[cuda.blockIdx.x]
        else:
            buf = cuda.shared.array(0, float64)
        tid = cuda.threadIdx.x
        bd = cuda.blockDim.x
        load_tables(ki, wi, ki_g, wi_g)
        nets = keys.shape[0]
        depth = widths.shape[0] - 1
        nmax = 0
        for t in range(depth + 1):
            nmax = max(nmax, widths[t])
        xa = buf[0 : nmax * nb]
        xb = buf[nmax * nb : 2 * nmax * nb]
        hist = hedges[2] > 0.0  # (lo, hi, nbins + 2), or nbins + 2 = 0 for none
        stored = is_stored(law)
        has_bias = bias_std > 0.0
        acc = cuda.local.array(nb, float64)
        acc2 = cuda.local.array(nb, float64)
        for net in range(cuda.blockIdx.x, nets, cuda.gridDim.x):
            k0 = keys[net, 0]
            k1 = keys[net, 1]
            # ---- input (unit-major n0 x B), as initsim.engine.exact.make_input
            n0 = widths[0]
            write_input(red, xa, k0, k1, input_mode, given, n0, nb, ki, wi, fi)
            if tid == 0:
                first[net] = 0
            cuda.syncthreads()
            # ---- forward
            for t in range(depth):
                nin = widths[t]
                nout = widths[t + 1]
                c3 = np.uint64(t)
                params = law_params[t]
                wrow = wts[net, t] if stored else wts[0, 0]
                cur = xa if t % 2 == 0 else xb
                nxt = xb if t % 2 == 0 else xa
                p_h2 = 0.0
                p_y = 0.0
                p_y2 = 0.0
                p_dead = 0.0
                p_sat = 0.0
                for i in range(tid, nout, bd):
                    for b in range(nb):
                        acc[b] = 0.0
                    k = i * nin
                    end = k + nin
                    j = 0
                    if k & 1:
                        w = weight_at(law, params, k0, k1, c3, k, i, j, ki, wi, fi, wrow)
                        for b in range(nb):
                            acc[b] += w * cur[j * nb + b]
                        k += 1
                        j += 1
                    while k + 1 < end:
                        w0, w1 = weight_pair(
                            law, params, k0, k1, c3, np.uint64(k >> 1), i, j, ki, wi, fi, wrow
                        )
                        for b in range(nb):
                            acc[b] += w0 * cur[j * nb + b] + w1 * cur[(j + 1) * nb + b]
                        k += 2
                        j += 2
                    if k < end:
                        w = weight_at(law, params, k0, k1, c3, k, i, j, ki, wi, fi, wrow)
                        for b in range(nb):
                            acc[b] += w * cur[j * nb + b]
                    bi = 0.0
                    if has_bias:
                        bi = bias_std * normal_at(k0, k1, P_BIAS, c3, i, ki, wi, fi)
                    live = 0.0
                    for b in range(nb):
                        h = acc[b]
                        if has_bias:
                            h += bi
                        if bwd:
                            hs[net, t, i * nb + b] = h
                        y = phi(act, param, h)
                        nxt[i * nb + b] = y
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
                finish_layer(
                    red, nxt, nout, nb, p_h2, p_y, p_y2, p_dead, p_sat, stats, net, t, first
                )
            if not bwd:
                continue
            # ---- backward: d = u * phi'(h_L); then d <- phi'(h_{t-1}) * (W_t^T d)
            nl = widths[depth]
            d = xa
            g = xb
            p = 0.0
            for k in range(tid, nl * nb, bd):
                v = normal_at(k0, k1, P_OUTPUT_DIRECTION, _ZERO, k, ki, wi, fi)
                v = v * dphi(act, param, hs[net, depth - 1, k])
                d[k] = v
                p += v * v
            s = sum1(red, p)
            if tid == 0:
                stats[net, depth - 1, GRAD_SQ] = s / (nl * nb)
            for t in range(depth - 1, 0, -1):
                nin = widths[t]
                nout = widths[t + 1]
                c3 = np.uint64(t)
                params = law_params[t]
                wrow = wts[net, t] if stored else wts[0, 0]
                p = 0.0
                for jp in range(tid, (nin + 1) >> 1, bd):
                    j0 = 2 * jp
                    two = j0 + 1 < nin
                    for b in range(nb):
                        acc[b] = 0.0
                    for b in range(nb):
                        acc2[b] = 0.0
                    for i in range(nout):
                        k = i * nin + j0
                        if two and (k & 1) == 0:
                            w0, w1 = weight_pair(
                                law, params, k0, k1, c3, np.uint64(k >> 1), i, j0, ki, wi, fi,
                                wrow,
                            )  # fmt: skip
                        else:
                            w0 = weight_at(law, params, k0, k1, c3, k, i, j0, ki, wi, fi, wrow)
                            w1 = 0.0
                            if two:
                                w1 = weight_at(
                                    law, params, k0, k1, c3, k + 1, i, j0 + 1, ki, wi, fi, wrow
                                )
                        for b in range(nb):
                            db = d[i * nb + b]
                            acc[b] += w0 * db
                            acc2[b] += w1 * db
                    for b in range(nb):
                        v = acc[b] * dphi(act, param, hs[net, t - 1, j0 * nb + b])
                        g[j0 * nb + b] = v
                        p += v * v
                        if two:
                            v = acc2[b] * dphi(act, param, hs[net, t - 1, (j0 + 1) * nb + b])
                            g[(j0 + 1) * nb + b] = v
                            p += v * v
                s = sum1(red, p)
                if tid == 0:
                    stats[net, t - 1, GRAD_SQ] = s / (nin * nb)
                tmp = d
                d = g
                g = tmp

    return kernel
