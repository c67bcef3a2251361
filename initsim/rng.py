"""Counter-based random streams usable inside Numba kernels (and, later, CUDA).

Why counter-based
-----------------
Numba's ``np.random`` inside a ``prange`` body gives each *thread* its own
stream, so results change with the thread count. initsim instead addresses
every random number by *what it is for*: a draw is a pure function of

``(net key, purpose, layer, index)``

computed with the Philox4x32-10 block cipher (Salmon et al., 2011, the
generator behind cuRAND, JAX and TensorFlow). Nothing is shared between nets
or threads, so the same seed gives bit-identical results for 1, 2 or N
threads, for any split of the nets into chunks, on a Dask cluster, and (the
integer arithmetic being exact) on a GPU.

Layout
------
- ``root_key(seed)``: 64 bits from :class:`numpy.random.SeedSequence`.
- ``net_keys(root, start, stop)``: net ``k``'s key is the Philox image of the
  counter ``(k_lo, k_hi, NET_DOMAIN, 0)`` under the root key; it depends on
  ``k`` alone, never on how many nets are run or how they are chunked.
- Within a net, a *substream* is named by two 32-bit words ``(purpose,
  layer)``; number ``i`` of a substream comes from Philox block ``i // 2``.
  Each block yields two 64-bit words, each feeding one draw.

Normals use a 256-level ziggurat (Marsaglia and Tsang, 2000) in NumPy's
64-bit arrangement; the rare draws that leave the fast path take extra words
from a private sequence of blocks of the same substream (counter word 1 set
to ``2 * (block + 1) + half``), so draw ``i`` still depends only on its
address.
"""

from __future__ import annotations

import math

import numpy as np

from initsim._jit import jit
from initsim.seeding import SeedLike, as_seed_sequence

__all__ = [
    "NET_DOMAIN",
    "P_BACKWARD",
    "P_BIAS",
    "P_FORWARD",
    "P_INPUT",
    "P_OUTPUT_DIRECTION",
    "P_SPARSE",
    "P_TRUNCATED",
    "P_TRUNCATED_NORMALS",
    "P_WEIGHTS",
    "Purpose",
    "fill_normals",
    "fill_uniforms",
    "net_keys",
    "philox4x32",
    "root_key",
]

_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_MASK32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_S11 = np.uint64(11)
_ONE = np.uint64(1)
_TWO = np.uint64(2)
_ZERO = np.uint64(0)

#: Counter word 2 used to derive per-net keys (no substream uses it).
NET_DOMAIN = 0xFFFFFFFF


class Purpose:
    """Counter word 2 of each substream: what the draws are for (every purpose, declared once).

    1..7 are the engine's; 40..49 the weight laws' own substreams
    (:mod:`initsim.engine.laws`); 99 is for tests.
    """

    INPUT = 1
    FORWARD = 2
    BACKWARD = 3
    WEIGHTS = 4
    BIAS = 5
    OUTPUT_DIRECTION = 6
    PERMUTATION = 7
    #: the truncated-Gaussian rejection sampler's uniforms
    TRUNCATED = 40
    #: the sparse law's zero-position uniforms
    SPARSE = 41
    #: the normals proposed by the truncated-Gaussian sampler
    TRUNCATED_NORMALS = 42
    TEST = 99


# The purposes as uint64 module globals, the form CPU and CUDA kernels take them in
# (Numba freezes module globals at compile time; mixing int64 and uint64 words would
# turn the counter arithmetic into float64).
P_INPUT = np.uint64(Purpose.INPUT)
P_FORWARD = np.uint64(Purpose.FORWARD)
P_BACKWARD = np.uint64(Purpose.BACKWARD)
P_WEIGHTS = np.uint64(Purpose.WEIGHTS)
P_BIAS = np.uint64(Purpose.BIAS)
P_OUTPUT_DIRECTION = np.uint64(Purpose.OUTPUT_DIRECTION)
P_TRUNCATED = np.uint64(Purpose.TRUNCATED)
P_SPARSE = np.uint64(Purpose.SPARSE)
P_TRUNCATED_NORMALS = np.uint64(Purpose.TRUNCATED_NORMALS)


@jit(inline="always")
def philox4x32(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 block function.

    Parameters
    ----------
    c0, c1, c2, c3 : uint64
        The 128-bit counter as four 32-bit words (held in uint64).
    k0, k1 : uint64
        The 64-bit key as two 32-bit words.

    Returns
    -------
    tuple of uint64
        The four 32-bit output words.
    """
    for _ in range(10):
        p0 = _M0 * c0
        p1 = _M1 * c2
        hi0 = p0 >> _S32
        lo0 = p0 & _MASK32
        hi1 = p1 >> _S32
        lo1 = p1 & _MASK32
        c0 = (hi1 ^ c1 ^ k0) & _MASK32
        c1 = lo1
        c2 = (hi0 ^ c3 ^ k1) & _MASK32
        c3 = lo0
        k0 = (k0 + _W0) & _MASK32
        k1 = (k1 + _W1) & _MASK32
    return c0, c1, c2, c3


@jit
def _philox_array(ctr, key, out):
    """Apply Philox to rows of ``ctr`` (n x 4) with one ``key`` (2,), into ``out``."""
    k0 = np.uint64(key[0])
    k1 = np.uint64(key[1])
    for i in range(ctr.shape[0]):
        r0, r1, r2, r3 = philox4x32(
            np.uint64(ctr[i, 0]),
            np.uint64(ctr[i, 1]),
            np.uint64(ctr[i, 2]),
            np.uint64(ctr[i, 3]),
            k0,
            k1,
        )
        out[i, 0] = r0
        out[i, 1] = r1
        out[i, 2] = r2
        out[i, 3] = r3


def philox_blocks(counters: np.ndarray, key: tuple[int, int]) -> np.ndarray:
    """Evaluate Philox4x32-10 on many counters (a convenience for tests and keys).

    Parameters
    ----------
    counters : array_like of shape (n, 4)
        Counters, 32-bit words.
    key : tuple of two ints
        The key words.

    Returns
    -------
    numpy.ndarray of uint32, shape (n, 4)
        The output blocks.
    """
    ctr = np.ascontiguousarray(np.atleast_2d(counters), dtype=np.uint64)
    if ctr.ndim != 2 or ctr.shape[1] != 4:
        raise ValueError(f"counters must have shape (n, 4); got {ctr.shape}")
    if np.any(ctr > 0xFFFFFFFF):
        raise ValueError("counters must be 32-bit words")
    out = np.empty_like(ctr)
    _philox_array(ctr, np.asarray(key, dtype=np.uint64), out)
    return out.astype(np.uint32)


def root_key(seed: SeedLike) -> np.ndarray:
    """Derive the 64-bit root key (two uint32 words) of a run from ``seed``.

    Parameters
    ----------
    seed : int, SeedSequence, Generator or None
        See :func:`initsim.seeding.as_seed_sequence`.

    Returns
    -------
    numpy.ndarray of uint64, shape (2,)
        The key words (each < 2**32).
    """
    words = as_seed_sequence(seed).generate_state(2, dtype=np.uint32)
    return words.astype(np.uint64)


@jit
def _net_keys(root, start, stop, out):
    dom = np.uint64(NET_DOMAIN)
    for k in range(start, stop):
        kk = np.uint64(k)
        r0, r1, _, _ = philox4x32(kk & _MASK32, kk >> _S32, dom, _ZERO, root[0], root[1])
        out[k - start, 0] = r0
        out[k - start, 1] = r1


def net_keys(root: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Return the Philox keys of nets ``start .. stop-1``.

    Parameters
    ----------
    root : numpy.ndarray of uint64, shape (2,)
        The run's root key, from :func:`root_key`.
    start, stop : int
        Net index range; key ``k`` depends on ``root`` and ``k`` only.

    Returns
    -------
    numpy.ndarray of uint64, shape (stop - start, 2)
        One key (two 32-bit words) per net.
    """
    if not 0 <= start <= stop:
        raise ValueError(f"need 0 <= start <= stop; got start={start}, stop={stop}")
    out = np.empty((stop - start, 2), dtype=np.uint64)
    _net_keys(np.asarray(root, dtype=np.uint64), start, stop, out)
    return out


# --------------------------------------------------------------------------
# Ziggurat tables (256 levels, 52-bit mantissa test), built once at import.
# --------------------------------------------------------------------------
_ZIG_R = 3.6541528853610088
_ZIG_INV_R = 1.0 / _ZIG_R
_ZIG_V = 0.00492867323399


def _ziggurat_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = float(2**52)
    ki = np.zeros(256, dtype=np.uint64)
    wi = np.zeros(256)
    fi = np.zeros(256)
    dn = _ZIG_R
    tn = dn
    q = _ZIG_V / math.exp(-0.5 * dn * dn)
    ki[0] = np.uint64(int(dn / q * m))
    ki[1] = np.uint64(0)
    wi[0] = q / m
    wi[255] = dn / m
    fi[0] = 1.0
    fi[255] = math.exp(-0.5 * dn * dn)
    for i in range(254, 0, -1):
        dn = math.sqrt(-2.0 * math.log(_ZIG_V / dn + math.exp(-0.5 * dn * dn)))
        ki[i + 1] = np.uint64(int(dn / tn * m))
        tn = dn
        fi[i] = math.exp(-0.5 * dn * dn)
        wi[i] = dn / m
    return ki, wi, fi


_KI, _WI, _FI = _ziggurat_tables()
_MASK52 = np.uint64(0x000FFFFFFFFFFFFF)
_MASK8 = np.uint64(0xFF)
_S8 = np.uint64(8)
_TWO_M53 = 1.0 / 9007199254740992.0


@jit(inline="always")
def _u64_to_unit(u):
    """Map a 64-bit word to a double in [0, 1) (top 53 bits)."""
    return float(u >> _S11) * _TWO_M53


@jit(inline="always")
def _slow_word(k0, k1, c2, c3, j, half, t):
    """Word ``t`` of the private slow-path sequence of draw ``2 j + half``."""
    b = np.uint64(t) >> _ONE
    c1 = ((b + _ONE) << _ONE) | half
    r0, r1, r2, r3 = philox4x32(j & _MASK32, c1 & _MASK32, c2, c3, k0, k1)
    if (np.uint64(t) & _ONE) == _ZERO:
        return (r0 << _S32) | r1
    return (r2 << _S32) | r3


@jit
def _zig_slow(u, k0, k1, c2, c3, j, half):
    """Ziggurat rejection branch: continue NumPy's algorithm from word ``u``."""
    t = 0
    while True:
        idx = np.int64(u & _MASK8)
        r = u >> _S8
        neg = (r & _ONE) != _ZERO
        rabs = (r >> _ONE) & _MASK52
        x = float(rabs) * _WI[idx]
        if neg:
            x = -x
        if rabs < _KI[idx]:
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
            if (_FI[idx - 1] - _FI[idx]) * d + _FI[idx] < math.exp(-0.5 * x * x):
                return x
        u = _slow_word(k0, k1, c2, c3, j, half, t)
        t += 1


@jit
def _fill_words(k0, k1, c2, c3, start, words):
    """Write the 64-bit words of draws ``start ..`` of a substream into ``words``.

    Word ``i`` is half ``i & 1`` of Philox block ``i >> 1`` at counter
    ``(i >> 1, 0, c2, c3)``. The loop over whole blocks has no branches, so
    LLVM vectorises it (AVX2 does four 32x32->64 multiplies at once).
    """
    n = words.shape[0]
    i = 0
    if n > 0 and (start & 1) == 1:
        j = np.uint64(start >> 1)
        _, _, r2, r3 = philox4x32(j & _MASK32, _ZERO, c2, c3, k0, k1)
        words[0] = (r2 << _S32) | r3
        i = 1
    j0 = np.uint64((start + i) >> 1)
    m = (n - i) >> 1
    for b in range(m):
        r0, r1, r2, r3 = philox4x32((j0 + np.uint64(b)) & _MASK32, _ZERO, c2, c3, k0, k1)
        words[i + 2 * b] = (r0 << _S32) | r1
        words[i + 2 * b + 1] = (r2 << _S32) | r3
    if i + 2 * m < n:
        r0, r1, _, _ = philox4x32((j0 + np.uint64(m)) & _MASK32, _ZERO, c2, c3, k0, k1)
        words[n - 1] = (r0 << _S32) | r1


_KI64 = _KI.astype(np.int64)
_CHUNK = 1024  # words converted per pass (8 KiB: stays in L1)


@jit
def _zig_fast(words, out, m):
    """Branch-free ziggurat fast path on ``words[:m]``; rejected draws become NaN.

    Written without branches so LLVM vectorises it (~99% of draws finish
    here); :func:`fill_normals` then redoes the NaN slots on the slow path.
    """
    for i in range(m):
        u = words[i]
        idx = np.int64(u & _MASK8)
        r = u >> _S8
        rabs = np.int64((r >> _ONE) & _MASK52)
        x = float(rabs) * _WI[idx]
        x = -x if (r & _ONE) != _ZERO else x
        out[i] = x if rabs < _KI64[idx] else np.nan


@jit
def fill_normals(k0, k1, c2, c3, start, out):
    """Fill ``out`` with draws ``start .. start+len(out)-1`` of a normal substream.

    Parameters
    ----------
    k0, k1 : uint64
        The net's key words.
    c2, c3 : uint64
        The substream's name, ``(purpose, layer)``.
    start : int
        Index of the first draw; draw ``i`` depends only on the key, the
        substream and ``i``, so any split of a range gives the same numbers.
    out : numpy.ndarray of float64
        Filled in place with standard normal draws.
    """
    n = out.shape[0]
    words = np.empty(min(n, _CHUNK), dtype=np.uint64)
    for lo in range(0, n, _CHUNK):
        m = min(_CHUNK, n - lo)
        _fill_words(k0, k1, c2, c3, start + lo, words[:m])
        seg = out[lo : lo + m]
        _zig_fast(words, seg, m)
        for i in range(m):
            if seg[i] != seg[i]:
                g = np.uint64(start + lo + i)
                seg[i] = _zig_slow(words[i], k0, k1, c2, c3, g >> _ONE, g & _ONE)


@jit
def fill_uniforms(k0, k1, c2, c3, start, out):
    """Fill ``out`` with draws ``start ..`` of a uniform [0, 1) substream (53-bit).

    Parameters
    ----------
    k0, k1 : uint64
        The net's key words.
    c2, c3 : uint64
        The substream's name, ``(purpose, layer)``; use a substream for
        uniforms that no normal draw uses.
    start : int
        Index of the first draw.
    out : numpy.ndarray of float64, C-contiguous
        Filled in place.
    """
    words = out.view(np.uint64)
    _fill_words(k0, k1, c2, c3, start, words)
    for i in range(out.shape[0]):
        out[i] = _u64_to_unit(words[i])
