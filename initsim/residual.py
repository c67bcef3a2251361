"""Residual networks: the block, its normalization, the named schemes, and the run.

The model (what :mod:`initsim.theory.residual` assumes):

* the stream ``x^l`` has width ``n`` (``x^0`` the input, of dimension ``n``);
* block ``l`` computes a branch ``F`` of ``m = branch_layers`` dense layers
  of hidden width ``width_branch`` (default ``n``): for ``m >= 2``,
  ``F(u) = W_m phi(... phi(W_2 phi(W_1 u)))``; for ``m = 1``,
  ``F(u) = W_1 phi(u)`` (the "reduced" block); biases ``N(0, bias_std^2)``
  on every branch layer when ``bias_std > 0``;
* with a branch multiplier ``alpha`` and a skip multiplier ``skip``:
  ``norm="none"``: ``x^{l+1} = skip x^l + alpha F(x^l)``;
  ``norm="pre"``: ``x^{l+1} = skip x^l + alpha F(N(x^l))`` (Pre-LN, GPT-2);
  ``norm="post"``: ``x^{l+1} = N(skip x^l + alpha F(x^l))`` (Post-LN, the
  original Transformer, DeepNorm);
* ``N`` is LayerNorm over the units of each input (no affine, biased
  variance: ``(z - mean) / sqrt(var + eps)``), RMSNorm
  (``z / sqrt(mean(z^2) + eps)``) or BatchNorm of each unit over the ``B``
  inputs of a net (``inputs >= 2``); ``eps = 1e-5`` by default, PyTorch's;
* NF-ResNets also scale the branch input by ``1 / beta_l`` and the
  activations by ``gamma`` (``in_scale``, ``act_scale`` below).

Each branch layer may have its own initializer (``init`` a list of ``m``),
so a zero-initialised last layer or scaled inner layers are said directly.
The named schemes (:data:`SCHEMES`, :func:`scheme_settings`) fill these in.

Two samplers (:mod:`initsim.engine.residual`): the dense one draws every
branch matrix (every law of the catalogue); the exact one, for zero-mean
Gaussian, Haar-orthogonal and zero matrices, draws each ``W X`` from its
conditional law and conditions the backward pass on it
(:mod:`initsim.engine.residual_exact`), in ``O(n + width_branch)`` per
block and input instead of ``O(n * width_branch)``. ``method="auto"``
takes the exact one where it applies and costs fewer operations. Each net's
matrix ``k`` of block ``l`` uses the substreams of layer ``l * m + k`` of the
net's key, so results are bit-identical for any thread count and chunking.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from initsim import activations as _activations
from initsim import initializers as _initializers
from initsim import keywords
from initsim._validate import check_bool, check_choice, check_int, check_real

__all__ = [
    "ARCHS",
    "DEFAULT_EPS",
    "NORMS",
    "NORM_KINDS",
    "RESIDUAL_DEFAULTS",
    "SCHEMES",
    "ResidualPlan",
    "branch_fans",
    "choose_residual_method",
    "make_residual_plan",
    "run_residual",
    "scheme_settings",
]

#: Network architectures, normalization placements and kinds, and the named schemes
#: (declared once, in :mod:`initsim.keywords`).
ARCHS, NORMS, NORM_KINDS, SCHEMES = (
    keywords.ARCHS,
    keywords.NORMS,
    keywords.NORM_KINDS,
    keywords.SCHEMES,
)
#: The normalizations' epsilon (PyTorch's default for LayerNorm and BatchNorm).
DEFAULT_EPS: float = keywords.SIMULATE["eps"].default
#: The residual keywords of :func:`initsim.simulate` and their defaults.
RESIDUAL_DEFAULTS: dict[str, Any] = {
    k: keywords.SIMULATE[k].default for k in keywords.RESIDUAL_KEYS
}
#: Default ``alpha`` of the schemes that take one (LayerScale: CaiT's 0.1; NF-ResNet: 0.2).
_SCHEME_ALPHA = {"layerscale": 0.1, "nf": 0.2}
#: The keywords each scheme sets (a user may not give them too).
_SCHEME_SETS: dict[str, tuple[str, ...]] = {
    "skipinit": (),
    "rezero": (),
    "fixup": ("init",),
    "layerscale": ("norm",),
    "gpt2": ("init", "norm"),
    "deepnorm": ("init", "norm", "skip"),
    "nf": ("init", "norm"),
    "stable": (),
}


def _per_block(name: str, value: Any, blocks: int, *, minimum: float | None) -> np.ndarray:
    """Return a float or one float per block, finite (and >= ``minimum``), as an array."""
    if isinstance(value, Sequence | np.ndarray) and not isinstance(value, str):
        values = list(value)
        if len(values) != blocks:
            raise ValueError(
                f"{name} as a list must give one value per block: expected {blocks} "
                f"(depth), got {len(values)}"
            )
    else:
        values = [value] * blocks
    out = [check_real(name, v, minimum=minimum) for v in values]
    return np.array(out, dtype=np.float64)


def branch_fans(width: int, width_branch: int, branch_layers: int) -> list[tuple[int, int]]:
    """Return ``(fan_in, fan_out)`` of each branch layer of a residual block.

    Parameters
    ----------
    width, width_branch, branch_layers : int
        ``n``, ``n_b`` and ``m``.

    Returns
    -------
    list of tuple of int
        ``(n, n_b), (n_b, n_b), ..., (n_b, n)``; ``[(n, n)]`` for ``m = 1``.
    """
    n, nb, m = width, width_branch, branch_layers
    if m == 1:
        return [(n, n)]
    return [((n if k == 0 else nb), (n if k == m - 1 else nb)) for k in range(m)]


def scheme_settings(
    scheme: str,
    *,
    blocks: int,
    branch_layers: int,
    activation: str | _activations.Activation = "relu",
    alpha: float | None = None,
) -> dict[str, Any]:
    """Return what a named residual scheme sets: initializers, alpha, skip, norm, scales.

    Parameters
    ----------
    scheme : str
        One of :data:`SCHEMES`:

        * ``"skipinit"`` / ``"rezero"``: ``alpha = 0`` (De & Smith 2020;
          Bachlechner et al. 2020), so every block starts as the identity;
        * ``"fixup"``: the last branch layer zero, the others He-normal
          scaled by ``L^(-1/(2m-2))`` (Zhang, Dauphin & Ma 2019; needs
          ``m >= 2``; Fixup's scalar biases and multiplier are not modelled);
        * ``"layerscale"``: ``alpha`` = the LayerScale init value (default 0.1,
          CaiT's for depth <= 18; Touvron et al. 2021), Pre-LN;
        * ``"gpt2"``: every branch layer N(0, 0.02^2), the last one
          N(0, (0.02 / sqrt(2 L))^2), Pre-LN (Radford et al. 2019; ``L``
          counts blocks here, GPT-2's two per transformer layer);
        * ``"deepnorm"``: Post-LN, ``skip = (2L)^(1/4)`` and Glorot-normal
          branch weights with gain ``(8L)^(-1/4)`` (Wang et al. 2022,
          encoder form);
        * ``"nf"``: NF-ResNet (Brock et al. 2021): ``x + alpha f(x / beta_l)``
          with ``beta_l = sqrt(1 + l alpha^2)`` the expected std of ``x^l``
          (unit-variance input and branch), activations times
          ``gamma = 1 / sqrt(Var phi(z))`` (:func:`initsim.theory.residual.nf_gamma`),
          ``alpha`` default 0.2. NF-ResNets standardise their weights
          (zero-mean rows), which makes ``gamma`` keep the variance; iid
          weights are not centred, so here the branch keeps the *second
          moment* instead: LeCun weights on the (unit) input, then variance
          ``1 / (gamma^2 E[phi(z)^2])`` per fan_in after each scaled
          nonlinearity (``1 - 1/pi`` for ReLU), and ``beta_l`` holds;
        * ``"stable"``: ``alpha = 1 / sqrt(L)`` (e.g. Hayou et al. 2021).
    blocks : int
        ``L``, the number of blocks.
    branch_layers : int
        ``m``.
    activation : str or Activation
        The activation (NF's gamma depends on it).
    alpha : float, optional
        The LayerScale init value or NF's alpha; other schemes set alpha
        themselves.

    Returns
    -------
    dict
        ``init`` (a list of ``m`` initializers, or None for the caller's),
        ``alpha``, ``skip``, ``norm`` (None: the caller's), ``in_scale``
        (per block), ``act_scale``, and ``sets``: the keywords the scheme
        sets (a run may not give them as well).

    Raises
    ------
    ValueError
        For an unknown scheme, ``fixup`` with one branch layer, or an
        ``alpha`` given to a scheme that sets its own.
    """
    scheme = check_choice("scheme", scheme, SCHEMES)
    L, m = blocks, branch_layers
    if alpha is not None and scheme not in _SCHEME_ALPHA:
        raise ValueError(
            f"scheme={scheme!r} sets alpha itself; alpha is the init value of "
            f"{' and '.join(map(repr, _SCHEME_ALPHA))} only"
        )
    out: dict[str, Any] = {
        "init": None,
        "alpha": 1.0,
        "skip": 1.0,
        "norm": None,
        "in_scale": np.ones(L),
        "act_scale": 1.0,
        "sets": _SCHEME_SETS[scheme],
    }
    normal = _initializers.Normal
    if scheme in ("skipinit", "rezero"):
        out["alpha"] = 0.0
    elif scheme == "fixup":
        if m < 2:
            raise ValueError("scheme='fixup' needs branch_layers >= 2 (its scale is L^(-1/(2m-2)))")
        inner = _initializers.VarianceScaling(scale=2.0 * L ** (-1.0 / (m - 1)), mode="fan_in")
        out["init"] = [inner] * (m - 1) + [_initializers.Zeros()]
    elif scheme == "layerscale":
        out["alpha"] = _SCHEME_ALPHA["layerscale"] if alpha is None else alpha
        out["norm"] = "pre"
    elif scheme == "gpt2":
        out["init"] = [normal(0.0, 0.02)] * (m - 1) + [normal(0.0, 0.02 / math.sqrt(2.0 * L))]
        out["norm"] = "pre"
    elif scheme == "deepnorm":
        out["skip"] = (2.0 * L) ** 0.25
        out["init"] = [_initializers.GlorotNormal(gain=(8.0 * L) ** -0.25)] * m
        out["norm"] = "post"
    elif scheme == "nf":
        from initsim.theory import gaussian_expectation, nf_gamma

        a = _SCHEME_ALPHA["nf"] if alpha is None else check_real("alpha", alpha, minimum=0.0)
        gamma = nf_gamma(activation)
        out["alpha"] = a
        out["in_scale"] = 1.0 / np.sqrt(1.0 + np.arange(L) * a * a)
        out["act_scale"] = gamma
        out["norm"] = "none"
        # iid weights that keep a unit second moment through the branch: LeCun on the
        # (unit) input, then 1 / E[(gamma phi(z))^2] after each scaled nonlinearity
        after = 1.0 / (gamma**2 * float(gaussian_expectation(activation, 1.0, "phi2")))
        first = [_initializers.LecunNormal()] if m >= 2 else []
        scaled = _initializers.VarianceScaling(scale=after, mode="fan_in")
        out["init"] = first + [scaled] * (m - len(first))
    else:  # stable
        out["alpha"] = 1.0 / math.sqrt(L)
    return out


@dataclass(frozen=True, eq=False)
class ResidualPlan:
    """A validated residual run (what :func:`make_residual_plan` returns).

    Attributes
    ----------
    width, width_branch, blocks, branch_layers : int
        ``n``, ``n_b``, ``L``, ``m``.
    activation : initsim.activations.Activation
        The branch nonlinearity.
    initializers : tuple of Initializer
        One per branch layer.
    laws : tuple of LawSpec
        The entry law of each branch layer (at its fans).
    alpha, skip, in_scale : numpy.ndarray (blocks,)
        Branch multiplier, skip multiplier and branch-input scale per block.
    act_scale : float
        Multiplier of the activations (NF's gamma; 1 otherwise).
    norm, norm_kind : str
        Placement and kind of the normalization.
    eps : float
        The normalization's epsilon.
    scheme : str or None
        The named scheme, if any.
    bias_std : float
        Standard deviation of the branch biases.
    nets, inputs : int
        Nets, inputs per net.
    input : str
        "sphere", "gaussian" or "array".
    input_code : int
        The kernels' input mode.
    given : numpy.ndarray
        Given inputs, unit-major, raveled (empty unless ``input == "array"``).
    backward : bool
        Whether gradients are propagated.
    saturation_threshold : float
        ``|phi'|`` below this counts as saturated.
    method, method_reason : str
        The sampler ("exact" or "dense") and why.
    threads : int or None
        Numba threads asked for.
    chunk : int
        Nets per kernel call.
    """

    width: int
    width_branch: int
    blocks: int
    branch_layers: int
    activation: _activations.Activation
    initializers: tuple[_initializers.Initializer, ...]
    laws: tuple[_initializers.LawSpec, ...]
    alpha: np.ndarray
    skip: np.ndarray
    in_scale: np.ndarray
    act_scale: float
    norm: str
    norm_kind: str
    eps: float
    scheme: str | None
    bias_std: float
    nets: int
    inputs: int
    input: str
    input_code: int
    given: np.ndarray
    backward: bool
    saturation_threshold: float
    method: str
    method_reason: str
    threads: int | None
    chunk: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def depth(self) -> int:
        """Number of blocks."""
        return self.blocks

    def fans(self, k: int) -> tuple[int, int]:
        """Return ``(fan_in, fan_out)`` of branch layer ``k`` (0-based).

        Parameters
        ----------
        k : int
            The branch layer, ``0 .. m - 1``.

        Returns
        -------
        tuple of int
            ``W_k`` maps ``fan_in -> fan_out``.
        """
        return branch_fans(self.width, self.width_branch, self.branch_layers)[k]

    def law_table(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the kernel's law codes and parameters, one row per weight matrix.

        Returns
        -------
        codes : numpy.ndarray of int64 (blocks * m,)
            Law code of matrix ``t = l * m + k``.
        params : numpy.ndarray (blocks * m, N_PARAMS)
            Its parameters.
        """
        from initsim.engine import laws

        rows = [laws.encode(spec) for spec in self.laws]
        codes = np.array([c for c, _ in rows] * self.blocks, dtype=np.int64)
        params = np.vstack([p for _, p in rows] * self.blocks)
        return codes, params

    def config(self) -> dict[str, Any]:
        """Return the run's ``config`` (its sha256 is recorded in the provenance).

        Returns
        -------
        dict
            Everything that determines the nets and what is recorded.
        """
        from initsim.provenance import json_safe

        config: dict[str, Any] = {
            "arch": "residual",
            **self.activation.config(),
            "init": [ini.name for ini in self.initializers],
            "init_params": [
                {k: json_safe(v) for k, v in ini.params.items()} for ini in self.initializers
            ],
            "width": self.width,
            "width_branch": self.width_branch,
            "depth": self.blocks,
            "branch_layers": self.branch_layers,
            "alpha": self.alpha.tolist(),
            "skip": self.skip.tolist(),
            "in_scale": self.in_scale.tolist(),
            "act_scale": self.act_scale,
            "norm": self.norm,
            "norm_kind": self.norm_kind,
            "eps": self.eps,
            "scheme": self.scheme,
            "bias_std": self.bias_std,
            "nets": self.nets,
            "inputs": self.inputs,
            "input": self.input,
            "method": self.method,
            "backward": self.backward,
            "saturation_threshold": self.saturation_threshold,
        }
        if self.input == "array":
            import hashlib

            config["input_sha256"] = hashlib.sha256(self.given.tobytes()).hexdigest()
        return config


def _initializer_list(init: Any, m: int) -> tuple[_initializers.Initializer, ...]:
    if isinstance(init, list | tuple):
        if len(init) != m:
            raise ValueError(
                f"init as a list must give one initializer per branch layer: expected "
                f"{m} (branch_layers), got {len(init)}"
            )
        items = list(init)
    else:
        items = [init] * m
    out = []
    for k, item in enumerate(items):
        try:
            out.append(_initializers.get(item))
        except (TypeError, ValueError) as err:
            where = f"init[{k}]" if isinstance(init, list | tuple) else "init"
            raise ValueError(f"{where}: {err}") from None
    return tuple(out)


def make_residual_plan(
    *,
    activation: str | _activations.Activation = "relu",
    init: Any = "he_normal",
    depth: int = 10,
    width: int = 256,
    input_dim: int | None = None,
    bias_std: float = 0.0,
    nets: int = 100,
    inputs: int = 1,
    input: str | np.ndarray = "sphere",
    method: str = "auto",
    backward: bool = False,
    threads: int | None = None,
    histograms: Any = None,
    saturation_threshold: float = 1e-2,
    chunk_size: int | None = None,
    device: str = "cpu",
    alpha: Any = None,
    skip: Any = None,
    norm: str | None = None,
    norm_kind: str = "layernorm",
    branch_layers: int = 2,
    width_branch: int | None = None,
    eps: float = DEFAULT_EPS,
    scheme: str | None = None,
) -> ResidualPlan:
    """Validate a residual run and plan it (the arguments are :func:`initsim.simulate`'s).

    Returns
    -------
    ResidualPlan
        The validated plan.

    Raises
    ------
    ValueError
        For any invalid argument; the message names it and the valid range
        or names.
    """
    from initsim.plan import MAX_DEPTH, check_width, parse_input
    from initsim.provenance import check_threads

    if device != "cpu":
        check_choice("device", device, ("cpu", "cuda"))
        raise ValueError(
            "device='cuda' runs arch='mlp' only; residual nets run on the CPU (device='cpu')"
        )
    if histograms not in (None, False):
        raise ValueError("histograms are recorded for arch='mlp' only")
    blocks = check_int("depth", depth, maximum=MAX_DEPTH)
    if not isinstance(width, int | np.integer) or isinstance(width, bool):
        raise ValueError(f"width of a residual net is the stream width, one int; got {width!r}")
    n = check_width("width", width)
    if input_dim is not None and check_width("input_dim", input_dim) != n:
        raise ValueError(
            f"input_dim of a residual net is the stream width: give {n} or leave it out; "
            f"got {input_dim!r}"
        )
    m = check_int("branch_layers", branch_layers)
    nb = n if width_branch is None else check_width("width_branch", width_branch)
    nets = check_int("nets", nets)
    inputs = check_int("inputs", inputs)
    backward = check_bool("backward", backward)
    bias_std = check_real("bias_std", bias_std, minimum=0.0)
    saturation_threshold = check_real("saturation_threshold", saturation_threshold, minimum=0.0)
    eps = check_real("eps", eps, minimum=0.0)
    norm_kind = check_choice("norm_kind", norm_kind, NORM_KINDS)
    try:
        act = _activations.get(activation)
    except TypeError as err:
        raise ValueError(f"activation: {err}") from None
    settings: dict[str, Any] = {
        "init": None,
        "alpha": 1.0,
        "skip": 1.0,
        "norm": None,
        "in_scale": np.ones(blocks),
        "act_scale": 1.0,
        "sets": (),
    }
    if scheme is not None:
        settings = scheme_settings(
            scheme, blocks=blocks, branch_layers=m, activation=act, alpha=alpha
        )
        # the default init, as the name or the object a study resolves it to, is "not given"
        try:
            default_init = isinstance(init, str | _initializers.Initializer) and (
                _initializers.get(init) == _initializers.get("he_normal")
            )
        except ValueError:  # not an initializer at all: reported as given
            default_init = False
        given = {"skip": skip, "norm": norm, "init": None if default_init else init}
        for key in settings["sets"]:
            if given.get(key) is not None:
                raise ValueError(
                    f"scheme={scheme!r} sets {key} itself; drop {key}={given[key]!r} or the scheme"
                )
        alpha = settings["alpha"]
    norm = check_choice("norm", settings["norm"] or (norm if norm is not None else "none"), NORMS)
    if norm_kind == "batchnorm" and norm != "none" and inputs < 2:
        raise ValueError(
            "norm_kind='batchnorm' normalises each unit over the inputs of a net: it needs "
            f"inputs >= 2; got inputs={inputs}"
        )
    alpha_arr = _per_block("alpha", 1.0 if alpha is None else alpha, blocks, minimum=0.0)
    skip_val = settings["skip"] if skip is None else skip
    skip_arr = _per_block("skip", skip_val, blocks, minimum=None)
    inits = settings["init"] if settings["init"] is not None else init
    initializers = _initializer_list(inits, m)
    fans = branch_fans(n, nb, m)
    laws = tuple(ini.law_spec(*f) for ini, f in zip(initializers, fans, strict=True))
    from initsim.engine import laws as _laws

    for k, spec in enumerate(laws):
        try:
            _laws.encode(spec)
        except ValueError as err:
            raise ValueError(f"init[{k}]: {err}") from None
    method, reason = choose_residual_method(method, laws, fans, inputs, backward)
    input_name, input_code, given_inputs = parse_input(input, n, inputs)
    threads = check_threads(threads)
    chunk = check_int("chunk_size", chunk_size) if chunk_size is not None else min(nets, 256)
    _check_residual_memory(n, nb, m, blocks, nets, inputs, backward, chunk, threads, method)
    return ResidualPlan(
        width=n,
        width_branch=nb,
        blocks=blocks,
        branch_layers=m,
        activation=act,
        initializers=initializers,
        laws=laws,
        alpha=alpha_arr,
        skip=skip_arr,
        in_scale=np.asarray(settings["in_scale"], dtype=np.float64),
        act_scale=float(settings["act_scale"]),
        norm=norm,
        norm_kind=norm_kind,
        eps=eps,
        scheme=scheme,
        bias_std=bias_std,
        nets=nets,
        inputs=inputs,
        input=input_name,
        input_code=input_code,
        given=given_inputs,
        backward=backward,
        saturation_threshold=saturation_threshold,
        method=method,
        method_reason=reason,
        threads=threads,
        chunk=chunk,
    )


def _exact_blocker(
    laws: Sequence[_initializers.LawSpec], fans: Sequence[tuple[int, int]], backward: bool
) -> str | None:
    """Return why the exact sampler cannot run these branch laws, or None when it can."""
    from initsim.plan import exact_applies

    for k, (spec, (fan_in, fan_out)) in enumerate(zip(laws, fans, strict=True)):
        if spec.law == "constant" and spec.value == 0.0:
            continue  # the zero matrix: W X = 0 and W^T D = 0, nothing to draw
        why = exact_applies(spec.law, float(spec.loc), backward, np.array([fan_in, fan_out]))
        if why is not None:
            return f"{why} (branch layer {k + 1}, init[{k}])"
    return None


def choose_residual_method(
    method: str,
    laws: Sequence[_initializers.LawSpec],
    fans: Sequence[tuple[int, int]],
    inputs: int,
    backward: bool,
) -> tuple[str, str]:
    """Choose the sampler of a residual run.

    Parameters
    ----------
    method : {"auto", "exact", "dense"}
        What the user asked for.
    laws : sequence of LawSpec
        The entry law of each branch layer.
    fans : sequence of (int, int)
        ``(fan_in, fan_out)`` of each branch layer (:func:`branch_fans`).
    inputs : int
        Inputs per net.
    backward : bool
        Whether gradients are propagated.

    Returns
    -------
    method : str
        "exact" or "dense".
    reason : str
        Why.

    Raises
    ------
    ValueError
        For an unknown method, or ``method="exact"`` with a branch law the
        exact sampler cannot draw (the message names the branch layer).
    """
    from initsim.plan import exact_cheaper, resolve_method

    chain = np.array([fans[0][0]] + [fan_out for _, fan_out in fans])
    law = "orthogonal" if any(spec.law == "orthogonal" for spec in laws) else "gaussian"
    return resolve_method(
        method,
        _exact_blocker(laws, fans, backward),
        lambda: exact_cheaper(law, inputs, chain),
        "method='exact' handles zero-mean Gaussian, Haar-orthogonal and zero branch "
        "matrices; this run has",
    )


def _check_residual_memory(
    n: int, nb: int, m: int, blocks: int, nets: int, inputs: int, backward: bool,
    chunk: int, threads: int | None, method: str,
) -> None:  # fmt: skip
    """Refuse a residual run larger than the machine's available memory, before any work.

    An upper estimate of what :func:`run_residual` and the kernel allocate:
    the per-net, per-block summaries and their copies; per running net, one
    weight matrix (dense) or each matrix's draw and ``G^+`` (exact, kept for
    the backward pass), and the signals of every block kept for the backward
    pass.
    """
    from initsim.plan import BASE_BYTES, WORD, check_memory, threads_for

    wide = max(n, nb)
    kept = blocks if backward else 1
    per_net = 8.0 * wide * inputs * (1 + kept)
    if method == "dense":
        per_net += wide**2
    else:
        per_net += kept * m * (wide * inputs + inputs * inputs)
    per_net += 2.0 * blocks * m * wide * inputs if backward else 0.0
    running = min(threads_for(threads), chunk)
    check_memory(
        {
            "results": float(nets) * blocks * 12 * WORD,
            "kernel_per_net": int(per_net * WORD),
            "kernels": int(per_net * running * WORD),
            "plan": blocks * m * 64,
            "base": BASE_BYTES,
        }
    )


def run_residual(plan: ResidualPlan, seed: Any, progress: bool | None) -> Any:
    """Run a residual plan chunk by chunk and wrap the result.

    Parameters
    ----------
    plan : ResidualPlan
        The validated run.
    seed : int, SeedSequence, Generator or None
        The run's seed.
    progress : bool or None
        Show a progress bar (None: when stderr is a terminal and the run is long).

    Returns
    -------
    initsim.result.ResidualResult
        Per-net, per-block summaries and provenance.
    """
    from threadpoolctl import threadpool_limits

    from initsim.engine import residual as kernel_mod
    from initsim.progress import Progress
    from initsim.provenance import (
        config_hash,
        numba_threads,
        seed_record,
        threading_layer,
        versions,
    )
    from initsim.result import ResidualResult
    from initsim.rng import net_keys, root_key
    from initsim.seeding import as_seed_sequence

    ss = as_seed_sequence(seed)
    root = root_key(ss)
    codes, params = plan.law_table()
    norm_code = {
        "none": kernel_mod.NORM_NONE,
        "pre": kernel_mod.NORM_PRE,
        "post": kernel_mod.NORM_POST,
    }[plan.norm]
    kind_code = {
        "layernorm": kernel_mod.LAYERNORM,
        "rmsnorm": kernel_mod.RMSNORM,
        "batchnorm": kernel_mod.BATCHNORM,
    }[plan.norm_kind]
    given = plan.given if plan.given.size else np.zeros(1)
    act = plan.activation
    stats = np.zeros((plan.nets, plan.blocks, kernel_mod.N_RES_STATS))
    first = np.zeros(plan.nets, dtype=np.int64)
    sampler = kernel_mod.SAMPLER_EXACT if plan.method == "exact" else kernel_mod.SAMPLER_DENSE
    bar = Progress(total=plan.nets, label=f"simulate (residual, {plan.method})", enabled=progress)
    started = time.perf_counter()
    try:
        with numba_threads(plan.threads) as used_threads, threadpool_limits(1, "blas"):
            for lo in range(0, plan.nets, plan.chunk):
                hi = min(plan.nets, lo + plan.chunk)
                kernel_mod.residual_kernel(
                    net_keys(root, lo, hi), plan.width, plan.width_branch, plan.branch_layers,
                    plan.blocks, codes, params, sampler, plan.bias_std, act.kernel,
                    plan.alpha, plan.skip, plan.in_scale, plan.act_scale, norm_code, kind_code,
                    plan.eps, plan.input_code, given, plan.inputs, plan.backward,
                    plan.saturation_threshold, stats[lo:hi], first[lo:hi],
                )  # fmt: skip
                bar.update(hi - lo)
    finally:
        bar.close()
    elapsed = time.perf_counter() - started
    config = plan.config()
    provenance = {
        **seed_record(ss, root),
        "config": config,
        "config_sha256": config_hash(config),
        "method": plan.method,
        "method_reason": plan.method_reason,
        "device": "cpu",
        "kernel": f"residual ({plan.method})",
        "threads": used_threads,
        "threading_layer": threading_layer(),
        "chunk_size": plan.chunk,
        "elapsed_s": elapsed,
        "versions": versions(),
    }
    col = {name: i for i, name in enumerate(kernel_mod.residual_stat_names())}
    return ResidualResult(
        q=stats[:, :, col["q"]].copy(),
        branch_share=stats[:, :, col["branch_share"]].copy(),
        branch_q=stats[:, :, col["branch_q"]].copy(),
        dead_fraction=stats[:, :, col["dead"]].copy(),
        saturated_fraction=stats[:, :, col["saturated"]].copy(),
        grad_sq=stats[:, :, col["grad_sq"]].copy() if plan.backward else None,
        first_nonfinite_layer=first,
        provenance=provenance,
    )
