"""The cell kinds of a study, declared once, and :func:`run_cell`, which computes one cell.

:data:`CELL_KINDS` holds one :class:`CellKind` per kind (``simulate``,
``jacobian``, ``train``, ``pair``): the parameter schema, required keys and defaults
that :mod:`initsim.study.spec` validates a spec against, the runner that
computes a cell, and the loader that turns a cell's stored arrays back into
a result object for :mod:`initsim.study.results`. A new kind of cell is one
entry here.

:func:`run_cell` is the function executors ship to workers, so it takes and
returns only picklable plain data (a cell as a dict, numpy arrays, JSON-ready
metadata) and depends on nothing but the cell and the study seed. One lock
per process serialises cells, so a Dask worker running several tasks at once
never enters two numba parallel regions concurrently (the workqueue threading
layer is not thread-safe) and never uses more than its share of cores.

A ``pair`` cell sends two inputs of correlation ``c0`` through many deep
vanilla nets (:func:`initsim.shaping_check.propagate_pair`) with a built-in
activation or its DKS/TAT shaping (:func:`initsim.theory.dks`,
:func:`initsim.theory.tat`, built by :func:`pair_activation` from the cell's
``shaping`` and its parameters; :data:`PAIR_SHAPINGS` says which parameters
each shaping takes). It stores ``k11``, ``k22`` and ``k12`` per net and
layer; its loader rebuilds the :class:`~initsim.shaping_check.PairResult`
with the propagated activation (the shaping from its recorded transform), so
:func:`initsim.shaping_check.check_pair` reads a stored cell as a fresh run.

Importing this module loads only numpy: the runners and loaders import the
simulator, the trainer, scipy and Numba inside their bodies, so the spec
validator (which reads :data:`CELL_KINDS`) stays light.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from initsim import keywords
from initsim.provenance import json_safe, numba_threads, threading_layer, versions

__all__ = [
    "CELL_KINDS",
    "PAIR_SHAPINGS",
    "CellKind",
    "CellValueError",
    "TrainCellResult",
    "cell_seed",
    "pair_activation",
    "run_cell",
]

_LOCK = threading.Lock()

#: A runner: ``(cell, seed sequence, threads) -> (arrays, meta)``.
Runner = Callable[
    [Mapping[str, Any], np.random.SeedSequence, "int | None"],
    tuple[dict[str, np.ndarray], dict[str, Any]],
]
#: A loader: ``(stored arrays, provenance) -> result object``.
Loader = Callable[[Mapping[str, np.ndarray], dict[str, Any]], Any]
#: A validator: ``(params, checks) -> None``; raises :class:`CellValueError`.
Validator = Callable[[Mapping[str, Any], "Mapping[str, Any] | None"], None]


class CellValueError(ValueError):
    """A cell's parameters fail the checks its runner would apply.

    Parameters
    ----------
    key : str or None
        The parameter at fault (dotted for a key of a table, e.g.
        ``"data.n_out"``), or None when no single key is.
    message : str
        What is wrong (names the parameter and the valid range).
    """

    def __init__(self, key: str | None, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class CellKind:
    """Everything the study machinery knows about one kind of cell.

    Attributes
    ----------
    params : mapping of str to str
        Parameter schema: key -> the name of the rule that
        :mod:`initsim.study.spec` checks its value with (``"pos_int"``,
        ``"widths"``, ``"choice:a,b"``, ...). Only these keys are accepted
        in an experiment, its cases and its grid.
    required : tuple of str
        Keys every cell of this kind must end up with.
    defaults : mapping of str to Any
        Values a cell gets unless ``[defaults]`` or the experiment sets them
        (part of the resolved parameters, hence of the spec hash).
    run : callable
        ``run(cell, seed_sequence, threads) -> (arrays, meta)``: computes the
        cell; ``meta`` is ``{"provenance": ..., "checks": ...}``.
    load : callable
        ``load(arrays, provenance) -> result``: rebuilds the result object
        from the arrays ``run`` returned (as stored on disk).
    checks : bool
        Whether an experiment of this kind may ask for ``[experiment.checks]``.
    validate : callable or None
        ``validate(params, checks)``: applies, without computing anything,
        every check ``run`` would apply to a resolved cell (and, for a
        checked cell, the preconditions of :func:`initsim.checks.check`);
        raises :class:`CellValueError` naming the key. The spec validator
        calls it on every cell, so a spec never fails at run time on its
        arguments.
    """

    params: Mapping[str, str]
    required: tuple[str, ...]
    defaults: Mapping[str, Any]
    run: Runner
    load: Loader
    checks: bool = False
    validate: Validator | None = None


@dataclass(frozen=True)
class TrainCellResult:
    """Arrays of a training cell (``repeats`` independent nets).

    Attributes
    ----------
    loss : numpy.ndarray (repeats, steps + 1)
        Training loss before each step and after the last.
    unit_distance : numpy.ndarray (repeats, steps + 1, hidden layers)
        Smallest distance between two units of a layer (0: identical units).
    grad_norms : numpy.ndarray (repeats, steps, layers)
        Gradient norm per layer and step.
    provenance : dict
        Seed, configuration, versions.
    """

    loss: np.ndarray
    unit_distance: np.ndarray
    grad_norms: np.ndarray
    provenance: dict[str, Any] = field(default_factory=dict)


# Sub-streams of a training cell (appended to the cell's spawn key).
_TRAIN_DATA, _TRAIN_INIT, _TRAIN_BATCHES = 0, 1, 2


def cell_seed(seed: int, spawn_key: tuple[int, ...] | list[int]) -> np.random.SeedSequence:
    """Return the seed sequence of a cell.

    Parameters
    ----------
    seed : int
        The study's seed (entropy).
    spawn_key : tuple of int
        The cell's spawn key.

    Returns
    -------
    numpy.random.SeedSequence
        ``SeedSequence(seed, spawn_key=spawn_key)``: depends on nothing else,
        so a cell gives the same numbers on any executor.
    """
    return np.random.SeedSequence(seed, spawn_key=tuple(int(k) for k in spawn_key))


def _named(module: Any, value: Any) -> Any:
    if isinstance(value, list):  # a residual branch: one initializer per layer
        return [_named(module, v) for v in value]
    if isinstance(value, Mapping):
        params = {k: v for k, v in value.items() if k != "name"}
        return module.get(value["name"], **params)
    return module.get(value)


def _resolved(params: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments with ``init``/``activation`` names or tables turned into objects."""
    from initsim import activations, initializers

    kwargs = dict(params)
    if "init" in kwargs:
        kwargs["init"] = _named(initializers, kwargs["init"])
    if "activation" in kwargs:
        kwargs["activation"] = _named(activations, kwargs["activation"])
    return kwargs


# ----------------------------------------------------------------------------------
# Runners and loaders, one pair per kind
# ----------------------------------------------------------------------------------


def _simulate_cell(cell: Mapping[str, Any], ss: np.random.SeedSequence, threads: int | None):
    from initsim.checks import check
    from initsim.simulation import simulate

    result = simulate(**_resolved(cell["params"]), seed=ss, threads=threads, progress=False)
    arrays = result.to_arrays()
    meta: dict[str, Any] = {"provenance": result.provenance, "checks": None}
    if cell.get("checks"):
        report = check(result, alpha=cell["checks"]["alpha"], claims=cell["checks"]["claims"])
        meta["checks"] = report.to_dict()
    return arrays, meta


def _load_simulate(arrays: Mapping[str, np.ndarray], provenance: dict[str, Any]) -> Any:
    from initsim.result import ResidualResult, SimulationResult

    if provenance.get("config", {}).get("arch") == "residual":
        return ResidualResult.from_arrays(arrays, provenance)
    return SimulationResult.from_arrays(arrays, provenance)


def _jacobian_cell(cell: Mapping[str, Any], ss: np.random.SeedSequence, threads: int | None):
    from initsim.jacobian import jacobian_spectrum

    spec = jacobian_spectrum(**_resolved(cell["params"]), seed=ss, threads=threads)
    meta = {"provenance": spec.provenance, "checks": None}
    return {"singular_values": spec.singular_values}, meta


def _load_jacobian(arrays: Mapping[str, np.ndarray], provenance: dict[str, Any]) -> Any:
    from initsim.jacobian import JacobianSpectrum

    return JacobianSpectrum(singular_values=arrays["singular_values"], provenance=provenance)


_TRAIN_SAMPLES = 256  # data.n_samples of teacher and mixture data unless set


def _data_call(data: Mapping[str, Any], n_in: int, n_out: int) -> tuple[str, dict[str, Any]]:
    """Return a train cell's data kind and its maker's arguments (all but the seed)."""
    kind = data["kind"]
    opts = {k: v for k, v in data.items() if k != "kind"}
    if kind == "teacher":
        if isinstance(opts.get("activation"), Mapping):
            from initsim import activations

            opts["activation"] = _named(activations, opts["activation"])
        n_samples = opts.pop("n_samples", _TRAIN_SAMPLES)
        return kind, {
            "n_samples": n_samples,
            "n_in": n_in,
            "n_out": opts.pop("n_out", n_out),
            **opts,
        }
    if kind == "mixture":
        n_samples = opts.pop("n_samples", _TRAIN_SAMPLES)
        n_classes = opts.pop("n_classes", n_out)
        return kind, {"n_samples": n_samples, "n_in": n_in, "n_classes": n_classes, **opts}
    return kind, {}


def _teacher_n_out(args: Mapping[str, Any], n_out: int) -> None:
    if args["n_out"] != n_out:
        raise CellValueError(
            "data.n_out", f"data.n_out ({args['n_out']}) must equal sizes[-1] ({n_out})"
        )


def _digits_inputs(inputs: int, n_in: int) -> None:
    if inputs != n_in:
        raise CellValueError("sizes", f"data kind 'digits' has {inputs} inputs; sizes[0] is {n_in}")


def _train_data(data: Mapping[str, Any], n_in: int, n_out: int, ss: np.random.SeedSequence):
    from initsim import train as tr

    kind, args = _data_call(data, n_in, n_out)
    if kind == "teacher":
        _teacher_n_out(args, n_out)
        return tr.teacher_data(**args, seed=ss)
    if kind == "mixture":
        return tr.mixture_data(**args, seed=ss)
    X, y = tr.digits_data()
    _digits_inputs(X.shape[1], n_in)
    return X, y


def _train_cell(cell: Mapping[str, Any], ss: np.random.SeedSequence, threads: int | None):
    from initsim import activations, initializers
    from initsim import train as tr

    p = cell["params"]
    sizes = list(p["sizes"])
    key = tuple(ss.spawn_key)
    child = lambda *k: np.random.SeedSequence(ss.entropy, spawn_key=(*key, *k))  # noqa: E731
    X, Y = _train_data(p["data"], sizes[0], sizes[-1], child(_TRAIN_DATA))
    init = _named(initializers, p["init"])
    activation = _named(activations, p["activation"])
    bias = (
        p["bias"] if not isinstance(p["bias"], str | Mapping) else _named(initializers, p["bias"])
    )
    losses, distances, norms = [], [], []
    started = time.perf_counter()
    with numba_threads(threads) as used_threads:
        for r in range(int(p["repeats"])):
            mlp = tr.init_mlp(sizes, init, activation, bias=bias, seed=child(_TRAIN_INIT, r))
            out = tr.train(
                mlp,
                X,
                Y,
                lr=p["lr"],
                steps=p["steps"],
                batch_size=p.get("batch_size"),
                loss=p["loss"],
                seed=child(_TRAIN_BATCHES, r),
            )
            losses.append(out.loss)
            distances.append(out.unit_distance)
            norms.append(out.grad_norms)
    arrays = {
        "loss": np.stack(losses),
        "unit_distance": np.stack(distances),
        "grad_norms": np.stack(norms),
    }
    provenance = {
        "seed_entropy": str(ss.entropy),
        "spawn_key": list(key),
        "config": {k: v for k, v in p.items()},
        "threads": used_threads,
        "threading_layer": threading_layer(),
        "elapsed_s": time.perf_counter() - started,
        "versions": versions(),
    }
    return arrays, {"provenance": provenance, "checks": None}


def _load_train(arrays: Mapping[str, np.ndarray], provenance: dict[str, Any]) -> TrainCellResult:
    return TrainCellResult(
        loss=arrays["loss"],
        unit_distance=arrays["unit_distance"],
        grad_norms=arrays["grad_norms"],
        provenance=provenance,
    )


# ----------------------------------------------------------------------------------
# Validators, one per kind: the runner's checks, nothing computed
# ----------------------------------------------------------------------------------


def _key_in(message: str, keys: Mapping[str, str | None]) -> str | None:
    """Return the key whose name occurs first (as a word) in ``message``; None if none does."""
    hits = []
    for name, key in keys.items():
        m = re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", message)
        if m:
            hits.append((m.start(), key))
    return min(hits, key=lambda h: h[0])[1] if hits else None


def _keyed(keys: Mapping[str, str | None], call: Callable[..., Any], *args: Any, **kwargs: Any):
    """Call ``call``; turn its ValueError into a CellValueError naming the key it mentions."""
    try:
        return call(*args, **kwargs)
    except CellValueError:
        raise
    except ValueError as exc:
        raise CellValueError(_key_in(str(exc), keys), str(exc)) from None


@functools.lru_cache(maxsize=1024)
def _named_json(module: str, value: str) -> Any:
    """``_named`` of a JSON-encoded name or table (cells of a grid share a few)."""
    from initsim import activations, initializers

    return _named(initializers if module == "init" else activations, json.loads(value))


def _plan(kwargs: Mapping[str, Any], keys: Mapping[str, str | None], **extra: Any) -> Any:
    """make_plan's checks on a cell (and, for the dense sampler, its law table)."""
    from initsim.plan import make_plan

    resolved = dict(kwargs)
    for key in ("init", "activation"):  # objects are immutable: one per distinct value
        if key in resolved:
            text = json.dumps(resolved[key], sort_keys=True)
            resolved[key] = _keyed(keys, _named_json, key, text)
    if resolved.get("arch") == "residual":
        from initsim.residual import make_residual_plan

        resolved.pop("arch")
        return _keyed(keys, make_residual_plan, **resolved, **extra)
    resolved.pop("arch", None)
    for key in keywords.RESIDUAL_KEYS:
        if key in resolved:
            if resolved[key] != keywords.SIMULATE[key].default:
                raise CellValueError(key, f'{key} applies to arch = "residual" only')
            resolved.pop(key)
    plan = _keyed(keys, make_plan, **resolved, **extra)
    if plan.method == "dense":  # the dense kernels' encoding of the law (e.g. not dirac)
        try:
            _ = plan.law_table
        except ValueError as exc:
            raise CellValueError("init", f"init: {exc}") from None
    return plan


def _validate_simulate(params: Mapping[str, Any], checks: Mapping[str, Any] | None) -> None:
    keys = {k: k for k in keywords.SIMULATE}
    plan = _plan(params, keys)
    if not checks:
        return
    if params.get("arch") == "residual":
        from initsim.checks import MIN_NETS

        if plan.nets < MIN_NETS:
            raise CellValueError(
                "nets", f"checks need at least {MIN_NETS} nets; the cell has {plan.nets}"
            )
        return
    from types import SimpleNamespace

    from initsim.checks import MIN_NETS, theory_inputs

    if plan.nets < MIN_NETS:
        raise CellValueError(
            "nets", f"checks need at least {MIN_NETS} nets; the cell has {plan.nets}"
        )
    # what check() reads of a result: its provenance config, which is the plan's
    _, reason = theory_inputs(SimpleNamespace(provenance={"config": plan.simulate_config()}))
    if reason is not None:
        key = _key_in(reason, {"input": "input", "initializer": "init", "init": "init"})
        raise CellValueError(key or "init", f"checks: {reason}")


def _validate_jacobian(params: Mapping[str, Any], checks: Mapping[str, Any] | None) -> None:
    # jacobian_spectrum's own defaults (activation "linear"), then the dense sampler's plan
    kwargs = {
        k: kw.default for k, kw in keywords.JACOBIAN.items() if k not in keywords.JACOBIAN_REQUIRED
    }
    kwargs.update(params)
    keys = {k: k for k in keywords.JACOBIAN}
    _plan({**kwargs, "method": "dense"}, keys, kernel="jacobian")


_DIGITS_LOADABLE: list[bool] = []  # set once sklearn.datasets imported in this process


def _import_digits_loader() -> None:
    """Import what :func:`initsim.train.digits_data` imports, as the run would.

    Finding a ``sklearn`` package is not enough: a broken or partial
    install (or one hidden from this environment) fails only on import.

    Raises
    ------
    ImportError
        Saying that scikit-learn is needed, why it cannot be imported, and how
        to install it.
    """
    if _DIGITS_LOADABLE:
        return
    import importlib

    try:
        importlib.import_module("sklearn.datasets").load_digits  # noqa: B018
    except (ImportError, AttributeError) as exc:
        raise ImportError(
            "digits data need scikit-learn (sklearn.datasets.load_digits), which cannot be "
            f"imported here ({type(exc).__name__}: {exc}); initsim does not depend on it: "
            "install it with `pip install scikit-learn`"
        ) from None
    _DIGITS_LOADABLE.append(True)


def _validate_train(params: Mapping[str, Any], checks: Mapping[str, Any] | None) -> None:
    from initsim import activations, initializers
    from initsim import train as tr

    p = params
    sizes = list(p["sizes"])
    n_in, n_out = sizes[0], sizes[-1]
    kind, args = _keyed({"activation": "data.activation"}, _data_call, p["data"], n_in, n_out)
    data_keys: dict[str, str | None] = {k: f"data.{k}" for k in args if k != "n_in"}
    data_keys["n_in"] = "sizes"
    if kind == "teacher":
        _teacher_n_out(args, n_out)
        _keyed(data_keys, tr.check_teacher_args, **args)
        n_samples, fit = args["n_samples"], {"targets": args["n_out"]}
    elif kind == "mixture":
        if "n_classes" not in p["data"] and n_out < 2:
            raise CellValueError(
                "sizes",
                f"data kind 'mixture' has n_classes = sizes[-1] = {n_out} unless data.n_classes "
                "is set; mixture data need n_classes >= 2",
            )
        _keyed(data_keys, tr.check_mixture_args, **args)
        n_samples = args["n_samples"]
        # labels are i % n_classes for i < n_samples
        fit = {"classes": min(args["n_classes"], n_samples)}
    else:
        try:
            n_samples, inputs, classes = tr.check_digits_args()
            _import_digits_loader()
        except ImportError as exc:
            raise CellValueError("data", f"data kind 'digits': {exc}") from None
        _digits_inputs(inputs, n_in)
        fit = {"classes": classes}
    mlp_keys = {k: k for k in ("sizes", "init", "activation", "bias")}
    bias = p["bias"]
    if isinstance(bias, str | Mapping):
        bias = _keyed({"bias": "bias"}, _named, initializers, bias)
    _keyed(
        mlp_keys,
        tr.check_mlp_args,
        sizes,
        _keyed({"init": "init"}, _named, initializers, p["init"]),
        _keyed({"activation": "activation"}, _named, activations, p["activation"]),
        bias=bias,
    )
    train_keys = {k: k for k in ("lr", "steps", "batch_size", "loss")}
    loss = p["loss"]
    _keyed(
        train_keys,
        tr.check_train_args,
        n_samples,
        lr=p["lr"],
        steps=p["steps"],
        batch_size=p.get("batch_size"),
        loss=loss,
    )
    try:
        tr.check_data_fits(loss, n_out, **fit)
    except ValueError as exc:
        raise CellValueError("loss", f"data kind {kind!r} with {exc}") from None


# ----------------------------------------------------------------------------------
# Pair cells: two inputs through deep vanilla nets, a built-in activation or its shaping
# ----------------------------------------------------------------------------------

#: The shapings a pair cell may ask for and the parameters each takes (any other of
#: ``zeta``, ``eta``, ``tau`` is refused); unset, they take dks/tat's own defaults.
PAIR_SHAPINGS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"none": (), "dks": ("zeta",), "tat": ("eta", "tau")}
)
_SHAPING_KEYS = ("zeta", "eta", "tau")
#: TAT's rectifier branch (a leaky-ReLU shaping for C_net(0) = eta); others take tau.
_TAT_RECTIFIERS = ("relu", "leaky_relu")
#: What the kernels of one net keep besides the results: two inputs' signals, twice.
_PAIR_WORDS_PER_UNIT = 8


@functools.lru_cache(maxsize=256)
def _shaped(activation: str, shaping: str, depth: int, args: str) -> Any:
    """dks/tat of a JSON-encoded activation (cells of a grid share a few; each is a solve)."""
    from initsim import theory

    act = _named_json("activation", activation)
    method = theory.dks if shaping == "dks" else theory.tat
    return method(act, depth, **json.loads(args))


def pair_activation(params: Mapping[str, Any]) -> Any:
    """Return what a pair cell propagates: its activation, or that activation's shaping.

    Parameters
    ----------
    params : mapping
        A pair cell's resolved parameters: ``activation`` (a name or a
        table), ``shaping`` (``"none"``, ``"dks"`` or ``"tat"``), ``depth``,
        and the shaping's own parameters (:data:`PAIR_SHAPINGS`) where set.

    Returns
    -------
    Activation or Shaping
        ``shaping = "none"``: the activation; otherwise
        ``initsim.theory.dks(activation, depth, zeta=...)`` or
        ``initsim.theory.tat(activation, depth, eta=..., tau=...)`` (the
        shaping is for the cell's own depth).

    Raises
    ------
    CellValueError
        Naming the key: an unknown activation, a shaping parameter given to
        the wrong shaping (or ``eta`` to TAT of a smooth activation, ``tau``
        to TAT of a rectifier), a value dks/tat refuses, or a shaping they
        cannot solve.
    """
    shaping = params.get("shaping", "none")
    if shaping not in PAIR_SHAPINGS:
        raise CellValueError(
            "shaping",
            f"shaping must be one of {', '.join(map(repr, PAIR_SHAPINGS))}; got {shaping!r}",
        )
    for key in _SHAPING_KEYS:
        if key in params and key not in PAIR_SHAPINGS[shaping]:
            users = [name for name, keys in PAIR_SHAPINGS.items() if key in keys]
            raise CellValueError(
                key,
                f'{key} applies to shaping = "{users[0]}" only; this cell has '
                f"shaping = {shaping!r}",
            )
    keys = {"activation": "activation"}
    text = json.dumps(params["activation"], sort_keys=True)
    act = _keyed(keys, _named_json, "activation", text)
    if shaping == "none":
        return act
    args = {k: params[k] for k in PAIR_SHAPINGS[shaping] if k in params}
    if shaping == "tat":
        rectifier = act.name in _TAT_RECTIFIERS
        wrong = "tau" if rectifier else "eta"
        if wrong in args:
            what = (
                "TAT of relu/leaky_relu sets C_net(0) = eta"
                if rectifier
                else f"TAT of {act.name} sets C_net''(1) = tau"
            )
            raise CellValueError(wrong, f"{wrong} does not apply here: {what}")
    keys.update({k: k for k in (*_SHAPING_KEYS, "depth")})
    try:
        return _keyed(keys, _shaped, text, shaping, params["depth"], json.dumps(args))
    except CellValueError as exc:  # no key named (no solution found): the shaping's
        if exc.key is None:
            raise CellValueError("shaping", f"shaping = {shaping!r}: {exc}") from None
        raise


def _pair_call(params: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Return the activation and keyword arguments of a pair cell's propagate_pair, checked."""
    from initsim._validate import check_int, check_real
    from initsim.plan import MAX_DEPTH, MAX_LAYER_DRAWS, check_width

    keys = {k: k for k in _PAIR_PARAMS}
    depth = _keyed(keys, check_int, "depth", params["depth"], maximum=MAX_DEPTH)
    width = _keyed(keys, check_width, "width", params["width"])
    nets = _keyed(keys, check_int, "nets", params["nets"])
    c0 = _keyed(keys, check_real, "c0", params["c0"], minimum=-1.0)
    if c0 > 1.0:
        raise CellValueError("c0", f"c0 must be a correlation in [-1, 1]; got {c0}")
    sigma_w2 = _keyed(keys, check_real, "sigma_w2", params["sigma_w2"], minimum=0.0, strict=True)
    if params["shaping"] != "none" and sigma_w2 != 1.0:
        raise CellValueError(
            "sigma_w2",
            f"sigma_w2: a {params['shaping']} shaping is solved for Var(W_ij) = 1/n "
            f"(sigma_w2 = 1), and its maps assume it; got sigma_w2 = {sigma_w2:g}",
        )
    if 2.0 * width > MAX_LAYER_DRAWS:
        raise CellValueError(
            "width",
            f"width {width}: a layer draws 2 x width random numbers from one substream, "
            f"more than the {MAX_LAYER_DRAWS} it holds",
        )
    _check_pair_memory(nets, depth, width)
    act = pair_activation(params)
    kwargs = {"width": width, "c0": c0, "sigma_w2": sigma_w2, "nets": nets}
    return act, {"depth": depth, **kwargs}


def _check_pair_memory(nets: int, depth: int, width: int) -> None:
    """Refuse a pair cell whose arrays the machine cannot hold (before anything is allocated)."""
    from initsim.plan import BASE_BYTES, WORD, available_memory, threads_for

    # the kernel's (nets, depth, 3) statistics and their three per-kernel copies
    results = 2 * 3 * nets * depth * WORD
    kernels = threads_for(None) * _PAIR_WORDS_PER_UNIT * width * WORD
    need = results + kernels
    if need <= 64 << 20:
        return  # what any machine has: no probe
    available = available_memory()
    if available is not None and need + BASE_BYTES > available:
        key, what = ("nets", "nets or depth") if results >= kernels else ("width", "width")
        raise CellValueError(
            key,
            f"{key}: the cell needs about {need / 2**30:.3g} GiB of memory (6 numbers per "
            f"net and layer, and two signals of width {width} per thread) but about "
            f"{available / 2**30:.3g} GiB are available: reduce {what}",
        )


def _shaping_record(act: Any, params: Mapping[str, Any]) -> dict[str, Any]:
    """Return the provenance record of what a cell propagated (the loader rebuilds it from it).

    Self-contained (not read from propagate_pair's config): the cell's own parameters
    that chose it, and for a shaping its base, its transform and its conditions.
    """
    chosen = {
        k: params[k] for k in ("activation", "shaping", "depth", *_SHAPING_KEYS) if k in params
    }
    if not hasattr(act, "input_scale"):
        return {"method": "none", "params": chosen}
    return {
        "method": act.method,
        "params": chosen,
        "base": act.base.name,
        "base_param": act.base.param,
        "affine": [act.input_scale, act.input_shift, act.output_scale, act.output_shift],
        "depth": act.depth,
        "zeta": act.zeta,
        "eta": act.eta,
        "tau": act.tau,
        "targets": [[name, value] for name, value in act.targets],  # in order
        "achieved": [[name, value] for name, value in act.achieved],
    }


def _recorded_activation(record: Mapping[str, Any]) -> Any:
    """Rebuild the activation or shaping a pair cell propagated from its provenance record."""
    from initsim.activations import Activation
    from initsim.theory import Shaping

    if record["method"] == "none":
        return _named_json("activation", json.dumps(record["params"]["activation"]))
    try:
        base = Activation.from_param(record["base"], float(record["base_param"]))
    except ValueError:  # not a built-in base: solve the cell's shaping again
        return pair_activation(record["params"])
    a_in, b_in, a_out, b_out = (float(v) for v in record["affine"])
    return Shaping(
        base=base,
        input_scale=a_in,
        input_shift=b_in,
        output_scale=a_out,
        output_shift=b_out,
        method=record["method"],
        depth=int(record["depth"]),
        zeta=record.get("zeta"),
        eta=record.get("eta"),
        tau=record.get("tau"),
        targets=tuple((str(k), float(v)) for k, v in record.get("targets") or ()),
        achieved=tuple((str(k), float(v)) for k, v in record.get("achieved") or ()),
    )


def _pair_cell(cell: Mapping[str, Any], ss: np.random.SeedSequence, threads: int | None):
    from initsim.shaping_check import propagate_pair

    act, kwargs = _pair_call(cell["params"])
    result = propagate_pair(act, **kwargs, seed=ss, threads=threads)
    provenance = {
        **result.provenance,
        "shaping": _shaping_record(act, cell["params"]),
        "threading_layer": threading_layer(),
    }
    arrays = {"k11": result.k11, "k22": result.k22, "k12": result.k12}
    return arrays, {"provenance": provenance, "checks": None}


def _load_pair(arrays: Mapping[str, np.ndarray], provenance: dict[str, Any]) -> Any:
    from initsim.shaping_check import PairResult

    return PairResult(
        k11=arrays["k11"],
        k22=arrays["k22"],
        k12=arrays["k12"],
        provenance=provenance,
        activation=_recorded_activation(provenance["shaping"]),
    )


def _validate_pair(params: Mapping[str, Any], checks: Mapping[str, Any] | None) -> None:
    _pair_call(params)


# ----------------------------------------------------------------------------------
# The table
# ----------------------------------------------------------------------------------

# Parameter schemas: key -> the name of the rule the spec validator applies to its value.
# Simulate and jacobian cells take the keywords of simulate() and jacobian_spectrum(),
# declared once in initsim.keywords.
_SIMULATE_PARAMS = {k: kw.rule for k, kw in keywords.SIMULATE.items()}
_JACOBIAN_PARAMS = {k: kw.rule for k, kw in keywords.JACOBIAN.items()}
_TRAIN_PARAMS = {
    "sizes": "sizes",
    "init": "init",
    "activation": "activation",
    "bias": "bias",
    "data": "data",
    "lr": "pos_real",
    "steps": "nonneg_int",
    "batch_size": "pos_int",
    "loss": "choice:mse,cross_entropy",
    "repeats": "pos_int",
}
#: A pair cell's parameters; the defaults are propagate_pair's (a test keeps them equal).
_PAIR_PARAMS = {
    "activation": "activation",
    "shaping": "choice:" + ",".join(PAIR_SHAPINGS),
    "zeta": "pos_real",
    "eta": "pos_real",
    "tau": "pos_real",
    "depth": "pos_int",
    "width": "pos_int",
    "nets": "pos_int",
    "c0": "correlation",
    "sigma_w2": "pos_real",
}
_PAIR_DEFAULTS = {"shaping": "none", "width": 512, "nets": 200, "c0": 0.0, "sigma_w2": 1.0}
_TRAIN_DEFAULTS = {
    "init": "he_normal",
    "activation": "relu",
    "bias": 0.0,
    "lr": 0.1,
    "steps": 100,
    "loss": "mse",
    "repeats": 1,
}

#: What a cell computes: kind -> :class:`CellKind`, in the order error messages list them.
#: The first kind that has a key gives its rule for ``[defaults]``.
CELL_KINDS: Mapping[str, CellKind] = MappingProxyType(
    {
        "simulate": CellKind(
            params=MappingProxyType(_SIMULATE_PARAMS),
            required=(),
            defaults=MappingProxyType({}),
            run=_simulate_cell,
            load=_load_simulate,
            checks=True,
            validate=_validate_simulate,
        ),
        "jacobian": CellKind(
            params=MappingProxyType(_JACOBIAN_PARAMS),
            required=keywords.JACOBIAN_REQUIRED,
            defaults=MappingProxyType({}),
            run=_jacobian_cell,
            load=_load_jacobian,
            validate=_validate_jacobian,
        ),
        "train": CellKind(
            params=MappingProxyType(_TRAIN_PARAMS),
            required=("sizes", "data"),
            defaults=MappingProxyType(_TRAIN_DEFAULTS),
            run=_train_cell,
            load=_load_train,
            validate=_validate_train,
        ),
        "pair": CellKind(
            params=MappingProxyType(_PAIR_PARAMS),
            required=("activation", "depth"),
            defaults=MappingProxyType(_PAIR_DEFAULTS),
            run=_pair_cell,
            load=_load_pair,
            validate=_validate_pair,
        ),
    }
)


def run_cell(
    cell: Mapping[str, Any], seed: int, threads: int | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Compute one cell.

    Parameters
    ----------
    cell : mapping
        :meth:`initsim.study.spec.CellSpec.to_dict` of the cell.
    seed : int
        The study's seed.
    threads : int, optional
        Numba threads for this cell (default: all available).

    Returns
    -------
    arrays : dict of numpy.ndarray
        The cell's per-net arrays (what the store writes).
    meta : dict
        JSON-ready ``{"provenance": ..., "checks": CheckReport.to_dict() or None}``.
    """
    ss = cell_seed(seed, cell["spawn_key"])
    with _LOCK:
        arrays, meta = CELL_KINDS[cell["kind"]].run(cell, ss, threads)
    meta["provenance"] = json_safe(meta["provenance"])
    return {k: np.ascontiguousarray(v) for k, v in arrays.items()}, meta
