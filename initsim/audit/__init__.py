"""``initsim audit``: what a real PyTorch model's initialisation is, over many re-inits.

:func:`audit` builds the model ``inits`` times, each from its own torch seed
(:mod:`initsim.audit.factory`: the model's own init code runs), lists every
parameter with PyTorch's and the true fans (:mod:`initsim.audit.inventory`),
measures each one's mean, std, law and variance scheme with intervals over
the re-initialisations (:mod:`initsim.audit.laws`) and reports the
initialisation bugs it finds, each with evidence and a one-line fix
(:mod:`initsim.audit.findings`). One forward pass of the example input
checks that the model accepts it (its own error message is quoted when it
does not).

With an example input it also measures, per re-initialisation, every
module's output statistics and every parameter's gradient second moment
(:mod:`initsim.audit.dynamic`), finds which activation consumes each layer
(:mod:`initsim.audit.recognise`, ``torch.fx``) and, for a plain MLP chain,
holds each layer's ``q`` against the mean-field length map of the measured
laws (:mod:`initsim.audit.chain_theory`).

For every recognised residual block (``x + branch(x)``) it reports the
Signal Propagation Plot quantities (:class:`~initsim.audit.dynamic.SPPRow`).

:func:`initsim.audit.pdf.write_pdf` draws the report as a PDF.

Every residual addition ``a + b(a)`` that ``torch.fx`` finds (GPT-2's two
per block included) is held against the length map of its branch given the
measured skip (:mod:`initsim.audit.residual_theory`), and a model that
declares its depth is checked for GPT-2's scaled residual init.

PyTorch is an optional extra (``pip install 'initsim[torch]'``); everything
runs on the CPU.
"""

from __future__ import annotations

import math
import sys
import time
import types
from dataclasses import dataclass, field
from typing import Any

from initsim.audit.chain_theory import TheoryRow, chain_rows
from initsim.audit.dynamic import (
    DynamicTally,
    ModuleSignal,
    ParamGradient,
    SPPRow,
    spp_rows,
    summarise_dynamic,
)
from initsim.audit.factory import AuditUsageError, load_factory, torch_seeds
from initsim.audit.findings import Finding, find
from initsim.audit.inventory import Entry, entries
from initsim.audit.laws import Tally, TensorStats, summarise
from initsim.audit.recognise import consumers, residual_blocks
from initsim.audit.residual_theory import SiteTally, declared_depth, find_sites, site_rows

__all__ = [
    "AuditReport",
    "AuditUsageError",
    "Entry",
    "Finding",
    "ModuleSignal",
    "ParamGradient",
    "SPPRow",
    "TensorStats",
    "TheoryRow",
    "audit",
]


#: Family-wise level of the chain theory's rows: a FAIL is a finding, and clean models
#: must give none over 100 seeds (the false-positive budget).
THEORY_ALPHA = 1e-3


@dataclass(frozen=True)
class AuditReport:
    """What :func:`audit` found.

    Attributes
    ----------
    findings : list of Finding
        Errors first.
    tensors : list of TensorStats
        The inventory, in module order.
    provenance : dict
        Factory, how it was re-initialised, torch and initsim versions, seed,
        torch seeds, inits, the example input's shape, the output's shape,
        how the consumers were found (``torch.fx`` or module order).
    consumers : dict of str to str
        Module path -> the activation its output feeds.
    signals : list of ModuleSignal
        Per module (execution order): output ``q``, mean, variance, dead and
        saturated fractions, means and 95% intervals over re-inits (with an
        example input only).
    gradients : list of ParamGradient
        Per parameter: the gradient second moment of a random-direction loss.
    theory : list of TheoryRow
        For a recognised MLP chain: each layer's ``q`` against the length map
        of the inventory's laws (Holm-combined verdicts).
    spp : list of SPPRow
        Per recognised residual block (``x + branch(x)``): the Signal
        Propagation Plot quantities (Brock, De and Smith 2021).
    residual_theory : list of TheoryRow
        Per residual addition (:mod:`initsim.audit.residual_theory`): the
        output's ``q`` against the branch's length map given the measured skip
        (Holm-combined verdicts; ``N/A`` with the reason for an unmodelled
        branch).
    """

    findings: list[Finding]
    tensors: list[TensorStats]
    provenance: dict[str, Any] = field(default_factory=dict)
    consumers: dict[str, str] = field(default_factory=dict)
    signals: list[ModuleSignal] = field(default_factory=list)
    gradients: list[ParamGradient] = field(default_factory=list)
    theory: list[TheoryRow] = field(default_factory=list)
    spp: list[SPPRow] = field(default_factory=list)
    residual_theory: list[TheoryRow] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """Whether there is no finding."""
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        """Return the report as one JSON-safe document."""
        rows = []
        for s in self.tensors:
            e = s.entry
            rows.append(
                {
                    "tensor": e.path,
                    "module_type": e.module_type,
                    "role": e.role,
                    "shape": list(e.shape),
                    "fan_in": e.fan_in,
                    "fan_out": e.fan_out,
                    "true_fan_in": e.true_fan_in,
                    "true_fan_out": e.true_fan_out,
                    "mean": _num(s.mean),
                    "mean_interval": [_num(v) for v in s.mean_interval],
                    "std": _num(s.std),
                    "std_interval": [_num(v) for v in s.std_interval],
                    "law": s.law,
                    "constant": s.constant,
                    "scheme": s.scheme,
                    "scheme_fans": s.scheme_fans,
                    "sigma_w2": _num(s.sigma_w2) if s.sigma_w2 is not None else None,
                }
            )
        for row in rows:
            row["consumer"] = self.consumers.get(row["tensor"].rsplit(".", 1)[0])
        return {
            "findings": [f.__dict__ for f in self.findings],
            "inventory": rows,
            "signals": [
                {"module": s.path, "type": s.module_type}
                | {k: [_num(v) for v in vals] for k, vals in s.values.items()}
                for s in self.signals
            ],
            "gradients": [
                {"parameter": g.path, "grad_sq": [_num(v) for v in g.grad_sq]}
                for g in self.gradients
            ],
            "theory": [_row(r) for r in self.theory],
            "residual_theory": [_row(r) for r in self.residual_theory],
            "spp": [
                {
                    "block": r.block,
                    "channel_sq_mean": [_num(v) for v in r.channel_sq_mean],
                    "channel_var": [_num(v) for v in r.channel_var],
                    "branch_var": [_num(v) for v in r.branch_var],
                }
                for r in self.spp
            ],
            "provenance": self.provenance,
        }


def _num(x: Any) -> Any:
    """Return ``x`` JSON-safe (NaN and inf as strings)."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x


def _row(r: TheoryRow) -> dict[str, Any]:
    return {
        "layer": r.layer,
        "module": r.module,
        "observed": _num(r.observed),
        "interval": [_num(v) for v in r.interval],
        "predicted": _num(r.predicted),
        "p_value": _num(r.p_value),
        "regime": r.regime,
        "verdict": r.verdict,
    }


def _example(torch: Any, example_input: Any, input_shape: Any, tokens: Any, batch: int) -> Any:
    if example_input is not None:
        return example_input
    gen = torch.Generator().manual_seed(0)
    if tokens is not None:
        vocab, seq = tokens
        return torch.randint(0, int(vocab), (batch, int(seq)), generator=gen)
    if input_shape is not None:
        return torch.randn((batch, *(int(s) for s in input_shape)), generator=gen)
    return None


def audit(
    factory: Any,
    *,
    example_input: Any = None,
    input_shape: Any = None,
    tokens: Any = None,
    inits: int = 50,
    batch: int = 64,
    seed: Any = 0,
    scaled_residual: bool | None = None,
    progress: bool | None = None,
) -> AuditReport:
    """Audit a PyTorch model's initialisation over ``inits`` re-initialisations.

    Parameters
    ----------
    factory : str, type, callable or nn.Module
        ``"pkg.module:name"`` or the object (see
        :func:`initsim.audit.factory.load_factory`).
    example_input : torch.Tensor, optional
        A batch the model accepts; or give ``input_shape`` (one example's
        shape: a Gaussian batch of ``batch``) or ``tokens = (vocab,
        seq_len)`` (uniform token ids). Without any, no forward pass is run.
    inits : int, default 50
        Re-initialisations (at least 2: nothing is judged on one draw).
    batch : int, default 64
        Batch size of the generated input.
    seed : int or numpy.random.SeedSequence, default 0
        The audit's seed; the torch seeds derive from it.
    scaled_residual : bool, optional
        Whether the model means to scale its residual branches' output
        projections by ``1 / sqrt(N)`` (GPT-2). None (default): when the model
        declares its depth (``config.n_layer`` and the like); False: never
        check it.
    progress : bool, optional
        Show a progress bar (default: on a terminal).

    Returns
    -------
    AuditReport
        Findings, inventory and provenance.

    Raises
    ------
    AuditUsageError
        For a bad factory or input (the model's own error message is quoted),
        or bad options.
    initsim.audit._torch.TorchMissing
        Without PyTorch.
    """
    from initsim._validate import check_int
    from initsim.audit._torch import require_torch

    torch = require_torch()
    try:
        inits = check_int("inits", inits, minimum=2)
        batch = check_int("batch", batch)
    except ValueError as err:
        raise AuditUsageError(str(err)) from None
    if scaled_residual not in (None, True, False):
        raise AuditUsageError(
            f"scaled_residual must be None, True or False; got {scaled_residual!r}"
        )
    if tokens is not None and (len(tokens) != 2 or min(int(t) for t in tokens) < 1):
        raise AuditUsageError(f"tokens must be (vocab, seq_len), both >= 1; got {tokens!r}")
    reinit = load_factory(factory)
    seeds = torch_seeds(seed, inits)
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[]):  # the caller's torch RNG state is left as it was
        return _audit(torch, reinit, seeds, seed, inits, started, example_input, input_shape,
                      tokens, batch, progress, scaled_residual)  # fmt: skip


def _audit(
    torch: Any,
    reinit: Any,
    seeds: list[int],
    seed: Any,
    inits: int,
    started: float,
    example_input: Any,
    input_shape: Any,
    tokens: Any,
    batch: int,
    progress: bool | None,
    scaled_residual: bool | None,
) -> AuditReport:
    from initsim.progress import Progress
    from initsim.provenance import versions

    model = reinit.build(seeds[0])
    inventory = entries(model)
    if not inventory:
        raise AuditUsageError(f"factory {reinit.label!r} built a model without parameters")
    x = _example(torch, example_input, input_shape, tokens, batch)
    out_shape = None
    if x is not None:
        try:
            with torch.no_grad():
                y = model(x)
        except Exception as err:  # the model's own complaint about the input
            raise AuditUsageError(
                f"the model rejects the example input of shape {tuple(x.shape)}: "
                f"{type(err).__name__}: {err}"
            ) from None
        out_shape = list(y.shape) if hasattr(y, "shape") else None
    recognised = consumers(model)
    blocks = residual_blocks(model)
    sites, graphs = find_sites(model)
    depth = declared_depth(model)
    tallies = [Tally(e) for e in inventory]
    dynamic = DynamicTally()
    site_tally = SiteTally(sites, graphs)
    bar = Progress(inits, "audit: re-initialisations", enabled=progress)
    try:
        for k, torch_seed in enumerate(seeds):
            if k:
                model = reinit.build(torch_seed)
            params = dict(model.named_parameters())
            for t in tallies:
                p = params[t.entry.path.split("[")[0]].detach()
                if t.entry.rows is not None:
                    p = p[t.entry.rows]
                t.add(p.to(torch.float64).cpu().numpy())
            if x is not None:
                with site_tally.capture(model):
                    dynamic.run(torch, model, x)
                site_tally.record(torch, model)
            bar.update(1)
    finally:
        bar.close()
    stats = [summarise(t) for t in tallies]
    signals, gradients = summarise_dynamic(dynamic) if x is not None else ([], [])
    spp = spp_rows(blocks, signals)
    theory: list[TheoryRow] = []
    laws = {s.entry.path: s for s in stats}
    if x is not None and recognised.chain is not None:
        q_x = float((x.double() ** 2).mean())
        theory = chain_rows(
            recognised.chain,
            laws,
            {s.path: s.per_init_q for s in signals},
            q_x,
            alpha=THEORY_ALPHA,
        )
    residual_theory = (
        site_rows(sites, laws, site_tally, alpha=THEORY_ALPHA) if x is not None else []
    )
    growth = None
    if x is not None and sites:
        ends = [site_tally.per_init(s, s.out) for s in (sites[0], sites[-1])]
        if all(e.size for e in ends):
            growth = (float(ends[0].mean()), float(ends[1].mean()))
    residual = None
    if scaled_residual is True or (scaled_residual is None and depth is not None):
        residual = {
            "projections": [s.output_projection for s in sites if s.output_projection],
            "branches": len(sites),
            "declared": depth,
            "growth": growth,
        }
    provenance = {
        "factory": reinit.label,
        "reinit": reinit.how,
        "inits": inits,
        "seed": seed if isinstance(seed, int) else repr(seed),
        "torch_seeds": seeds,
        "input_shape": list(x.shape) if x is not None else None,
        "output_shape": out_shape,
        "versions": {**versions(), "torch": torch.__version__},
        "consumers_from": recognised.source,
        "recognised": "MLP chain" if recognised.chain is not None else None,
        "residual_additions": len(sites),
        "declared_depth": depth[1] if depth is not None else None,
        "scaled_residual": scaled_residual,
        "elapsed_s": round(time.perf_counter() - started, 3),
    }
    found = find(
        stats, recognised.chain, theory, residual_theory=residual_theory, residual=residual
    )
    return AuditReport(
        found,
        stats,
        provenance,
        recognised.consumer,
        signals,
        gradients,
        theory,
        spp,
        residual_theory,
    )


class _CallableModule(types.ModuleType):
    """The type of this package: ``initsim.audit(...)`` calls :func:`audit`.

    ``initsim.audit`` names both the package and its entry point; calling the
    package calls the function, whatever was imported first.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> AuditReport:
        return audit(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
