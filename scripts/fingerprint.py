"""Bit-level fingerprint of initsim's results: run before and after a refactor, diff the output.

Run: python scripts/fingerprint.py > before.json   (then again after the change)
     python scripts/fingerprint.py --compare before.json

Each entry is the sha256 of the raw bytes of a result's arrays (and, separately, of
its config hash), for a few configurations of every sampler (exact single input,
exact Gram with Gaussian and orthogonal weights, dense for every weight law), the
Jacobian kernel, the trainer, the mean-field theory and every shipped study spec.
A refactor that promises "no behaviour change" must leave every line unchanged.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

import initsim
from initsim import initializers, theory, train

ROOT = Path(__file__).resolve().parent.parent


def digest(*arrays: Any) -> str:
    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            h.update(b"none")
            continue
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


SIMULATE_CASES: dict[str, dict[str, Any]] = {
    "exact-single": dict(
        activation="relu",
        init="he_normal",
        depth=6,
        width=40,
        nets=30,
        backward=True,
        bias_std=0.1,
        histograms=20,
    ),
    "exact-single-tanh-gaussian-in": dict(
        activation="tanh",
        init="lecun_normal",
        depth=5,
        width=[30, 20, 40, 25, 30],
        input_dim=17,
        nets=25,
        input="gaussian",
        backward=True,
    ),
    "exact-gram": dict(
        activation="tanh",
        init="glorot_normal",
        depth=5,
        width=24,
        nets=20,
        inputs=4,
        backward=True,
        method="exact",
        histograms=10,
    ),
    "exact-gram-orthogonal": dict(
        activation="relu",
        init="orthogonal",
        depth=4,
        width=20,
        nets=15,
        inputs=3,
        backward=True,
        method="exact",
    ),
    "exact-orthogonal-single": dict(
        activation="tanh",
        init="orthogonal",
        depth=4,
        width=24,
        nets=15,
        backward=True,
        method="exact",
    ),
    "dense-uniform": dict(
        activation="relu",
        init="he_uniform",
        depth=4,
        width=20,
        nets=12,
        backward=True,
        method="dense",
        histograms=8,
    ),
    "dense-truncated": dict(
        activation="gelu",
        init=("truncated_normal", {"std": 0.3}),
        depth=3,
        width=16,
        nets=10,
        inputs=2,
        method="dense",
        backward=True,
    ),
    "dense-sparse": dict(
        activation="tanh",
        init=("sparse", {"sparsity": 0.5}),
        depth=3,
        width=16,
        nets=10,
        method="dense",
        backward=True,
    ),
    "dense-orthogonal": dict(
        activation="relu",
        init="orthogonal",
        depth=3,
        width=[16, 12, 20],
        nets=10,
        method="dense",
        backward=True,
    ),
    "dense-normal-mean": dict(
        activation="sigmoid",
        init=("normal", {"mean": 0.1, "std": 0.2}),
        depth=3,
        width=16,
        nets=10,
        inputs=3,
        method="dense",
    ),
    "dense-given-input": dict(
        activation="elu",
        init="he_normal",
        depth=3,
        width=8,
        nets=10,
        inputs=2,
        input=np.linspace(-1.0, 1.0, 16).reshape(2, 8),
        method="dense",
        backward=True,
    ),
}


def simulate_entries() -> dict[str, str]:
    out = {}
    for name, kw in SIMULATE_CASES.items():
        kw = dict(kw)
        if isinstance(kw["init"], tuple):
            kw["init"] = initializers.get(kw["init"][0], **kw["init"][1])
        r = initsim.simulate(seed=7, **kw)
        hist = r.histograms or {}
        out[f"simulate/{name}"] = digest(
            r.q,
            r.act_mean,
            r.act_var,
            r.dead_fraction,
            r.saturated_fraction,
            r.grad_sq,
            r.first_nonfinite_layer,
            hist.get("h"),
            hist.get("act"),
        )
        out[f"simulate/{name}/config"] = r.provenance["config_sha256"]
        out[f"simulate/{name}/kernel"] = r.provenance["kernel"]
        if name.startswith("exact-single"):
            rows = initsim.check(r).rows
            out[f"check/{name}"] = json.dumps(
                [
                    [w.layer, w.quantity, w.observed, w.predicted, w.p_value, w.regime, w.verdict]
                    for w in rows
                ]
            )
    return out


def other_entries() -> dict[str, str]:
    out = {}
    j = initsim.jacobian_spectrum(
        activation="tanh", init="orthogonal", depth=3, width=12, nets=6, seed=3, bias_std=0.05
    )
    out["jacobian"] = digest(j.singular_values)
    out["jacobian/config"] = j.provenance["config_sha256"]
    mlp = train.init_mlp([4, 8, 3], init="he_normal", activation="relu", seed=1)
    x, y = train.mixture_data(64, 4, 3, seed=2)
    res = train.train(mlp, x, y, loss="cross_entropy", steps=20, lr=0.1, batch_size=16, seed=3)
    out["train"] = digest(res.loss, *[w for w in res.mlp.weights])
    q = np.linspace(0.1, 3.0, 7)
    out["theory/q_map"] = digest(*[theory.q_map("tanh", 2.0, 0.1, v, 6) for v in q])
    out["theory/c_map"] = digest(theory.c_map("tanh", 1.7, 0.05, 0.3, 6))
    out["theory/fixed_point"] = repr(theory.fixed_point("tanh", 1.5, 0.05))
    out["theory/chi1"] = repr(theory.chi1("erf", 1.5, 0.05))
    out["theory/critical"] = repr(theory.critical_sigma_w2("tanh", 0.05))
    from initsim.study import read_spec

    for spec_path in sorted((ROOT / "reports").glob("*.toml")):
        out[f"spec/{spec_path.name}"] = read_spec(spec_path).sha256
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", type=Path, help="a previous output to compare against")
    args = parser.parse_args()
    entries = {**simulate_entries(), **other_entries()}
    if args.compare is None:
        json.dump(entries, sys.stdout, indent=1, sort_keys=True)
        print()
        return 0
    before = json.loads(args.compare.read_text())
    differ = sorted(k for k in before.keys() | entries.keys() if before.get(k) != entries.get(k))
    for key in differ:
        print(f"DIFFERS {key}: {before.get(key)} -> {entries.get(key)}")
    print(f"{len(entries) - len(differ)} of {len(entries)} entries identical")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
