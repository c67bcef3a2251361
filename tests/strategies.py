"""Hypothesis strategies shared by the property tests (bounded, no NaN)."""

from __future__ import annotations

from hypothesis import strategies as st

from initsim import activations, initializers

#: Seeds as users pass them.
seeds = st.integers(min_value=0, max_value=2**32 - 1)
#: Small hidden widths and depths: property tests run many examples.
widths = st.integers(min_value=2, max_value=48)
depths = st.integers(min_value=1, max_value=6)
#: Every activation in the registry.
activation_names = st.sampled_from(activations.names())
#: Bias-free positively homogeneous activations.
homogeneous_activations = st.sampled_from(["relu", "leaky_relu", "linear"])
#: Continuous random weight laws the engine supports with any activation.
random_inits = st.sampled_from(
    [
        "he_normal",
        "he_uniform",
        "glorot_normal",
        "glorot_uniform",
        "lecun_normal",
        "orthogonal",
        "torch_linear_default",
    ]
)
#: Laws the exact sampler covers.
exact_inits = st.sampled_from(["he_normal", "lecun_normal", "glorot_normal", "orthogonal"])
#: Initializers with a variance-scaling law, and their fan modes.
variance_scaling_modes = st.sampled_from(["fan_in", "fan_out", "fan_avg"])
variance_scaling_distributions = st.sampled_from(["normal", "truncated_normal", "uniform"])
scales = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False, allow_infinity=False)
positive_factors = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False, allow_infinity=False)
fans = st.integers(min_value=1, max_value=4096)
thread_counts = st.sampled_from([1, 2, 4])
methods = st.sampled_from(["exact", "dense"])

__all__ = [
    "activation_names",
    "depths",
    "exact_inits",
    "fans",
    "homogeneous_activations",
    "initializers",
    "methods",
    "positive_factors",
    "random_inits",
    "scales",
    "seeds",
    "thread_counts",
    "variance_scaling_distributions",
    "variance_scaling_modes",
    "widths",
]
