"""Counter-based streams: known answers, addressing, law, thread and chunk invariance."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from initsim import rng
from initsim.seeding import as_generator, as_seed_sequence

U = np.uint64

# Random123's published known-answer vectors for Philox4x32-10.
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize(("ctr", "key", "expected"), KAT)
def test_philox_known_answers(ctr, key, expected):
    assert tuple(int(v) for v in rng.philox_blocks([ctr], key)[0]) == expected


def test_philox_blocks_rejects_bad_counters():
    with pytest.raises(ValueError, match="counters"):
        rng.philox_blocks([[0, 0, 0]], (0, 0))
    with pytest.raises(ValueError, match="32-bit"):
        rng.philox_blocks([[2**32, 0, 0, 0]], (0, 0))


def normals(key, c2, c3, start, n):
    out = np.empty(n)
    rng.fill_normals(U(key[0]), U(key[1]), U(c2), U(c3), start, out)
    return out


def uniforms(key, c2, c3, start, n):
    out = np.empty(n)
    rng.fill_uniforms(U(key[0]), U(key[1]), U(c2), U(c3), start, out)
    return out


@given(start=st.integers(0, 1000), n=st.integers(0, 300), split=st.integers(0, 300))
def test_draws_depend_only_on_their_address(start, n, split):
    key = (12345, 678)
    whole = normals(key, rng.Purpose.TEST, 3, start, n)
    split = min(split, n)
    left = normals(key, rng.Purpose.TEST, 3, start, split)
    right = normals(key, rng.Purpose.TEST, 3, start + split, n - split)
    np.testing.assert_array_equal(whole, np.concatenate([left, right]))
    uw = uniforms(key, rng.Purpose.TEST, 4, start, n)
    np.testing.assert_array_equal(
        uw,
        np.concatenate(
            [
                uniforms(key, rng.Purpose.TEST, 4, start, split),
                uniforms(key, rng.Purpose.TEST, 4, start + split, n - split),
            ]
        ),
    )


def test_uniform_words_match_philox_blocks():
    """Uniform i is the top 53 bits of half (i & 1) of block i >> 1."""
    key = (7, 9)
    u = uniforms(key, 5, 6, 0, 8)
    blocks = rng.philox_blocks([[j, 0, 5, 6] for j in range(4)], key).astype(np.uint64)
    words = np.empty(8, dtype=np.uint64)
    words[0::2] = (blocks[:, 0] << U(32)) | blocks[:, 1]
    words[1::2] = (blocks[:, 2] << U(32)) | blocks[:, 3]
    np.testing.assert_array_equal(u, (words >> U(11)).astype(np.float64) * 2.0**-53)


def test_substreams_and_keys_differ():
    a = normals((1, 2), 2, 0, 0, 64)
    assert not np.array_equal(a, normals((1, 3), 2, 0, 0, 64))
    assert not np.array_equal(a, normals((1, 2), 3, 0, 0, 64))
    assert not np.array_equal(a, normals((1, 2), 2, 1, 0, 64))


# The law of the normals. Each test below has false-rejection probability
# ALPHA under a correct generator (fixed keys make them deterministic).
ALPHA = 1e-4


def test_normals_pass_ks_and_moment_tests():
    z = normals((2024, 11), rng.Purpose.TEST, 0, 0, 400_000)
    assert stats.kstest(z, "norm").pvalue > ALPHA
    n = z.size
    # mean: z-test; variance: chi-square with n degrees of freedom about 0
    assert abs(z.mean()) * np.sqrt(n) < stats.norm.isf(ALPHA / 2)
    chi2 = np.sum(z**2)
    assert stats.chi2.sf(chi2, n) > ALPHA / 2 and stats.chi2.cdf(chi2, n) > ALPHA / 2


def test_normal_tail_and_wedges_have_the_right_mass():
    """The ziggurat's slow paths (tail beyond r, wedges) must give exact probabilities."""
    z = normals((99, 1), rng.Purpose.TEST, 1, 0, 2_000_000)
    edges = np.array(
        [-np.inf, -rng._ZIG_R, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, rng._ZIG_R, np.inf]
    )
    observed, _ = np.histogram(z, bins=edges)
    expected = z.size * np.diff(stats.norm.cdf(edges))
    assert stats.chisquare(observed, expected).pvalue > ALPHA
    assert observed[0] > 0 and observed[-1] > 0  # the tail branch ran


def test_negative_control_detects_wrong_scale():
    z = normals((2024, 11), rng.Purpose.TEST, 0, 0, 400_000) * 1.01
    assert stats.kstest(z, "norm").pvalue < ALPHA or (
        stats.chi2.sf(np.sum(z**2), z.size) < ALPHA / 2
    )


def test_uniforms_are_uniform():
    u = uniforms((5, 5), rng.Purpose.TEST, 2, 0, 400_000)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert stats.kstest(u, "uniform").pvalue > ALPHA


def test_net_keys_depend_only_on_index():
    root = rng.root_key(42)
    all_keys = rng.net_keys(root, 0, 100)
    np.testing.assert_array_equal(all_keys[37:61], rng.net_keys(root, 37, 61))
    assert len({tuple(k) for k in all_keys}) == 100
    assert not np.array_equal(all_keys, rng.net_keys(rng.root_key(43), 0, 100))
    with pytest.raises(ValueError, match="start"):
        rng.net_keys(root, 5, 2)


@numba.njit(parallel=True, cache=True)
def _per_net_draws(keys, n, out):
    for k in numba.prange(keys.shape[0]):
        rng.fill_normals(keys[k, 0], keys[k, 1], U(2), U(0), 0, out[k])


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_streams_identical_across_thread_counts(threads):
    keys = rng.net_keys(rng.root_key(7), 0, 64)
    ref = np.empty((64, 257))
    for k in range(64):
        rng.fill_normals(keys[k, 0], keys[k, 1], U(2), U(0), 0, ref[k])
    out = np.empty_like(ref)
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(threads)
        _per_net_draws(keys, 257, out)
    finally:
        numba.set_num_threads(old)
    np.testing.assert_array_equal(out, ref)


def test_seed_helpers():
    assert as_seed_sequence(3).entropy == 3
    ss = np.random.SeedSequence(5)
    assert as_seed_sequence(ss) is ss
    g = np.random.default_rng(1)
    assert as_generator(g) is g
    assert as_generator(4).random() == np.random.default_rng(4).random()
    np.testing.assert_array_equal(rng.root_key(11), rng.root_key(np.random.SeedSequence(11)))
    for bad in (-1, 1.5, "3", True):
        with pytest.raises(ValueError, match="seed"):
            as_seed_sequence(bad)
