"""Turn the user's ``seed`` argument into NumPy seeding objects.

Randomness enters initsim only at the boundary: every public function that
draws random numbers accepts ``seed: int | SeedSequence | Generator | None``
and passes it through one of the two helpers below.
"""

from __future__ import annotations

import numbers

import numpy as np

SeedLike = int | np.integer | np.random.SeedSequence | np.random.Generator | None

__all__ = ["SeedLike", "as_generator", "as_seed_sequence"]


def as_seed_sequence(seed: SeedLike) -> np.random.SeedSequence:
    """Return a :class:`numpy.random.SeedSequence` for ``seed``.

    Parameters
    ----------
    seed : int, SeedSequence, Generator or None
        A non-negative integer, an existing seed sequence (returned as is),
        a generator (a child sequence is spawned from its bit generator's
        seed sequence, which advances it), or None for fresh OS entropy.

    Returns
    -------
    numpy.random.SeedSequence
        The seed sequence; its ``entropy`` and ``spawn_key`` are the
        provenance to record with results.

    Raises
    ------
    ValueError
        If ``seed`` is a negative integer or of an unsupported type.
    """
    if seed is None:
        return np.random.SeedSequence()
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        return seed.bit_generator.seed_seq.spawn(1)[0]
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(
            f"seed must be a non-negative int, a numpy SeedSequence, a numpy Generator "
            f"or None; got {type(seed).__name__}"
        )
    if seed < 0:
        raise ValueError(f"seed must be a non-negative int; got {seed}")
    return np.random.SeedSequence(int(seed))


def as_generator(seed: SeedLike) -> np.random.Generator:
    """Return a :class:`numpy.random.Generator` for ``seed``.

    Parameters
    ----------
    seed : int, SeedSequence, Generator or None
        A generator is returned unchanged (so callers share its stream);
        anything else goes through :func:`as_seed_sequence` and seeds a new
        PCG64 generator.

    Returns
    -------
    numpy.random.Generator
        The generator to draw from.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.Generator(np.random.PCG64(as_seed_sequence(seed)))
