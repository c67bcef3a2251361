"""Device random streams: the draws of :mod:`initsim.rng`, bit for bit, on the GPU.

Every draw is a pure function of ``(net key, purpose, layer, index)``
computed with Philox4x32-10 in 64-bit integer arithmetic (exact on any
device), so a kernel can generate the number it needs where it needs it, in
registers. The normal transform is the CPU's 256-level ziggurat with the same
tables (:data:`initsim.rng._KI`, ``_WI``, ``_FI``), the same fast path and the
same exact slow path (extra words from the private blocks of the substream).
The fast path does one multiplication, so its result is identical to the
CPU's; the slow path evaluates ``exp`` and ``log1p`` with CUDA's libdevice,
which can differ from the CPU's libm in the last ulp (about 1% of draws take
the slow path, and most of those finish without calling either function).

Kernels pass the tables as arrays (loaded into shared memory once per block);
all device functions take them as arguments.
"""

from __future__ import annotations

import math

import numpy as np
from numba import config, cuda, float64, uint64

from initsim import rng as _rng

__all__ = [
    "normal_at",
    "normal_from_word",
    "normal_pair",
    "normals_sum_kernel",
    "philox",
    "tables",
    "uniform_at",
    "word_pair",
]

_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_MASK32 = np.uint64(0xFFFFFFFF)
_MASK52 = np.uint64(0x000FFFFFFFFFFFFF)
_MASK8 = np.uint64(0xFF)
_S32 = np.uint64(32)
_S11 = np.uint64(11)
_S8 = np.uint64(8)
_ONE = np.uint64(1)
_ZERO = np.uint64(0)
_TWO_M53 = 1.0 / 9007199254740992.0
_ZIG_R = _rng._ZIG_R
_ZIG_INV_R = _rng._ZIG_INV_R


def tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the ziggurat tables of :mod:`initsim.rng` (host arrays to copy to a device).

    Returns
    -------
    ki : numpy.ndarray of uint64 (256,)
    wi, fi : numpy.ndarray of float64 (256,)
    """
    return (
        np.ascontiguousarray(_rng._KI, dtype=np.uint64),
        np.ascontiguousarray(_rng._WI, dtype=np.float64),
        np.ascontiguousarray(_rng._FI, dtype=np.float64),
    )


_M0_32 = np.uint32(0xD2511F53)
_M1_32 = np.uint32(0xCD9E8D57)

_EXP52 = np.uint64(0x4330000000000000)  # the bits of 2.0**52
_TWO52 = 4503599627370496.0

# Two helpers have a simulator form (numpy scalars) and a GPU form (libdevice
# intrinsics); both give exactly the same values.
if config.ENABLE_CUDASIM:

    @cuda.jit(device=True)
    def _mulhilo(a, m):
        """High and low 32-bit words of ``a * m`` (numpy scalars: exact in uint64)."""
        p = np.uint64(a) * np.uint64(m)
        return np.uint32(p >> _S32), np.uint32(p & _MASK32)

    @cuda.jit(device=True)
    def _u52_to_float(r):
        """``float(r)`` for ``r < 2**52``."""
        return float(r)

else:

    @cuda.jit(device=True)
    def _mulhilo(a, m):
        """High and low 32-bit words of ``a * m`` (``umulhi`` and a 32-bit multiply)."""
        return np.uint32(cuda.libdevice.umulhi(a, m)), np.uint32(a * m)

    @cuda.jit(device=True)
    def _u52_to_float(r):
        """``float(r)`` for ``r < 2**52``, exactly: the double ``2**52 + r`` minus ``2**52``.

        A bit pattern and a subtraction instead of a 64-bit integer
        conversion, which runs at a quarter of the FP64 rate.
        """
        return cuda.libdevice.longlong_as_double(np.int64(r | _EXP52)) - _TWO52


@cuda.jit(device=True)
def philox(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 (the CPU's :func:`initsim.rng.philox4x32`); 32-bit words in, uint64 out.

    The state is held in uint32 and each round's two products are split
    into high and low words by ``_mulhilo`` (libdevice ``umulhi`` and a
    32-bit multiply on a GPU; exact uint64 products of numpy scalars in the
    simulator), so the compiled code is 32-bit integer arithmetic, not
    emulated 64-bit multiplies.
    """
    a0 = np.uint32(c0 & _MASK32)
    a1 = np.uint32(c1 & _MASK32)
    a2 = np.uint32(c2 & _MASK32)
    a3 = np.uint32(c3 & _MASK32)
    b0 = np.uint32(k0 & _MASK32)
    b1 = np.uint32(k1 & _MASK32)
    for _ in range(10):
        hi0, lo0 = _mulhilo(a0, _M0_32)
        hi1, lo1 = _mulhilo(a2, _M1_32)
        a0 = np.uint32(hi1 ^ a1 ^ b0)
        a1 = lo1
        a2 = np.uint32(hi0 ^ a3 ^ b1)
        a3 = lo0
        b0 = np.uint32((np.uint64(b0) + _W0) & _MASK32)
        b1 = np.uint32((np.uint64(b1) + _W1) & _MASK32)
    return np.uint64(a0), np.uint64(a1), np.uint64(a2), np.uint64(a3)


@cuda.jit(device=True)
def word_pair(k0, k1, c2, c3, j):
    """Return the two 64-bit words of Philox block ``j`` of ``(c2, c3)`` (draws 2j, 2j+1)."""
    r0, r1, r2, r3 = philox(j & _MASK32, _ZERO, c2, c3, k0, k1)
    return (r0 << _S32) | r1, (r2 << _S32) | r3


@cuda.jit(device=True)
def _slow_word(k0, k1, c2, c3, j, half, t):
    """Word ``t`` of the private slow-path sequence of draw ``2 j + half``."""
    tt = np.uint64(t)
    b = tt >> _ONE
    c1 = ((b + _ONE) << _ONE) | half
    r0, r1, r2, r3 = philox(j & _MASK32, c1 & _MASK32, c2, c3, k0, k1)
    if (tt & _ONE) == _ZERO:
        return (r0 << _S32) | r1
    return (r2 << _S32) | r3


@cuda.jit(device=True)
def _u64_to_unit(u):
    return float(u >> _S11) * _TWO_M53


@cuda.jit(device=True)
def _zig_slow(u, k0, k1, c2, c3, j, half, ki, wi, fi):
    """Ziggurat rejection branch from word ``u`` (the CPU's ``rng._zig_slow``)."""
    t = 0
    while True:
        idx = np.int64(u & _MASK8)
        r = u >> _S8
        neg = (r & _ONE) != _ZERO
        rabs = (r >> _ONE) & _MASK52
        x = float(rabs) * wi[idx]
        if neg:
            x = -x
        if rabs < ki[idx]:
            return x
        if idx == 0:
            while True:
                d1 = _u64_to_unit(_slow_word(k0, k1, c2, c3, j, half, t))
                d2 = _u64_to_unit(_slow_word(k0, k1, c2, c3, j, half, t + 1))
                t += 2
                xx = -_ZIG_INV_R * math.log1p(-d1)
                yy = -math.log1p(-d2)
                if yy + yy > xx * xx:
                    return -(_ZIG_R + xx) if neg else _ZIG_R + xx
        else:
            d = _u64_to_unit(_slow_word(k0, k1, c2, c3, j, half, t))
            t += 1
            if (fi[idx - 1] - fi[idx]) * d + fi[idx] < math.exp(-0.5 * x * x):
                return x
        u = _slow_word(k0, k1, c2, c3, j, half, t)
        t += 1


@cuda.jit(device=True)
def normal_from_word(u, k0, k1, c2, c3, j, half, ki, wi, fi):
    """Return normal draw ``2 j + half`` of substream ``(c2, c3)`` from its word ``u``."""
    idx = np.int64(u & _MASK8)
    r = u >> _S8
    rabs = (r >> _ONE) & _MASK52
    x = _u52_to_float(rabs) * wi[idx]
    if (r & _ONE) != _ZERO:
        x = -x
    if rabs < ki[idx]:
        return x
    return _zig_slow(u, k0, k1, c2, c3, j, half, ki, wi, fi)


@cuda.jit(device=True)
def normal_pair(k0, k1, c2, c3, j, ki, wi, fi):
    """Return normal draws ``2 j`` and ``2 j + 1`` of a substream (one Philox block)."""
    jj = np.uint64(j)
    u0, u1 = word_pair(k0, k1, c2, c3, jj)
    z0 = normal_from_word(u0, k0, k1, c2, c3, jj, _ZERO, ki, wi, fi)
    z1 = normal_from_word(u1, k0, k1, c2, c3, jj, _ONE, ki, wi, fi)
    return z0, z1


@cuda.jit(device=True)
def normal_at(k0, k1, c2, c3, i, ki, wi, fi):
    """Return normal draw ``i`` of a substream (what ``rng.fill_normals`` puts at ``i``)."""
    ii = np.uint64(i)
    jj = ii >> _ONE
    half = ii & _ONE
    u0, u1 = word_pair(k0, k1, c2, c3, jj)
    u = u1 if half == _ONE else u0
    return normal_from_word(u, k0, k1, c2, c3, jj, half, ki, wi, fi)


@cuda.jit(device=True)
def uniform_at(k0, k1, c2, c3, i):
    """Return uniform [0, 1) draw ``i`` of a substream (as ``rng.fill_uniforms``)."""
    ii = np.uint64(i)
    u0, u1 = word_pair(k0, k1, c2, c3, ii >> _ONE)
    u = u1 if (ii & _ONE) == _ONE else u0
    return _u64_to_unit(u)


@cuda.jit
def normals_at_kernel(k0, k1, c2, c3, index, ki, wi, fi, out):
    """``out[i] = normal draw index[i]`` of one substream (for tests)."""
    i = cuda.grid(1)
    if i < index.shape[0]:
        out[i] = normal_at(k0, k1, c2, c3, index[i], ki, wi, fi)


@cuda.jit
def uniforms_at_kernel(k0, k1, c2, c3, index, out):
    """``out[i] = uniform draw index[i]`` of one substream (for tests)."""
    i = cuda.grid(1)
    if i < index.shape[0]:
        out[i] = uniform_at(k0, k1, c2, c3, index[i])


@cuda.jit
def philox_kernel(ctr, k0, k1, out):
    """``out[i] = Philox(ctr[i])`` under key ``(k0, k1)`` (known-answer tests)."""
    i = cuda.grid(1)
    if i < ctr.shape[0]:
        r0, r1, r2, r3 = philox(ctr[i, 0], ctr[i, 1], ctr[i, 2], ctr[i, 3], k0, k1)
        out[i, 0] = r0
        out[i, 1] = r1
        out[i, 2] = r2
        out[i, 3] = r3


@cuda.jit
def normals_sum_kernel(keys, c2, layers, pairs, ki_g, wi_g, fi, out):
    """Benchmark roofline: per net (block), draw ``layers x 2 pairs`` normals and sum them.

    Net ``b`` draws pairs ``0 .. pairs-1`` of substreams ``(c2, t)`` for
    ``t < layers``, exactly the draws of the exact sampler's forward pass,
    with nothing else; ``out[b * blockDim + thread]`` gets each thread's sum.
    """
    ki = cuda.shared.array(256, uint64)
    wi = cuda.shared.array(256, float64)
    tid = cuda.threadIdx.x
    for k in range(tid, 256, cuda.blockDim.x):
        ki[k] = ki_g[k]
        wi[k] = wi_g[k]
    cuda.syncthreads()
    net = cuda.blockIdx.x
    k0 = keys[net, 0]
    k1 = keys[net, 1]
    acc = 0.0
    for t in range(layers):
        for pp in range(tid, pairs, cuda.blockDim.x):
            z0, z1 = normal_pair(k0, k1, c2, np.uint64(t), pp, ki, wi, fi)
            acc += z0 + z1
    out[net * cuda.blockDim.x + tid] = acc
