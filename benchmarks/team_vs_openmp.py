"""The threaded matmul's worker team (csrc/team.c) against the OpenMP region it replaced, in one process.

    .venv/bin/python benchmarks/team_vs_openmp.py [n ...]      (default: 256 512 1024)

Each extension module has its own copy of the C code, and each reads TINYGRAD_REP_TEAM once, at its
first threaded product: the cffi module is made to read 0 (OpenMP) and the pybind11 module 1 (the
team), so both paths run in the same process, 2 threads each, on the same operands.

- back to back: rounds of 6 calls after settle() (the process's other threads idle, so every
  round starts with sleeping workers), the two modules alternating which goes first; per call
  position, the median over the rounds. The team's worker spins briefly after the first call
  (1/64 of it, at most 20 us) and longer after each later one (they come back to back);
  OpenMP's sleeps after every call.
- alternating with numpy: loops of pairs (ours, then numpy's np.dot with 2 OpenBLAS threads);
  median time per pair over the loops. Here the team's workers must not spin long: numpy's
  threads need the cores.
"""
import os
import statistics
import sys
import time

import peers
from timing import settle

ROUNDS = 30
CALLS = 6


def main(sizes):
    peers.prepare_process_env(2)
    import numpy as np
    from tinygrad_rep.backend import cffi as openmp_module
    from tinygrad_rep.backend import pybind as team_module
    rng = np.random.default_rng(0)
    print(f"threads: 2 (ours and numpy's), team: pybind11 module, OpenMP: cffi module, {ROUNDS} rounds")
    for n in sizes:
        a = rng.standard_normal((n, n)).astype(np.float32)
        out = np.empty_like(a)
        for module, team in ((openmp_module, "0"), (team_module, "1")):
            os.environ["TINYGRAD_REP_TEAM"] = team   # read by the module at its first threaded call
            module.set_num_threads(2)
            module.matmul(a, a, out=out)
        paths = {"team": team_module.matmul, "OpenMP": openmp_module.matmul}
        per_call = {name: [[] for _ in range(CALLS)] for name in paths}
        for r in range(ROUNDS):
            for name in (("team", "OpenMP") if r % 2 else ("OpenMP", "team")):
                settle()
                for k in range(CALLS):
                    t = time.perf_counter()
                    paths[name](a, a, out=out)
                    per_call[name][k].append(time.perf_counter() - t)
        print(f"{n}^3 back to back, median per call position 1..{CALLS} (us):")
        for name, times in per_call.items():
            print(f"  {name:7s}" + "".join(f" {statistics.median(t) * 1e6:9.1f}" for t in times))
        other = np.empty_like(a)
        pairs = max(10, int(0.2 / max(per_call["OpenMP"][-1])))
        loops = {name: [] for name in paths}
        for r in range(10):
            for name in (("team", "OpenMP") if r % 2 else ("OpenMP", "team")):
                settle()
                t = time.perf_counter()
                for _ in range(pairs):
                    paths[name](a, a, out=out)
                    np.dot(a, a, out=other)
                loops[name].append((time.perf_counter() - t) / pairs)
        print(f"{n}^3 alternating with numpy, median per pair over 10 loops of {pairs} pairs (us): "
              + ", ".join(f"{name} {statistics.median(v) * 1e6:.1f}" for name, v in loops.items()))


if __name__ == "__main__":
    main([int(x) for x in sys.argv[1:]] or [256, 512, 1024])
