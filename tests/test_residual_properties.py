"""Hypothesis properties of residual nets: exact identities that hold for any size.

* With ``alpha = 0``, or a zero-initialised last branch layer (no biases), the
  stream stays exactly ``x^0`` (bitwise) through every block, for any width,
  depth, branch shape and activation (``norm="none"`` or ``"pre"``).
* A LayerNorm output (``eps = 0``) has exactly unit mean square and zero
  mean per input; an RMSNorm output unit mean square; a BatchNorm output
  zero mean and unit mean square per unit (to rounding, 1e-12).
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from initsim.activations import get as get_activation
from initsim.engine import laws
from initsim.engine import residual as R
from initsim.initializers import get as get_init
from initsim.rng import net_keys, root_key

ACTS = st.sampled_from(["relu", "tanh", "gelu", "sigmoid", "linear"])


def _stream(
    seed: int, n: int, nb: int, m: int, blocks: int, alpha: float, zero_last: bool,
    act: str, norm: int,
) -> np.ndarray:  # fmt: skip
    spec = [laws.encode(get_init("he_normal").law_spec(4, 4))] * m
    if zero_last:
        spec[-1] = laws.encode(get_init("zeros").law_spec(4, 4))
    codes = np.array([c for c, _ in spec] * blocks, dtype=np.int64)
    params = np.vstack([p for _, p in spec] * blocks)
    a = get_activation(act)
    key = net_keys(root_key(seed), 0, 1)[0]
    stats = np.zeros((blocks, R.N_RES_STATS))
    xs = np.zeros((blocks + 1, n))
    R.residual_net(
        key[0], key[1], n, nb, m, blocks, codes, params, 0.0, a.code, a.param,
        np.full(blocks, alpha), np.ones(blocks), np.ones(blocks), 1.0, norm, R.LAYERNORM,
        1e-5, 1, np.zeros(1), 1, False, 1e-2, stats, xs, np.zeros(n),
    )  # fmt: skip
    return xs


@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 24),
    nb=st.integers(1, 24),
    m=st.integers(1, 3),
    blocks=st.integers(1, 6),
    act=ACTS,
    zero_last=st.booleans(),
    pre=st.booleans(),
)
def test_a_zero_branch_leaves_the_stream_exactly_x0(seed, n, nb, m, blocks, act, zero_last, pre):
    alpha = 1.0 if zero_last else 0.0
    norm = R.NORM_PRE if pre else R.NORM_NONE
    xs = _stream(seed, n, nb, m, blocks, alpha, zero_last, act, norm)
    for row in xs[1:]:
        assert np.array_equal(row, xs[0])  # bitwise


@given(
    z=st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=6, max_size=60),
    kind=st.sampled_from([R.LAYERNORM, R.RMSNORM, R.BATCHNORM]),
    b=st.integers(2, 3),
)
def test_normalised_outputs_have_unit_mean_square(z, kind, b):
    z = np.asarray(z[: (len(z) // b) * b])
    n = z.size // b
    mat = z.reshape(n, b)  # unit-major: unit i owns z[i*b:(i+1)*b]
    axis = 1 if kind == R.BATCHNORM else 0  # BatchNorm over the inputs of each unit
    spread = mat.std(axis=axis) if kind != R.RMSNORM else np.sqrt((mat**2).mean(axis=axis))
    if np.any(spread < 1e-6 * max(1.0, np.abs(mat).max())):
        return  # a constant row has no scale to normalise
    y = np.empty_like(z)
    s = np.empty(max(n, b))
    R.normalize(z.copy(), y, s, n, b, kind, 0.0)
    ym = y.reshape(n, b)
    np.testing.assert_allclose((ym**2).mean(axis=axis), 1.0, rtol=1e-12)
    if kind != R.RMSNORM:
        np.testing.assert_allclose(ym.mean(axis=axis), 0.0, atol=1e-12)
