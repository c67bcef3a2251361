"""Entry laws of weight matrices: encode a law, fill one matrix inside a kernel.

The dense sampler materialises each net's weight matrix ``W`` (``n_out x
n_in``, rows are output units) for every layer inside a ``prange`` loop over
nets. :func:`fill_weights` is that step: a compiled, allocation-light function
whose result is a pure function of ``(net key, layer, law, parameters,
shape)``, never of threads or chunking.

Encoding
--------
:func:`encode` turns any object with the attributes of
``initsim.initializers.LawSpec`` (``law``, ``loc``, ``scale``, ``low``,
``high``, ``value``, ``sparsity``, ``gain``) into an integer law code and a
float64 parameter vector of fixed length :data:`N_PARAMS`, laid out as
``[loc, scale, low, high, value, sparsity, gain]`` (indices ``P_*``); fields
a law does not use are 0. Codes are the module constants :data:`GAUSSIAN`,
:data:`UNIFORM`, :data:`TRUNCATED_GAUSSIAN`, :data:`ORTHOGONAL`,
:data:`CONSTANT`, :data:`SPARSE` and :data:`IDENTITY`.

Random streams
--------------
Only substreams with counter word 3 equal to the layer are used, and counter
word 2 (the purpose) is one of:

- ``Purpose.WEIGHTS`` (4): entry ``(i, j)`` of a Gaussian matrix is
  ``loc + scale * z`` with ``z`` normal number ``i * n_in + j`` of
  :func:`~initsim.rng.fill_normals` (row-major); the sparse law's nonzero
  entries and the orthogonal law's Gaussian matrix (before QR) are the same
  numbers. The uniform law uses uniform number ``i * n_in + j`` of
  :func:`~initsim.rng.fill_uniforms` on the same substream.
- ``Purpose.TRUNCATED`` (40) and ``Purpose.TRUNCATED_NORMALS`` (42):
  the uniforms and normals consumed, sequentially and in row-major entry
  order, by the truncated-Gaussian rejection sampler.
- ``Purpose.SPARSE`` (41): the uniforms of the sparse law's per-column
  partial Fisher-Yates shuffles (column ``j`` uses uniforms
  ``j * k .. j * k + k - 1``, ``k`` the number of zeros per column).

The engine itself uses purposes 1..7; 40..49 are reserved for this module
(all declared in :class:`initsim.rng.Purpose`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from initsim._jit import jit
from initsim.rng import (
    P_SPARSE,
    P_TRUNCATED,
    P_TRUNCATED_NORMALS,
    P_WEIGHTS,
    Purpose,
    fill_normals,
    fill_uniforms,
)

__all__ = [
    "CONSTANT",
    "GAUSSIAN",
    "IDENTITY",
    "LAW_CODES",
    "LAW_NAMES",
    "N_PARAMS",
    "ORTHOGONAL",
    "SPARSE",
    "TRUNCATED_GAUSSIAN",
    "UNIFORM",
    "encode",
    "fill_weights",
    "fill_weights_reference",
    "sample_weights",
    "sparse_zero_count",
]

# Law codes.
GAUSSIAN = 0
UNIFORM = 1
TRUNCATED_GAUSSIAN = 2
ORTHOGONAL = 3
CONSTANT = 4
SPARSE = 5
IDENTITY = 6

#: Law name -> code.
LAW_CODES: dict[str, int] = {
    "gaussian": GAUSSIAN,
    "uniform": UNIFORM,
    "truncated_gaussian": TRUNCATED_GAUSSIAN,
    "orthogonal": ORTHOGONAL,
    "constant": CONSTANT,
    "sparse": SPARSE,
    "identity": IDENTITY,
}
#: Code -> law name.
LAW_NAMES: dict[int, str] = {c: n for n, c in LAW_CODES.items()}

# The laws of convolution kernels (initsim.initializers.CONVOLUTION_LAWS), and
# the dense law that plays their part in an MLP.
_CONVOLUTION_LAWS: dict[str, str] = {
    "dirac": "PyTorch dirac_",
    "delta_orthogonal": "JAX delta_orthogonal",
    "stft": "Keras STFT",
}
_DENSE_ANALOGUE: dict[str, str] = {
    "dirac": "identity",
    "delta_orthogonal": "orthogonal",
    "stft": "identity",
}

# Layout of the parameter vector.
P_LOC = 0
P_SCALE = 1
P_LOW = 2
P_HIGH = 3
P_VALUE = 4
P_SPARSITY = 5
P_GAIN = 6
N_PARAMS = 7


_SQRT_2PI = math.sqrt(2.0 * math.pi)
_TN_BUFFER = 128  # draws fetched at a time by the truncated sampler


# --------------------------------------------------------------------------
# Encoding (Python side: all validation happens here)
# --------------------------------------------------------------------------
def _field(spec: Any, law: str, name: str, *, allow_inf: bool = False) -> float:
    """Read attribute ``name`` of ``spec`` as a float, with a message naming the law."""
    if not hasattr(spec, name):
        raise ValueError(f"law {law!r} needs the parameter {name!r}, which the spec lacks")
    raw = getattr(spec, name)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"law {law!r}: parameter {name!r} must be a number; got {raw!r}") from None
    if math.isnan(value) or (not allow_inf and math.isinf(value)):
        kind = "not NaN" if allow_inf else "finite"
        raise ValueError(f"law {law!r}: parameter {name!r} must be {kind}; got {value}")
    return value


def encode(spec: Any) -> tuple[int, np.ndarray]:
    """Encode a weight law for :func:`fill_weights`.

    Parameters
    ----------
    spec : object
        Anything with a ``law`` attribute (a string) and the parameters that
        law uses, named as in ``initsim.initializers.LawSpec``:
        ``loc``, ``scale`` (gaussian); ``low``, ``high`` (uniform);
        ``loc``, ``scale``, ``low``, ``high`` (truncated_gaussian: a
        ``N(loc, scale**2)`` parent restricted to the *absolute* interval
        ``[low, high]``, whose ends may be infinite); ``gain``
        (orthogonal, identity); ``value`` (constant); ``sparsity``, ``scale``
        (sparse: ``N(0, scale**2)`` entries, ``ceil(sparsity * n_out)`` of
        each column set to zero).

    Returns
    -------
    code : int
        The law code.
    params : numpy.ndarray of float64, shape (N_PARAMS,)
        ``[loc, scale, low, high, value, sparsity, gain]``; unused fields 0.

    Raises
    ------
    ValueError
        For a convolution law (dirac, delta_orthogonal, stft), an unknown law, or a missing or
        invalid parameter; the message names the law and the parameter.
    """
    if not hasattr(spec, "law"):
        raise ValueError(f"a law spec needs a 'law' attribute; got {type(spec).__name__}")
    law = spec.law
    if law in _CONVOLUTION_LAWS:
        raise ValueError(
            f"law {law!r} ({_CONVOLUTION_LAWS[law]}) is defined for convolution weights "
            "(3-D and more); the MLP engine has no convolution layers, so it cannot "
            f"sample it. Use {_DENSE_ANALOGUE[law]!r} for the fully-connected analogue."
        )
    if law not in LAW_CODES:
        raise ValueError(
            f"unknown weight law {law!r}; valid laws are {sorted(LAW_CODES)} "
            f"({', '.join(map(repr, _CONVOLUTION_LAWS))} are for convolution weights only)"
        )
    code = LAW_CODES[law]
    params = np.zeros(N_PARAMS)
    if code == GAUSSIAN:
        params[P_LOC] = _field(spec, law, "loc")
        params[P_SCALE] = _field(spec, law, "scale")
        if params[P_SCALE] < 0.0:
            raise ValueError(f"law 'gaussian': parameter 'scale' must be >= 0; got {spec.scale}")
    elif code == UNIFORM:
        low = _field(spec, law, "low")
        high = _field(spec, law, "high")
        if not low <= high:
            raise ValueError(f"law 'uniform': need 'low' <= 'high'; got low={low}, high={high}")
        params[P_LOW] = low
        params[P_HIGH] = high
    elif code == TRUNCATED_GAUSSIAN:
        loc = _field(spec, law, "loc")
        scale = _field(spec, law, "scale")
        low = _field(spec, law, "low", allow_inf=True)
        high = _field(spec, law, "high", allow_inf=True)
        if not scale > 0.0:
            raise ValueError(
                f"law 'truncated_gaussian': parameter 'scale' must be > 0; got {scale}"
            )
        if not low < high:
            raise ValueError(
                f"law 'truncated_gaussian': need 'low' < 'high'; got low={low}, high={high}"
            )
        for name, bound in (("low", low), ("high", high)):
            if math.isfinite(bound) and not math.isfinite((bound - loc) / scale):
                raise ValueError(
                    f"law 'truncated_gaussian': parameter {name!r}={bound} is too many "
                    f"standard deviations (scale={scale}) from loc={loc} to represent"
                )
        params[P_LOC] = loc
        params[P_SCALE] = scale
        params[P_LOW] = low
        params[P_HIGH] = high
    elif code == SPARSE:
        sparsity = _field(spec, law, "sparsity")
        scale = _field(spec, law, "scale")
        if not 0.0 <= sparsity <= 1.0:
            raise ValueError(
                f"law 'sparse': parameter 'sparsity' must be in [0, 1]; got {sparsity}"
            )
        if scale < 0.0:
            raise ValueError(f"law 'sparse': parameter 'scale' must be >= 0; got {scale}")
        params[P_SPARSITY] = sparsity
        params[P_SCALE] = scale
    elif code == CONSTANT:
        params[P_VALUE] = _field(spec, law, "value")
    else:  # ORTHOGONAL, IDENTITY
        params[P_GAIN] = _field(spec, law, "gain")
    return code, params


def sparse_zero_count(sparsity: float, rows: int) -> int:
    """Return the number of zeros per column of the sparse law (PyTorch ``sparse_``).

    Parameters
    ----------
    sparsity : float
        Fraction of each column to zero, in ``[0, 1]``.
    rows : int
        Rows of the matrix (``n_out``).

    Returns
    -------
    int
        ``math.ceil(sparsity * rows)``, the same double product and ceiling
        as PyTorch and as :func:`fill_weights` (capped at ``rows``).
    """
    return min(int(rows), math.ceil(float(sparsity) * int(rows)))


# --------------------------------------------------------------------------
# Compiled kernels (no validation inside)
# --------------------------------------------------------------------------
@jit(inline="always")
def _uniform_at(k0, k1, c3, buf, n):
    """Return uniform number ``n`` of substream ``(Purpose.TRUNCATED, c3)``.

    ``buf`` caches the block ``n - n % len(buf) ..`` and is refilled when ``n``
    enters a new block; ``n`` must only ever increase by one from 0.
    """
    r = n % buf.shape[0]
    if r == 0:
        fill_uniforms(k0, k1, P_TRUNCATED, c3, n, buf)
    return buf[r]


@jit(inline="always")
def _normal_at(k0, k1, c3, buf, n):
    """Return normal number ``n`` of substream ``(Purpose.TRUNCATED_NORMALS, c3)``."""
    r = n % buf.shape[0]
    if r == 0:
        fill_normals(k0, k1, P_TRUNCATED_NORMALS, c3, n, buf)
    return buf[r]


# Methods of the truncated-Gaussian sampler (Robert, 1995), on a standardised
# interval [a, b]: chosen once per matrix since they depend on (a, b) only.
_TN_NORMAL = 0  # a <= 0 <= b, b - a >= sqrt(2 pi): propose N(0, 1)
_TN_UNIFORM_CENTRE = 1  # a <= 0 <= b, b - a < sqrt(2 pi): propose U(a, b)
_TN_UNIFORM_TAIL = 2  # 0 < a, b - a < exp((lam - a)^2 / 2) / lam: propose U(a, b)
_TN_EXPONENTIAL = 3  # 0 < a, wider: propose a + Exp(lam), lam = (a + sqrt(a^2 + 4)) / 2


@jit
def _fill_truncated(loc, scale, low, high, k0, k1, c3, W):
    """Fill ``W`` with exact draws of ``N(loc, scale^2)`` restricted to ``[low, high]``.

    Each method is exact rejection sampling; the acceptance rate is at least
    about 0.5 for every interval. Entries are drawn in row-major order,
    consuming uniforms (and, for ``_TN_NORMAL``, normals) sequentially from
    their substreams, so the matrix depends only on the key, the layer, the
    parameters and the shape. An interval below the mean is sampled as the
    mirror image of one above it.
    """
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
        lam_a = 2.0 / (math.sqrt(a * a + 4.0) + a)  # lam - a, without cancellation
        lam = a + lam_a
        if b - a < math.exp(0.5 * lam_a * lam_a) / lam:
            method = _TN_UNIFORM_TAIL
        else:
            method = _TN_EXPONENTIAL
    width = b - a
    ubuf = np.empty(_TN_BUFFER)
    nbuf = np.empty(_TN_BUFFER)
    nu = 0  # uniforms used
    nn = 0  # normals used
    n_out, n_in = W.shape
    for i in range(n_out):
        for j in range(n_in):
            z = 0.0
            if method == _TN_NORMAL:
                while True:
                    z = _normal_at(k0, k1, c3, nbuf, nn)
                    nn += 1
                    if a <= z and z <= b:
                        break
            elif method == _TN_UNIFORM_CENTRE:
                while True:
                    z = a + width * _uniform_at(k0, k1, c3, ubuf, nu)
                    v = _uniform_at(k0, k1, c3, ubuf, nu + 1)
                    nu += 2
                    if v < math.exp(-0.5 * z * z):
                        break
            elif method == _TN_UNIFORM_TAIL:
                while True:
                    t = width * _uniform_at(k0, k1, c3, ubuf, nu)
                    v = _uniform_at(k0, k1, c3, ubuf, nu + 1)
                    nu += 2
                    # density ratio exp((a^2 - z^2) / 2), z = a + t, without overflow
                    if v < math.exp(-t * (a + 0.5 * t)):
                        z = a + t
                        break
            else:
                while True:
                    e = -math.log1p(-_uniform_at(k0, k1, c3, ubuf, nu)) / lam
                    v = _uniform_at(k0, k1, c3, ubuf, nu + 1)
                    nu += 2
                    d = e - lam_a
                    if e <= width and v < math.exp(-0.5 * d * d):
                        z = a + e
                        break
            x = loc + scale * (sign * z)
            # guard against the last-ulp rounding of loc + scale * z only
            W[i, j] = min(max(x, low), high)


@jit
def _fill_sparse(sparsity, scale, k0, k1, c3, W):
    n_out, n_in = W.shape
    flat = W.reshape(W.size)
    fill_normals(k0, k1, P_WEIGHTS, c3, 0, flat)
    for k in range(flat.shape[0]):
        flat[k] = scale * flat[k]
    nz = min(n_out, math.ceil(sparsity * n_out))  # an int in numba, as in Python
    if nz == 0:
        return
    idx = np.empty(n_out, dtype=np.int64)
    u = np.empty(nz)
    for j in range(n_in):
        fill_uniforms(k0, k1, P_SPARSE, c3, j * nz, u)
        for r in range(n_out):
            idx[r] = r
        for t in range(nz):
            m = n_out - t
            pick = t + min(int(u[t] * m), m - 1)
            tmp = idx[t]
            idx[t] = idx[pick]
            idx[pick] = tmp
            W[idx[t], j] = 0.0


@jit
def _fill_orthogonal(gain, k0, k1, c3, W):
    n_out, n_in = W.shape
    fill_normals(k0, k1, P_WEIGHTS, c3, 0, W.reshape(W.size))
    if n_out >= n_in:
        q, r = np.linalg.qr(W)
        for j in range(n_in):
            s = gain if r[j, j] >= 0.0 else -gain
            for i in range(n_out):
                W[i, j] = s * q[i, j]
    else:
        q, r = np.linalg.qr(np.ascontiguousarray(W.T))
        for i in range(n_out):
            s = gain if r[i, i] >= 0.0 else -gain
            for j in range(n_in):
                W[i, j] = s * q[j, i]


@jit
def fill_weights(code, params, k0, k1, layer, W):
    """Fill one layer's weight matrix of one net with its entry law.

    Safe to call from a ``prange`` body: it draws only from the net's
    counter-based substreams ``(purpose, layer)`` with purpose
    ``Purpose.WEIGHTS``, ``Purpose.TRUNCATED``, ``Purpose.SPARSE`` or
    ``Purpose.TRUNCATED_NORMALS``, so the result depends on
    ``(k0, k1, layer, code, params, W.shape)`` only. It allocates only small
    work arrays (a 128-draw buffer, a column index, the QR factors).

    Parameters
    ----------
    code : int
        Law code from :func:`encode`.
    params : numpy.ndarray of float64, shape (N_PARAMS,)
        Law parameters from :func:`encode`.
    k0, k1 : uint64
        The net's key words (a row of :func:`initsim.rng.net_keys`).
    layer : int
        Layer index, the substreams' counter word 3 (``0 <= layer < 2**32``).
    W : numpy.ndarray of float64, shape (n_out, n_in), C-contiguous
        Filled in place. Gaussian entry ``(i, j)`` is normal number
        ``i * n_in + j`` of substream ``(WEIGHTS, layer)``. An unknown code
        fills NaN.
    """
    c3 = np.uint64(layer)
    n_out, n_in = W.shape
    if code == GAUSSIAN:
        loc = params[P_LOC]
        scale = params[P_SCALE]
        flat = W.reshape(W.size)
        fill_normals(k0, k1, P_WEIGHTS, c3, 0, flat)
        for k in range(flat.shape[0]):
            flat[k] = loc + scale * flat[k]
    elif code == UNIFORM:
        low = params[P_LOW]
        span = params[P_HIGH] - low
        flat = W.reshape(W.size)
        fill_uniforms(k0, k1, P_WEIGHTS, c3, 0, flat)
        for k in range(flat.shape[0]):
            flat[k] = low + span * flat[k]
    elif code == TRUNCATED_GAUSSIAN:
        _fill_truncated(
            params[P_LOC], params[P_SCALE], params[P_LOW], params[P_HIGH], k0, k1, c3, W
        )
    elif code == ORTHOGONAL:
        _fill_orthogonal(params[P_GAIN], k0, k1, c3, W)
    elif code == CONSTANT:
        W[:, :] = params[P_VALUE]
    elif code == SPARSE:
        _fill_sparse(params[P_SPARSITY], params[P_SCALE], k0, k1, c3, W)
    elif code == IDENTITY:
        gain = params[P_GAIN]
        for i in range(n_out):
            for j in range(n_in):
                W[i, j] = gain if i == j else 0.0
    else:
        W[:, :] = np.nan


# --------------------------------------------------------------------------
# Python conveniences
# --------------------------------------------------------------------------
def _code_params(spec_or_code_params: Any) -> tuple[int, np.ndarray]:
    if hasattr(spec_or_code_params, "law"):
        return encode(spec_or_code_params)
    try:
        code, params = spec_or_code_params
    except (TypeError, ValueError):
        raise ValueError(
            "expected a law spec (with a 'law' attribute) or a (code, params) pair from "
            f"encode(); got {type(spec_or_code_params).__name__}"
        ) from None
    code = int(code)
    if code not in LAW_NAMES:
        raise ValueError(f"unknown law code {code}; valid codes are {LAW_NAMES}")
    params = np.ascontiguousarray(params, dtype=np.float64)
    if params.shape != (N_PARAMS,):
        raise ValueError(f"params must have shape ({N_PARAMS},); got {params.shape}")
    return code, params


def _key_words(key: Any) -> tuple[np.uint64, np.uint64]:
    words = np.asarray(key)
    if words.shape != (2,):
        raise ValueError(
            f"key must be two 32-bit words (a row of net_keys); got shape {words.shape}"
        )
    if np.any(words < 0) or np.any(words > 0xFFFFFFFF):
        raise ValueError("key words must be 32-bit unsigned integers")
    return np.uint64(words[0]), np.uint64(words[1])


def _check_layer_shape(layer: int, shape: tuple[int, int]) -> tuple[int, int]:
    if not 0 <= int(layer) <= 0xFFFFFFFF:
        raise ValueError(f"layer must be in [0, 2**32); got {layer}")
    if len(shape) != 2 or min(int(s) for s in shape) < 1:
        raise ValueError(f"shape must be (n_out, n_in) with positive sizes; got {shape}")
    return int(shape[0]), int(shape[1])


def sample_weights(
    spec_or_code_params: Any, key: Any, layer: int, shape: tuple[int, int]
) -> np.ndarray:
    """Draw one weight matrix of one net (allocates and calls :func:`fill_weights`).

    Parameters
    ----------
    spec_or_code_params : object or tuple
        A law spec accepted by :func:`encode`, or its ``(code, params)``.
    key : array_like of two uint64
        The net's key (a row of :func:`initsim.rng.net_keys`).
    layer : int
        Layer index (the substreams' counter word 3).
    shape : tuple of int
        ``(n_out, n_in)``.

    Returns
    -------
    numpy.ndarray of float64, shape (n_out, n_in)
        The weight matrix.
    """
    code, params = _code_params(spec_or_code_params)
    k0, k1 = _key_words(key)
    n_out, n_in = _check_layer_shape(layer, shape)
    W = np.empty((n_out, n_in))
    fill_weights(code, params, k0, k1, np.int64(layer), W)
    return W


def fill_weights_reference(
    code: int, params: np.ndarray, k0: Any, k1: Any, layer: int, W: np.ndarray
) -> None:
    """Plain-numpy twin of :func:`fill_weights`, for tests only (slow).

    Gaussian, uniform, constant, identity, orthogonal and sparse matrices
    reproduce :func:`fill_weights` (the same draws, then the obvious numpy
    arithmetic, :func:`numpy.linalg.qr`, or a plain-Python Fisher-Yates).
    The truncated Gaussian uses an independent algorithm with the same law:
    inverse-CDF sampling (:func:`scipy.stats.truncnorm.ppf`) of the uniforms
    of substream ``(Purpose.TRUNCATED, layer)``, one per entry in row-major
    order; compare it with the kernel statistically, not entry by entry.

    Parameters
    ----------
    code, params, k0, k1, layer, W
        As for :func:`fill_weights`.
    """
    c3 = np.uint64(layer)
    k0 = np.uint64(k0)
    k1 = np.uint64(k1)
    n_out, n_in = W.shape
    size = n_out * n_in

    def normals(c2: int) -> np.ndarray:
        z = np.empty(size)
        fill_normals(k0, k1, np.uint64(c2), c3, 0, z)
        return z.reshape(n_out, n_in)

    def uniforms(c2: int, n: int, start: int = 0) -> np.ndarray:
        u = np.empty(n)
        fill_uniforms(k0, k1, np.uint64(c2), c3, start, u)
        return u

    if code == GAUSSIAN:
        W[...] = params[P_LOC] + params[P_SCALE] * normals(Purpose.WEIGHTS)
    elif code == UNIFORM:
        low, high = params[P_LOW], params[P_HIGH]
        W[...] = low + (high - low) * uniforms(Purpose.WEIGHTS, size).reshape(n_out, n_in)
    elif code == TRUNCATED_GAUSSIAN:
        from scipy import stats

        loc, scale, low, high = params[P_LOC], params[P_SCALE], params[P_LOW], params[P_HIGH]
        u = uniforms(Purpose.TRUNCATED, size).reshape(n_out, n_in)
        x = stats.truncnorm.ppf(u, (low - loc) / scale, (high - loc) / scale, loc, scale)
        W[...] = np.clip(x, low, high)
    elif code == ORTHOGONAL:
        g = normals(Purpose.WEIGHTS)
        wide = n_out < n_in
        a = g.T if wide else g
        q, r = np.linalg.qr(a)
        signs = np.where(np.diag(r) >= 0.0, 1.0, -1.0)
        q = q * signs
        W[...] = params[P_GAIN] * (q.T if wide else q)
    elif code == CONSTANT:
        W[...] = params[P_VALUE]
    elif code == SPARSE:
        w = params[P_SCALE] * normals(Purpose.WEIGHTS)
        nz = sparse_zero_count(params[P_SPARSITY], n_out)
        for j in range(n_in):
            u = uniforms(Purpose.SPARSE, nz, j * nz)
            rows = list(range(n_out))
            for t in range(nz):
                m = n_out - t
                pick = t + min(int(u[t] * m), m - 1)
                rows[t], rows[pick] = rows[pick], rows[t]
            w[rows[:nz], j] = 0.0
        W[...] = w
    elif code == IDENTITY:
        W[...] = params[P_GAIN] * np.eye(n_out, n_in)
    else:
        W[...] = np.nan
