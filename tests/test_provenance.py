"""Tests for initsim.provenance and initsim._validate: one policy each, declared once."""

from __future__ import annotations

import json
import math

import numba
import numpy as np
import pytest

from initsim import provenance
from initsim._validate import check_choice, check_int, check_real


def test_json_safe_policies():
    value = {1: (np.float64(1.5), np.int64(2)), "a": [math.inf, -math.inf, math.nan, None, "s"]}
    as_strings = provenance.json_safe(value)
    assert as_strings == {"1": [1.5, 2], "a": ["inf", "-inf", "nan", None, "s"]}
    assert provenance.json_safe(value, nonfinite="null")["a"] == [None, None, None, None, "s"]
    json.dumps(as_strings, allow_nan=False)  # plain JSON
    assert provenance.json_safe(np.arange(3)) == [0, 1, 2]
    assert provenance.json_safe(object).startswith("<class")


def test_config_hash_ignores_key_order_and_sees_values():
    a = provenance.config_hash({"x": 1, "y": [1, 2]})
    assert a == provenance.config_hash({"y": [1, 2], "x": 1})
    assert a != provenance.config_hash({"x": 1, "y": [2, 1]})


def test_numba_threads_sets_restores_and_refuses_too_many():
    before = numba.get_num_threads()
    with provenance.numba_threads(1) as used:
        assert used == 1 == numba.get_num_threads()
    assert numba.get_num_threads() == before
    with provenance.numba_threads(None) as used:
        assert used == before
    too_many = numba.config.NUMBA_NUM_THREADS + 1
    with pytest.raises(ValueError, match="threads must be between 1 and"):
        with provenance.numba_threads(too_many):
            pass  # pragma: no cover
    with pytest.raises(ValueError, match="threads must be an integer >= 1"):
        provenance.check_threads(0)


def test_validators_name_the_parameter_and_range():
    assert check_int("n", np.int64(3)) == 3
    for bad in (True, 2.0, "3", 0):
        with pytest.raises(ValueError, match=r"n must be an integer >= 1"):
            check_int("n", bad)
    assert check_real("x", 0, minimum=0.0) == 0.0
    with pytest.raises(ValueError, match=r"x must be a finite number > 0"):
        check_real("x", 0, minimum=0.0, strict=True)
    for bad in (math.inf, "1", False, None):
        with pytest.raises(ValueError, match="x must be a finite number"):
            check_real("x", bad)
    with pytest.raises(ValueError, match="m must be one of a, b; got 'c'"):
        check_choice("m", "c", ("a", "b"))
