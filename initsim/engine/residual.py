"""Residual-network kernel: B inputs, forward and backward, two samplers of the branches.

The model
---------
The residual stream ``x^l`` has width ``n``, ``l = 0 .. L`` (``L = blocks``);
``x^0`` is made by :func:`initsim.engine.exact.make_input` (``n`` units,
``B = n_inputs`` inputs). Block ``l`` (0-based) computes a branch ``F`` of
``m = branch_layers`` dense layers of hidden width ``nb``:

- ``m >= 2``: ``h_1 = W_1 u (+ b_1)``, ``a_1 = act_scale * phi(h_1)``,
  ``h_k = W_k a_{k-1} (+ b_k)`` and ``a_k = act_scale * phi(h_k)`` for
  ``k = 2 .. m-1``, ``F = W_m a_{m-1} (+ b_m)``; ``W_1`` is ``nb x n``, the
  inner ``W_k`` are ``nb x nb`` and ``W_m`` is ``n x nb``.
- ``m == 1`` (the "reduced" block): ``F(u) = W_1 (act_scale * phi(u)) (+ b_1)``,
  ``W_1`` is ``n x n``.

The branch input is ``u = in_scale[l] * v`` with ``v = x^l`` (norm none or
post) or ``v = N(x^l)`` (norm pre), and

- ``NORM_NONE``: ``x^{l+1} = skip[l] x^l + alpha[l] F(u)``;
- ``NORM_PRE``:  ``x^{l+1} = skip[l] x^l + alpha[l] F(in_scale[l] N(x^l))``;
- ``NORM_POST``: ``x^{l+1} = N(skip[l] x^l + alpha[l] F(in_scale[l] x^l))``.

``N`` is, by ``norm_kind``: ``LAYERNORM`` over the ``n`` units of each input
(no affine, biased variance, ``(z - mean) / sqrt(var + eps)``); ``RMSNORM``
(``z / sqrt(mean(z^2) + eps)`` over the units of each input); ``BATCHNORM``
of each unit over the ``B`` inputs of the net (the LayerNorm formula along the
other axis; the Python layer requires ``B >= 2``). Means and variances are
two-pass (mean first, then the squared deviations).

Samplers and random streams
---------------------------
Matrix ``k`` (0-based, ``k = 0 .. m-1``) of block ``l`` is layer
``t = l * m + k``. With ``SAMPLER_DENSE`` it is drawn by
:func:`initsim.engine.laws.fill_weights` with law ``law_codes[t]``,
``law_params[t]`` from substream ``(WEIGHTS, t)`` (and the law's own
substreams); weights are never stored: the backward pass redraws each matrix
from its substream. With ``SAMPLER_EXACT`` (zero-mean Gaussian,
Haar-orthogonal or zero matrices) the matrix is never drawn: its product
with the layer input is drawn from its conditional law, and the backward
pass conditioned on it (:mod:`initsim.engine.residual_exact`, substreams
``(FORWARD, t)`` and ``(BACKWARD, t)``). Either way the bias (when
``bias_std > 0``) is ``bias_std`` times normals ``0 .. rows-1`` of substream
``(BIAS, t)``, one per output unit, shared by the ``B`` inputs, and the
backward pass starts from the output direction ``g^L``: ``n * B`` normals of
substream ``(OUTPUT_DIRECTION, 0)``, unit-major.

Backward
--------
The exact chain rule. With ``g`` the gradient of ``<g^L, x^L>`` with respect
to ``x^{l+1}``: for norm post, first ``g <- J_N^T g`` (``N`` of block ``l``);
then ``grad x^l = skip g + alpha in_scale [J_N^T if pre] J_F(u)^T g``.
LayerNorm's ``J_N^T dy = (dy - mean(dy) - y mean(dy y)) / s`` (``y`` the
normalised output, ``s = sqrt(var + eps)``, means over the units of each
input); RMSNorm's ``(dy - y mean(dy y)) / r``; BatchNorm's is LayerNorm's
over the inputs of each unit.

Statistics
----------
``stats[net, l, :]`` (columns ``R_*``) for block ``l``:

- ``R_Q``: mean over units and inputs of ``(x^{l+1})^2``;
- ``R_SHARE``: ``sum ||alpha F||^2 / (sum ||skip x^l||^2 + sum ||alpha F||^2)``,
  sums over the inputs, before the norm for post; ``0 / 0`` gives 0;
- ``R_BRANCH_Q``: mean square of what enters the branch's first nonlinearity
  (``h_1`` for ``m >= 2``, ``u`` for ``m == 1``);
- ``R_DEAD``: the fraction of the nonlinearity's units whose ``phi`` output
  (before ``act_scale``) is exactly 0 for every input, averaged over the
  ``m - 1`` hidden layers (``m >= 2``) or over the ``n`` units of ``phi(u)``;
- ``R_SATURATED``: the fraction of (unit, input) pairs of those
  nonlinearities with ``|phi'| < sat_threshold``;
- ``R_GRAD_SQ``: mean square of the gradient with respect to ``x^{l+1}``
  (the last block's is the output direction's); NaN without ``backward``.

``first_nonfinite[net]`` is the 1-based index of the first block whose
``R_Q`` is not finite (0 if none). That block's row is written as computed;
the net then stops: the later rows are NaN in every column, and no backward
pass runs (``R_GRAD_SQ`` NaN in every row).

Buffers are unit-major ``(units, B)``: unit ``i`` owns ``x[i*B:(i+1)*B]``.
Call the kernel with BLAS limited to one thread (the Python layer does this
with threadpoolctl), as :mod:`initsim.engine.dense`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from initsim._jit import jit
from initsim.activations import act_dphi, act_phi
from initsim.engine.exact import make_input
from initsim.engine.laws import fill_weights
from initsim.engine.layerstats import mean_square
from initsim.engine.residual_exact import exact_layer, exact_layer_t
from initsim.rng import P_BIAS, P_OUTPUT_DIRECTION, fill_normals

__all__ = [
    "BATCHNORM",
    "LAYERNORM",
    "NORM_NONE",
    "NORM_POST",
    "NORM_PRE",
    "N_RES_STATS",
    "RMSNORM",
    "R_BRANCH_Q",
    "R_DEAD",
    "R_GRAD_SQ",
    "R_Q",
    "R_SATURATED",
    "R_SHARE",
    "SAMPLER_DENSE",
    "SAMPLER_EXACT",
    "normalize",
    "normalize_backward",
    "residual_kernel",
    "residual_net",
    "residual_stat_names",
]

_ZERO = np.uint64(0)

# Where the norm sits.
NORM_NONE = 0
NORM_PRE = 1
NORM_POST = 2
# Which norm.
LAYERNORM = 0
RMSNORM = 1
BATCHNORM = 2
# How the branch matrices are sampled.
SAMPLER_DENSE = 0
SAMPLER_EXACT = 1

# Columns of stats[net, block, :].
R_Q = 0
R_SHARE = 1
R_BRANCH_Q = 2
R_DEAD = 3
R_SATURATED = 4
R_GRAD_SQ = 5
N_RES_STATS = 6

_STAT_NAMES = ("q", "branch_share", "branch_q", "dead", "saturated", "grad_sq")


def residual_stat_names() -> tuple[str, ...]:
    """Return the names of the columns of the kernel's ``stats``, in column order.

    Returns
    -------
    tuple of str
        ``("q", "branch_share", "branch_q", "dead", "saturated", "grad_sq")``,
        the columns ``R_Q .. R_GRAD_SQ``.
    """
    return _STAT_NAMES


# --------------------------------------------------------------------------
# Norms
# --------------------------------------------------------------------------
@jit
def normalize(z, y, s, n, b, kind, eps):
    """Normalise ``z`` (``n * b`` values, unit-major) into ``y``.

    Parameters
    ----------
    z, y : 1-D float64 arrays
        Input (read) and normalised output (written); may not alias.
    s : 1-D float64 array
        Receives the divisors: ``b`` of them (one per input) for LAYERNORM
        and RMSNORM, ``n`` (one per unit) for BATCHNORM.
    n, b : int
        Units and inputs.
    kind : int
        LAYERNORM, RMSNORM or BATCHNORM.
    eps : float
        Added to the variance (mean square for RMSNORM) under the root.
    """
    if kind == BATCHNORM:
        for i in range(n):
            mu = 0.0
            for j in range(b):
                mu += z[i * b + j]
            mu /= b
            var = 0.0
            for j in range(b):
                d = z[i * b + j] - mu
                var += d * d
            sd = math.sqrt(var / b + eps)
            s[i] = sd
            for j in range(b):
                y[i * b + j] = (z[i * b + j] - mu) / sd
        return
    for j in range(b):
        mu = 0.0
        if kind == LAYERNORM:
            for i in range(n):
                mu += z[i * b + j]
            mu /= n
        var = 0.0
        for i in range(n):
            d = z[i * b + j] - mu
            var += d * d
        sd = math.sqrt(var / n + eps)
        s[j] = sd
        for i in range(n):
            y[i * b + j] = (z[i * b + j] - mu) / sd


@jit
def normalize_backward(dy, y, s, n, b, kind, dz):
    """Pull the gradient ``dy`` back through :func:`normalize`: ``dz = J_N^T dy``.

    Parameters
    ----------
    dy : 1-D float64 array
        Gradient with respect to the normalised output (``n * b`` values).
    y, s : 1-D float64 arrays
        The normalised output and the divisors written by :func:`normalize`.
    n, b, kind : int
        As for :func:`normalize`.
    dz : 1-D float64 array
        Receives the gradient with respect to the input; may alias ``dy``.
    """
    if kind == BATCHNORM:
        for i in range(n):
            md = 0.0
            mdy = 0.0
            for j in range(b):
                k = i * b + j
                md += dy[k]
                mdy += dy[k] * y[k]
            md /= b
            mdy /= b
            sd = s[i]
            for j in range(b):
                k = i * b + j
                dz[k] = (dy[k] - md - y[k] * mdy) / sd
        return
    for j in range(b):
        md = 0.0
        mdy = 0.0
        for i in range(n):
            k = i * b + j
            md += dy[k]
            mdy += dy[k] * y[k]
        md = md / n if kind == LAYERNORM else 0.0
        mdy /= n
        sd = s[j]
        for i in range(n):
            k = i * b + j
            dz[k] = (dy[k] - md - y[k] * mdy) / sd


# --------------------------------------------------------------------------
# Branch pieces
# --------------------------------------------------------------------------
@jit
def _layer(sampler, code_t, params_t, k0, k1, t, bias_std, nout, nin, b, wbuf, bz, x, out,
           a_keep, pinv):  # fmt: skip
    """``out = W_t x (+ b_t)`` for the ``nout x nin`` matrix ``t``; return the exact rank.

    Dense: ``W_t`` is drawn from substream ``t``. Exact: ``W_t x`` is drawn
    into ``a_keep`` (kept for the backward pass) by
    :func:`initsim.engine.residual_exact.exact_layer`, with ``G^+`` in ``pinv``.
    """
    rank = 0
    if sampler == SAMPLER_DENSE:
        w = wbuf[: nout * nin].reshape((nout, nin))
        fill_weights(code_t, params_t, k0, k1, t, w)
        np.dot(w, x[: nin * b].reshape((nin, b)), out[: nout * b].reshape((nout, b)))
    else:
        rank = exact_layer(code_t, params_t, k0, k1, t, nout, nin, b, x, a_keep, pinv)
        for k in range(nout * b):
            out[k] = a_keep[k]
    if bias_std > 0.0:
        fill_normals(k0, k1, P_BIAS, np.uint64(t), 0, bz[:nout])
        for i in range(nout):
            bi = bias_std * bz[i]
            for j in range(b):
                out[i * b + j] += bi
    return rank


@jit
def _layer_t(sampler, code_t, params_t, k0, k1, t, nout, nin, b, wbuf, x, a_kept, pinv, rank,
             d, out):  # fmt: skip
    """``out = W_t^T d``: dense, ``W_t`` redrawn; exact, conditioned on ``W_t x = a_kept``."""
    if sampler == SAMPLER_DENSE:
        w = wbuf[: nout * nin].reshape((nout, nin))
        fill_weights(code_t, params_t, k0, k1, t, w)
        np.dot(w.T, d[: nout * b].reshape((nout, b)), out[: nin * b].reshape((nin, b)))
    else:
        exact_layer_t(code_t, params_t, k0, k1, t, nout, nin, b, x, a_kept, pinv, rank, d, out)


@jit
def _activate(h, out, count, act, act_scale):
    """``out = act_scale * phi(h)`` over ``count`` values (as :func:`_nonlinearity` computes it)."""
    for k in range(count):
        out[k] = act_scale * act_phi(act, h[k])


@jit
def _nonlinearity(h, a, units, b, act, act_scale, sat_threshold):
    """Write ``a = act_scale * phi(h)``; return (dead units, saturated pairs)."""
    dead = 0
    sat = 0
    for i in range(units):
        live = False
        for j in range(b):
            k = i * b + j
            x = h[k]
            v = act_phi(act, x)
            a[k] = act_scale * v
            if v != 0.0:
                live = True
            if abs(act_dphi(act, x)) < sat_threshold:
                sat += 1
        if not live:
            dead += 1
    return dead, sat


# --------------------------------------------------------------------------
# One net
# --------------------------------------------------------------------------
@jit
def residual_net(
    k0,
    k1,
    n,
    nb,
    m,
    blocks,
    law_codes,
    law_params,
    sampler,
    bias_std,
    act,
    alpha,
    skip,
    in_scale,
    act_scale,
    norm,
    norm_kind,
    eps,
    input_mode,
    given,
    b,
    backward,
    sat_threshold,
    stats_net,
    xs,
    grad0,
):
    """Run one net forward (and backward); the body of :func:`residual_kernel`.

    Parameters
    ----------
    k0, k1 : uint64
        The net's key words.
    n, nb, m, blocks, law_codes, law_params, sampler, bias_std, act, alpha,
    skip, in_scale, act_scale, norm, norm_kind, eps, input_mode, given, b, backward,
    sat_threshold
        As for :func:`residual_kernel` (``b`` is ``n_inputs``).
    stats_net : float64 array (blocks, N_RES_STATS)
        Receives the net's rows.
    xs : float64 array (blocks + 1, n * b) or (2, n * b)
        The stream. With ``blocks + 1`` rows, row ``l`` receives ``x^l``
        (rows after the first non-finite block NaN); with 2 rows (forward
        only) it is scratch space used in turn.
    grad0 : float64 array (n * b,)
        Receives the gradient of ``<g^L, x^L>`` with respect to ``x^0`` when
        ``backward`` (and every block is finite); untouched otherwise.

    Returns
    -------
    int
        The first block (1-based) whose ``R_Q`` is not finite, 0 if none.
    """
    total = n * b
    keep = xs.shape[0] == blocks + 1
    if backward and not keep:
        raise ValueError("backward needs xs with blocks + 1 rows")
    nmax = max(n, nb)
    mh = max(m - 1, 1)
    rows = blocks if backward else 1
    # hs[blk, k]: what enters nonlinearity k of the block (h_{k+1}; u when m == 1)
    hs = np.empty((rows, mh, nmax * b))
    vs = np.empty((rows if norm == NORM_PRE else 1, total))
    ss = np.empty((rows if norm != NORM_NONE else 1, max(n, b)))
    exact = sampler == SAMPLER_EXACT
    wbuf = np.empty(nmax * nmax if not exact else 1)
    # exact: each matrix's W x (kept for the backward pass), G^+ and rank
    kept = rows if exact and backward else 1
    avs = np.empty((kept, m, nmax * b if exact else 1))
    pinvs = np.empty((kept, m, b, b))
    ranks = np.zeros((kept, m), dtype=np.int64)
    bz = np.empty(nmax)
    abuf = np.empty(nmax * b)
    hbuf = np.empty(nmax * b)
    fbuf = np.empty(total)
    zbuf = np.empty(total)
    make_input(k0, k1, input_mode, given, n, b, xs[0])
    first = 0
    for blk in range(blocks):
        x = xs[blk if keep else blk % 2]
        xn = xs[blk + 1 if keep else (blk + 1) % 2]
        slot = blk if backward else 0
        ks = slot if exact and backward else 0
        row = stats_net[blk]
        # branch input u (written where the first nonlinearity's input lives when m == 1)
        v = x
        if norm == NORM_PRE:
            v = vs[slot]
            normalize(x, v, ss[slot], n, b, norm_kind, eps)
        u = hs[slot, 0] if m == 1 else hbuf
        c = in_scale[blk]
        for k in range(total):
            u[k] = c * v[k]
        # the branch
        t0 = blk * m
        if m == 1:
            row[R_BRANCH_Q] = mean_square(u, total)
            dead, sat = _nonlinearity(u, abuf, n, b, act, act_scale, sat_threshold)
            row[R_DEAD] = dead / n
            row[R_SATURATED] = sat / total
            ranks[ks, 0] = _layer(sampler, law_codes[t0], law_params[t0], k0, k1, t0, bias_std,
                                  n, n, b, wbuf, bz, abuf, fbuf, avs[ks, 0],
                                  pinvs[ks, 0])  # fmt: skip
        else:
            dead_frac = 0.0
            sat_all = 0
            for k in range(m - 1):
                h = hs[slot, k]
                nin = n if k == 0 else nb
                inp = u if k == 0 else abuf
                ranks[ks, k] = _layer(sampler, law_codes[t0 + k], law_params[t0 + k], k0, k1,
                                      t0 + k, bias_std, nb, nin, b, wbuf, bz, inp, h,
                                      avs[ks, k], pinvs[ks, k])  # fmt: skip
                if k == 0:
                    row[R_BRANCH_Q] = mean_square(h, nb * b)
                dead, sat = _nonlinearity(h, abuf, nb, b, act, act_scale, sat_threshold)
                dead_frac += dead / nb
                sat_all += sat
            row[R_DEAD] = dead_frac / (m - 1)
            row[R_SATURATED] = sat_all / ((m - 1) * nb * b)
            tl = t0 + m - 1
            ranks[ks, m - 1] = _layer(sampler, law_codes[tl], law_params[tl], k0, k1, tl,
                                      bias_std, n, nb, b, wbuf, bz, abuf, fbuf, avs[ks, m - 1],
                                      pinvs[ks, m - 1])  # fmt: skip
        # the sum
        a = alpha[blk]
        sk = skip[blk]
        sx2 = 0.0
        sf2 = 0.0
        z = zbuf if norm == NORM_POST else xn
        for k in range(total):
            p = sk * x[k]
            f = a * fbuf[k]
            sx2 += p * p
            sf2 += f * f
            z[k] = p + f
        den = sx2 + sf2
        row[R_SHARE] = sf2 / den if den != 0.0 else 0.0
        if norm == NORM_POST:
            normalize(zbuf, xn, ss[slot], n, b, norm_kind, eps)
        row[R_Q] = mean_square(xn, total)
        row[R_GRAD_SQ] = np.nan
        if not math.isfinite(row[R_Q]):
            first = blk + 1
            for r in range(blk + 1, blocks):
                stats_net[r, :] = np.nan
            if keep:
                for r in range(blk + 2, blocks + 1):
                    xs[r, :] = np.nan
            break
    if backward and first == 0:
        _backward(k0, k1, n, nb, m, blocks, law_codes, law_params, sampler, act, alpha,
                  skip, in_scale, act_scale, norm, norm_kind, b, xs, hs, vs, ss, wbuf, avs,
                  pinvs, ranks, stats_net, grad0)  # fmt: skip
    return first


@jit
def _backward(
    k0,
    k1,
    n,
    nb,
    m,
    blocks,
    law_codes,
    law_params,
    sampler,
    act,
    alpha,
    skip,
    in_scale,
    act_scale,
    norm,
    norm_kind,
    b,
    xs,
    hs,
    vs,
    ss,
    wbuf,
    avs,
    pinvs,
    ranks,
    stats_net,
    grad0,
):
    """Backward pass of one net (see the module docstring); fills R_GRAD_SQ and ``grad0``.

    ``avs``, ``pinvs`` and ``ranks`` are what the exact sampler kept of each
    matrix's forward draw (unused by the dense sampler, which redraws ``W``).
    """
    total = n * b
    nmax = max(n, nb)
    exact = sampler == SAMPLER_EXACT
    g = np.empty(total)  # gradient with respect to the stream
    gz = np.empty(total)  # ... with respect to the pre-norm sum (post), else g
    d = np.empty(nmax * b)
    e = np.empty(nmax * b)
    xin = np.empty(nmax * b)  # exact: the input of the matrix being pulled back
    fill_normals(k0, k1, P_OUTPUT_DIRECTION, _ZERO, 0, g)
    stats_net[blocks - 1, R_GRAD_SQ] = mean_square(g, total)
    for blk in range(blocks - 1, -1, -1):
        if norm == NORM_POST:
            normalize_backward(g, xs[blk + 1], ss[blk], n, b, norm_kind, gz)
        else:
            gz[:] = g
        a = alpha[blk]
        for k in range(total):
            d[k] = a * gz[k]
        t0 = blk * m
        c = in_scale[blk]
        # d holds the gradient with respect to the output of branch layer k
        if m == 1:
            u = hs[blk, 0]
            if exact:
                _activate(u, xin, total, act, act_scale)
            _layer_t(sampler, law_codes[t0], law_params[t0], k0, k1, t0, n, n, b, wbuf, xin,
                     avs[blk, 0], pinvs[blk, 0], ranks[blk, 0], d, e)  # fmt: skip
            for k in range(total):
                e[k] *= act_scale * act_dphi(act, u[k])
        else:
            for kk in range(m - 1, 0, -1):
                t = t0 + kk
                nout = n if kk == m - 1 else nb
                h = hs[blk, kk - 1]
                if exact:
                    _activate(h, xin, nb * b, act, act_scale)
                _layer_t(sampler, law_codes[t], law_params[t], k0, k1, t, nout, nb, b, wbuf, xin,
                         avs[blk, kk], pinvs[blk, kk], ranks[blk, kk], d, e)  # fmt: skip
                for k in range(nb * b):
                    d[k] = e[k] * (act_scale * act_dphi(act, h[k]))
            if exact:  # the branch input u = in_scale * v, recomputed as the forward pass did
                v = vs[blk] if norm == NORM_PRE else xs[blk]
                for k in range(total):
                    xin[k] = c * v[k]
            _layer_t(sampler, law_codes[t0], law_params[t0], k0, k1, t0, nb, n, b, wbuf, xin,
                     avs[blk, 0], pinvs[blk, 0], ranks[blk, 0], d, e)  # fmt: skip
        # e: gradient with respect to u; to v, then through a pre-norm
        for k in range(total):
            e[k] *= c
        if norm == NORM_PRE:
            normalize_backward(e, vs[blk], ss[blk], n, b, norm_kind, e)
        sk = skip[blk]
        for k in range(total):
            g[k] = sk * gz[k] + e[k]
        if blk > 0:
            stats_net[blk - 1, R_GRAD_SQ] = mean_square(g, total)
    for k in range(total):
        grad0[k] = g[k]


# --------------------------------------------------------------------------
# The kernel
# --------------------------------------------------------------------------
@jit(parallel=True)
def residual_kernel(
    keys,
    n,
    nb,
    m,
    blocks,
    law_codes,
    law_params,
    sampler,
    bias_std,
    act,
    alpha,
    skip,
    in_scale,
    act_scale,
    norm,
    norm_kind,
    eps,
    input_mode,
    given,
    n_inputs,
    backward,
    sat_threshold,
    stats,
    first_nonfinite,
):
    """Propagate ``n_inputs`` inputs through each residual net (see the module docstring).

    Parameters
    ----------
    keys : uint64 array (nets, 2)
        Per-net Philox keys.
    n, nb : int
        Stream width and branch hidden width (``nb`` unused when ``m == 1``).
    m : int
        Dense layers per branch (``>= 1``).
    blocks : int
        Residual blocks ``L``.
    law_codes : int64 array (blocks * m,)
        Entry law of matrix ``t = l * m + k`` (see :mod:`initsim.engine.laws`).
    law_params : float64 array (blocks * m, N_PARAMS)
        The laws' parameters.
    sampler : int
        SAMPLER_DENSE (any law) or SAMPLER_EXACT (every matrix zero-mean
        Gaussian, Haar-orthogonal, or zero; orthogonal with ``backward`` only
        where ``n_out >= n_in``: the Python layer checks).
    bias_std : float
        Standard deviation of the branch biases (0 for none).
    act : tuple
        Activation.
    alpha, skip, in_scale : float64 arrays (blocks,)
        Branch multiplier, skip multiplier and branch-input scale per block.
    act_scale : float
        Multiplies every ``phi`` output in the branches.
    norm, norm_kind : int
        NORM_NONE / NORM_PRE / NORM_POST and LAYERNORM / RMSNORM / BATCHNORM.
    eps : float
        The norm's epsilon.
    input_mode, given : int, float64 array
        See :func:`initsim.engine.exact.make_input`; ``given`` is unit-major
        (``n * n_inputs`` values) or a dummy.
    n_inputs : int
        ``B``, inputs per net.
    backward : bool
        Also propagate the gradient of ``<g^L, x^L>`` down the blocks.
    sat_threshold : float
        Saturation threshold on ``|phi'|``.
    stats : float64 array (nets, blocks, N_RES_STATS)
        Output: the columns ``R_*``.
    first_nonfinite : int64 array (nets,)
        Output: first block (1-based) whose ``R_Q`` is not finite, 0 if none.
    """
    nets = keys.shape[0]
    total = n * n_inputs
    for net in numba.prange(nets):
        xs = np.empty((blocks + 1 if backward else 2, total))
        grad0 = np.empty(total)
        first_nonfinite[net] = residual_net(
            keys[net, 0],
            keys[net, 1],
            n,
            nb,
            m,
            blocks,
            law_codes,
            law_params,
            sampler,
            bias_std,
            act,
            alpha,
            skip,
            in_scale,
            act_scale,
            norm,
            norm_kind,
            eps,
            input_mode,
            given,
            n_inputs,
            backward,
            sat_threshold,
            stats[net],
            xs,
            grad0,
        )
