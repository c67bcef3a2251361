"""Exact Gaussian-conditioning sampler on the GPU: one input per net, forward and backward.

The law is that of :mod:`initsim.engine.exact` (``h = s ||x|| z`` forward;
``W^T d = x (a.d)/||x||^2 + P z`` backward, exactly, for the same ``W``) and
so are the draws: unit ``i`` of layer ``t`` uses normal ``i`` of substream
``(FORWARD, t)`` (bias ``(BIAS, t)``, backward ``(BACKWARD, t)``, output
direction ``(OUTPUT_DIRECTION, 0)``, input ``(INPUT, 0)``), so the same seed
gives the CPU's numbers.

Layout: one thread block per net (a grid-stride loop when there are more
nets than blocks), units spread over the threads in pairs (one Philox block
gives the normals of units ``2p`` and ``2p + 1``). Normals are generated in
registers; the only per-unit storage is a block's shared memory (the layer's
activations for the two-pass variance and, in the backward pass, one layer's
``h``, ``a = W x`` and backward normals). The forward pass keeps only
``||x_t||^2`` per layer; the backward pass regenerates ``h_{t-1}`` from the
same counters, which costs draws but no global memory.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from numba import cuda, float64, uint64

from initsim.activations import dphi_scalar, phi_scalar
from initsim.engine.exact import INPUT_GIVEN, INPUT_SPHERE
from initsim.engine.layerstats import GRAD_SQ
from initsim.gpu.inputs import load_tables
from initsim.gpu.reduce import hist_add, reducers, unit_stats
from initsim.gpu.streams import normal_pair
from initsim.rng import P_BACKWARD, P_BIAS, P_FORWARD, P_INPUT, P_OUTPUT_DIRECTION

__all__ = ["dphi", "exact_kernel", "phi", "shared_bytes"]

#: Device versions of the activation registry's compiled scalars (same source).
phi = cuda.jit(device=True)(phi_scalar.py_func)
dphi = cuda.jit(device=True)(dphi_scalar.py_func)

_ZERO = np.uint64(0)


@cuda.jit(device=True)
def _unit_pair(k0, k1, tt, pp, c, has_bias, bias_std, ki, wi, fi):
    """Units ``2 pp`` and ``2 pp + 1`` of layer ``tt``: ``(a0, a1, h0, h1)``.

    ``a = c z`` with ``z`` the layer's normals (one Philox block for both
    units) and ``h = a + bias_std * b``, the bias normals drawn only when
    there is a bias. The forward pass and both backward passes regenerate
    the same values through here.
    """
    z0, z1 = normal_pair(k0, k1, P_FORWARD, tt, pp, ki, wi, fi)
    a0 = c * z0
    a1 = c * z1
    h0 = a0
    h1 = a1
    if has_bias:
        b0, b1 = normal_pair(k0, k1, P_BIAS, tt, pp, ki, wi, fi)
        h0 = a0 + bias_std * b0
        h1 = a1 + bias_std * b1
    return a0, a1, h0, h1


def shared_bytes(nmax: int, depth: int, backward: bool) -> int:
    """Dynamic shared memory of one block of :func:`exact_kernel` (bytes).

    Parameters
    ----------
    nmax : int
        Largest layer width (input included).
    depth : int
        Hidden layers.
    backward : bool
        Whether the backward pass runs (three more per-unit buffers).

    Returns
    -------
    int
        Bytes.
    """
    return 8 * (nmax * (4 if backward else 1) + depth + 1)


@functools.cache
def exact_kernel(
    block: int,
    code: int,
    backward: bool,
    shuffle: bool = False,
    max_registers: int | None = None,
    spill: bool = False,
) -> Any:
    """Compile (once per block size) the single-input exact kernel.

    Parameters
    ----------
    block : int
        Threads per block, a power of two (the reduction tree needs it).
    code : int
        Activation code, compiled in as a constant (the kernel then holds
        only that activation's code: fewer registers).
    backward : bool
        Compile the backward pass in (a forward-only kernel needs fewer registers).
    shuffle : bool
        Warp-shuffle reductions (real GPUs, ``block >= 32``) instead of the
        shared-memory tree (which the CUDA simulator also runs).
    max_registers : int, optional
        Register cap per thread (more resident blocks, maybe spills).
    spill : bool
        Keep the per-unit buffers in a global array, the kernel's last
        argument ``(grid, floats)``, instead of dynamic shared memory: for
        layers too wide for a block's shared memory (slower). The kernel
        takes that argument either way (any shape when ``spill`` is false).

    Returns
    -------
    numba.cuda dispatcher
        ``kernel[grid, block, stream, shared_bytes](...)``, arguments as in
        :func:`initsim.engine.exact.exact_single_input` without ``code`` and ``backward``, plus
        the ziggurat tables, and with histograms summed over nets, shape
        ``(depth, nbins + 2)``; then the three trailing arguments every GPU
        kernel takes (:class:`initsim.gpu.driver.GpuKernel`): scratch and
        weights, unused here, and the spill buffer.
    """
    nred = block
    act = code
    bwd = backward
    sum1, sum2, _, finish_layer = reducers(shuffle)
    opts = {} if max_registers is None else {"max_registers": max_registers}
    use_global = spill

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
        scratch,
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
        ybuf = buf[0:nmax]
        nbuf = 4 if bwd else 1
        x2s = buf[nbuf * nmax : nbuf * nmax + depth + 1]
        hbuf = buf[nmax : 2 * nmax]
        abuf = buf[2 * nmax : 3 * nmax]
        gbuf = buf[3 * nmax : 4 * nmax]
        hist = hedges[2] > 0.0  # (lo, hi, nbins + 2), or nbins + 2 = 0 for none
        has_bias = bias_std > 0.0
        for net in range(cuda.blockIdx.x, nets, cuda.gridDim.x):
            k0 = keys[net, 0]
            k1 = keys[net, 1]
            # ---- input: only ||x_0||^2 enters the single-input forward pass
            n0 = widths[0]
            p = 0.0
            if input_mode == INPUT_GIVEN:
                for i in range(tid, n0, bd):
                    p += given[i] * given[i]
                x2 = sum1(red, p)
            else:
                for pp in range(tid, (n0 + 1) >> 1, bd):
                    z0, z1 = normal_pair(k0, k1, P_INPUT, _ZERO, pp, ki, wi, fi)
                    ybuf[2 * pp] = z0
                    p += z0 * z0
                    if 2 * pp + 1 < n0:
                        ybuf[2 * pp + 1] = z1
                        p += z1 * z1
                x2 = sum1(red, p)
                if input_mode == INPUT_SPHERE:
                    scale = math.sqrt(n0 / x2) if x2 > 0.0 else 0.0
                    p = 0.0
                    for i in range(tid, n0, bd):
                        v = ybuf[i] * scale
                        p += v * v
                    x2 = sum1(red, p)
            if tid == 0:
                first[net] = 0
                x2s[0] = x2
            # ---- forward
            for t in range(depth):
                nout = widths[t + 1]
                tt = np.uint64(t)
                c = wstd[t] * math.sqrt(x2)
                p_h2 = 0.0
                p_y = 0.0
                p_y2 = 0.0
                p_dead = 0.0
                p_sat = 0.0
                for pp in range(tid, (nout + 1) >> 1, bd):
                    _, _, h0, h1 = _unit_pair(k0, k1, tt, pp, c, has_bias, bias_std, ki, wi, fi)
                    for half in range(2):
                        i = 2 * pp + half
                        if i < nout:
                            h = h1 if half == 1 else h0
                            y = phi(act, param, h)
                            ybuf[i] = y
                            a1, a2, a3, live, sat = unit_stats(
                                h, y, dphi(act, param, h), sat_threshold
                            )
                            p_h2 += a1
                            p_y += a2
                            p_y2 += a3
                            p_dead += 1.0 - live
                            p_sat += sat
                            if hist:
                                hist_add(hist_h, t, hedges, h)
                                hist_add(hist_a, t, aedges, y)
                x2 = finish_layer(
                    red, ybuf, nout, 1, p_h2, p_y, p_y2, p_dead, p_sat, stats, net, t, first
                )
                if tid == 0:
                    x2s[t + 1] = x2
            if not bwd:
                continue
            cuda.syncthreads()
            # ---- backward, top layer: d = u * phi'(h), u the output direction
            tl = depth - 1
            nl = widths[depth]
            c = wstd[tl] * math.sqrt(x2s[tl])
            ttl = np.uint64(tl)
            p_dd = 0.0
            p_ad = 0.0
            for pp in range(tid, (nl + 1) >> 1, bd):
                a0, a1, h0, h1 = _unit_pair(k0, k1, ttl, pp, c, has_bias, bias_std, ki, wi, fi)
                u0, u1 = normal_pair(k0, k1, P_OUTPUT_DIRECTION, _ZERO, pp, ki, wi, fi)
                for half in range(2):
                    i = 2 * pp + half
                    if i < nl:
                        a = a1 if half == 1 else a0
                        h = h1 if half == 1 else h0
                        di = (u1 if half == 1 else u0) * dphi(act, param, h)
                        p_dd += di * di
                        p_ad += a * di
            dd, ad = sum2(red, p_dd, p_ad)
            if tid == 0:
                stats[net, tl, GRAD_SQ] = dd / nl
            # ---- backward, layers t = depth-1 .. 1: W_t^T d, gated by phi'(h_{t-1})
            for t in range(depth - 1, 0, -1):
                nin = widths[t]
                x2 = x2s[t]
                sz = wstd[t] * math.sqrt(dd)
                c = wstd[t - 1] * math.sqrt(x2s[t - 1])
                tp = np.uint64(t - 1)
                tb = np.uint64(t)
                p_xz = 0.0
                for pp in range(tid, (nin + 1) >> 1, bd):
                    a0, a1, h0, h1 = _unit_pair(k0, k1, tp, pp, c, has_bias, bias_std, ki, wi, fi)
                    g0, g1 = normal_pair(k0, k1, P_BACKWARD, tb, pp, ki, wi, fi)
                    for half in range(2):
                        i = 2 * pp + half
                        if i < nin:
                            a = a1 if half == 1 else a0
                            h = h1 if half == 1 else h0
                            x = phi(act, param, h)
                            g = g1 if half == 1 else g0
                            ybuf[i] = x
                            hbuf[i] = h
                            abuf[i] = a
                            gbuf[i] = g
                            p_xz += x * g
                xz = sum1(red, p_xz)
                proj = 0.0
                coef = 0.0
                if x2 > 0.0:
                    proj = xz / x2
                    coef = ad / x2
                p_dd = 0.0
                p_ad = 0.0
                for i in range(tid, nin, bd):
                    x = ybuf[i]
                    gi = x * coef + sz * (gbuf[i] - x * proj)
                    di = gi * dphi(act, param, hbuf[i])
                    p_dd += di * di
                    p_ad += abuf[i] * di
                dd, ad = sum2(red, p_dd, p_ad)
                if tid == 0:
                    stats[net, t - 1, GRAD_SQ] = dd / nin

    return kernel
