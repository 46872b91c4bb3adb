"""The worker team that runs the threaded blocked matmul (csrc/team.c) in place of an OpenMP region.

What it must keep: the same bits as one thread and as the OpenMP path (TINYGRAD_REP_TEAM=0) at
every thread count, the team growing and shrinking in use; a working team in a child after fork()
(the parent's workers do not exist there); idle workers that leave the CPU (they spin for at most
1 ms after a call, and only after calls that came back to back); workers that take no signals.
team.c itself is driven from C by tests/c/team_stress.c: its spin policy, one caller and two at
once, pauses between calls, changing thread counts; under ThreadSanitizer where the compiler has it.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from test_kernels import BACKENDS, restore_threads, run_child  # noqa: F401  (restore_threads: a fixture)

ROOT = Path(__file__).resolve().parents[1]
LINUX_2CPU = pytest.mark.skipif(not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2,
                                reason="the team runs on Linux; this needs 2 CPUs")


def operands(n=600, seed=3, dtype=np.float32):
    rng = np.random.default_rng(seed)   # past the small path: 600^2 > 2^18 elements of C
    return rng.standard_normal((n, n)).astype(dtype), rng.standard_normal((n, n)).astype(dtype)


_BITS_PROBE = """
import hashlib, numpy as np
from tinygrad_rep.backend import pybind as be, cffi as bc
rng = np.random.default_rng(3)
a = rng.standard_normal((600, 600)).astype(np.float32)
b = rng.standard_normal((600, 600)).astype(np.float32)
d = rng.standard_normal((700, 520)).astype(np.float64)
e = rng.standard_normal((520, 530)).astype(np.float64)
out = []
for n in (2, 3, 4, 2, 1):
    for mod in (be, bc):
        mod.set_num_threads(n)
        out.append(mod.matmul(a, b).tobytes() + mod.matmul(d, e, trans_b=False).tobytes())
print(len(set(out)), hashlib.sha256(out[0]).hexdigest())
"""


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_team_gives_the_bits_of_one_thread_as_it_grows_and_shrinks(name, restore_threads):
    """2, 3, 4 threads, then 2 again (the team keeps its 3 workers, one call wakes one) and 1:
    every product the same bits."""
    be = BACKENDS[name]
    a, b = operands()
    be.set_num_threads(1)
    want = be.matmul(a, b)
    for n in (2, 3, 4, 2, 3):
        be.set_num_threads(n)
        for _ in range(3):   # back to back: the later calls find the workers spinning
            assert np.array_equal(be.matmul(a, b), want), n


def test_team_and_openmp_paths_give_the_same_bits():
    """The same products in a child with the team and in one with TINYGRAD_REP_TEAM=0 (every
    threaded product through OpenMP): one distinct result per child, and the same in both."""
    seen = []
    for setting in ("1", "0"):
        run = run_child(["-c", _BITS_PROBE], env=dict(os.environ, TINYGRAD_REP_TEAM=setting), timeout=120)
        assert run.returncode == 0, run.stderr[-2000:]
        distinct, digest = run.stdout.split()
        assert distinct == "1"
        seen.append(digest)
    assert seen[0] == seen[1]


_FORK_PROBE = """
import os, signal, numpy as np
from tinygrad_rep.backend import pybind as be
be.set_num_threads(2)
rng = np.random.default_rng(3)
a = rng.standard_normal((600, 600)).astype(np.float32)
want = be.matmul(a, a)                      # the parent's team is running now
pid = os.fork()
if pid == 0:                                # the child: no workers yet; its first call starts them
    signal.alarm(30)                        # a hung child dies (SIGALRM's default), never orphaned
    ok = all(np.array_equal(be.matmul(a, a), want) for _ in range(3))
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status), np.array_equal(be.matmul(a, a), want))
"""


@LINUX_2CPU
def test_a_forked_child_starts_a_team_of_its_own():
    """A child forked after the team started computes threaded products (the parent's workers
    are gone there: waiting on them would hang; the child's alarm then kills it, and the
    parent reports its signal), and so does the parent."""
    run = run_child(["-c", _FORK_PROBE], timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["0", "True"]


_IDLE_PROBE = """
import os, time, numpy as np
from tinygrad_rep.backend import pybind as be
be.set_num_threads(2)
a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
c = np.empty_like(a)
def others():
    return time.process_time() - time.thread_time()
busy = []
for gap in (0.0, 0.02):                     # back to back (workers spin between calls), then apart
    for _ in range(15):
        be.matmul(a, a, out=c)
        if gap:
            time.sleep(gap)
    before = others()
    time.sleep(0.2)
    busy.append(others() - before)
blocked = []
for tid in os.listdir('/proc/self/task'):
    with open(f'/proc/self/task/{tid}/status') as f:
        for line in f:
            if line.startswith('SigBlk'):
                blocked.append(int(line.split()[1], 16))
print(*busy, sum(1 for m in blocked if m & 0x2))   # 0x2: SIGINT (signal 2) blocked
"""


@LINUX_2CPU
def test_idle_workers_leave_the_cpu_and_take_no_signals():
    """After 15 products back to back, and after 15 with pauses, the other threads of the process
    use under 20 ms of CPU in the next 0.2 s (a worker spins 1 ms at most after a call, then
    sleeps; a spin that never ended would use about 0.2 s). The team's worker blocks every signal
    (SIGINT among them), so a Ctrl-C reaches Python's threads."""
    run = run_child(["-c", _IDLE_PROBE], timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    back_to_back, apart, blocking = run.stdout.split()
    assert float(back_to_back) < 0.02 and float(apart) < 0.02, run.stdout
    assert int(blocking) >= 1


def _stress_binary(tmp_path):
    """tests/c/team_stress.c with csrc/team.c: under ThreadSanitizer when the compiler can build
    and start a program with it (tried on an empty one), else a plain build. Returns (path, tsan?)."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    empty = tmp_path / "empty.c"
    empty.write_text("int main(void) { return 0; }\n")
    tsan = (subprocess.run([cc, "-fsanitize=thread", str(empty), "-o", str(tmp_path / "empty")],
                           capture_output=True).returncode == 0
            and subprocess.run([str(tmp_path / "empty")], capture_output=True, env=_stress_env()).returncode == 0)
    flags = ["-fsanitize=thread", "-O1", "-g"] if tsan else ["-O2"]
    exe = tmp_path / "team_stress"
    built = subprocess.run([cc, *flags, "-std=c11", "-Wall", "-Werror", "-I", str(ROOT / "csrc"),
                            str(ROOT / "tests" / "c" / "team_stress.c"),   # it includes team.c
                            "-o", str(exe), "-pthread"], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    return exe, tsan


def _stress_env():
    # ThreadSanitizer exits 66 on a report; under an ASan preload (scripts/sanitize.sh) a TSan
    # binary cannot start, so the preload is dropped for the child.
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    env["TSAN_OPTIONS"] = "exitcode=66 halt_on_error=1"
    return env


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the team runs on Linux")
def test_team_from_c_with_pauses_thread_counts_and_two_callers(tmp_path):
    exe, tsan = _stress_binary(tmp_path)
    run = subprocess.run([str(exe)], capture_output=True, text=True, env=_stress_env(), timeout=300)
    assert run.returncode == 0, (tsan, run.stdout[-2000:], run.stderr[-4000:])
    word, ran, refused = run.stdout.split()
    assert word == "ok" and int(ran) >= 3000 and int(ran) + int(refused) == 9000, run.stdout
