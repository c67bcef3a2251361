"""Normal draws per second: initsim's Philox + ziggurat streams vs NumPy's Generator.

Run: python scripts/bench_rng.py [--n 20000000] [--repeats 7]

Prints the median over repeats of normals/s for
- numpy.random.Generator(PCG64).standard_normal (one thread),
- initsim.rng.fill_normals on one thread (one long substream),
- initsim per-net streams in a Numba prange over nets (all threads),
and the ratios to NumPy, measured in the same process.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numba
import numpy as np

from initsim import rng

U = np.uint64


@numba.njit(parallel=True, cache=True)
def _per_net(keys, out):
    for k in numba.prange(keys.shape[0]):
        rng.fill_normals(keys[k, 0], keys[k, 1], U(2), U(0), 0, out[k])


def _median_rate(fn, n: int, repeats: int) -> float:
    fn()  # warm-up (compilation, page faults)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return n / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000_000, help="normals per timing")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    n = args.n
    out = np.empty(n)
    gen = np.random.default_rng(0)
    r_np = _median_rate(lambda: gen.standard_normal(out=out), n, args.repeats)

    def one():
        rng.fill_normals(U(1), U(2), U(2), U(0), 0, out)

    r_one = _median_rate(one, n, args.repeats)
    nets = 2000
    per = n // nets
    keys = rng.net_keys(rng.root_key(0), 0, nets)
    buf = np.empty((nets, per))
    r_par = _median_rate(lambda: _per_net(keys, buf), nets * per, args.repeats)
    th = numba.get_num_threads()
    print(f"numpy Generator.standard_normal (1 thread): {r_np:10.3e} normals/s")
    print(
        f"initsim fill_normals (1 thread):            {r_one:10.3e} normals/s "
        f"({r_one / r_np:.2f}x numpy)"
    )
    print(
        f"initsim per-net streams ({th} threads):       {r_par:10.3e} normals/s "
        f"({r_par / r_np:.2f}x numpy)"
    )


if __name__ == "__main__":
    main()
