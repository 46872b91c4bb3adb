"""What the numbers were measured on: CPU, SIMD level our kernels dispatch to, cores, memory,
library versions, the OpenBLAS kernel numpy uses, the environment run.py changed, the git commit.
"""
import importlib.metadata
import os
import platform
import subprocess
import sys

from peers import ENV_CHANGES, optional, our_backends, cpu_count

# The repository's root when the benchmarks run from a clone (for the git commit); installed
# with the package, this is the package's folder and no commit is reported.
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cpuinfo():
    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if ":" in line:
                    key, value = (s.strip() for s in line.split(":", 1))
                    info.setdefault(key, value)
    except OSError:
        pass
    return info


def _version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_commit():
    try:
        out = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def blas_info():
    """numpy's BLAS as threadpoolctl sees it: library, version, kernel (architecture), threads."""
    tpc = optional("threadpoolctl")
    if tpc is None:
        return {"skipped": "threadpoolctl is not installed (pip install threadpoolctl): the OpenBLAS "
                           "kernel cannot be reported and its thread count is only OPENBLAS_NUM_THREADS"}
    import numpy  # noqa: F401  (loads numpy's BLAS so threadpoolctl can see it)
    blas = [lib for lib in tpc.threadpool_info() if lib.get("user_api") == "blas"]
    # torch may load a BLAS of its own (MKL): prefer the one shipped with numpy
    blas.sort(key=lambda lib: ("numpy" not in lib.get("filepath", ""), lib.get("internal_api") != "openblas"))
    if blas:
        lib = blas[0]
        return {"library": lib.get("internal_api"), "version": lib.get("version"),
                "kernel": lib.get("architecture"), "max_threads": lib.get("num_threads"),
                "threading_layer": lib.get("threading_layer"),
                "file": os.path.basename(lib.get("filepath", ""))}
    return {"skipped": "threadpoolctl found no BLAS library loaded by numpy"}


def machine_info():
    """What the numbers were measured on: CPU, SIMD level in use, cores, memory, versions."""
    cpu = _cpuinfo()
    flags = set(cpu.get("flags", "").split())
    mem_gib = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_gib = round(int(line.split()[1]) / 2 ** 20, 1)
    except OSError:
        pass
    info = {
        "cpu_model": cpu.get("model name") or platform.processor() or platform.machine(),
        "cpu_mhz": float(cpu["cpu MHz"]) if "cpu MHz" in cpu else None,
        "cpu_simd_available": [f for f in ("sse4_2", "avx", "fma", "avx2", "avx512f", "avx512_fp16")
                               if f in flags],
        "hypervisor": "hypervisor" in flags,
        "cores": cpu_count(),
        "memory_gib": mem_gib,
        "os": platform.platform(),
        "python": platform.python_version(),
        "git": _git_commit(),
        "env": dict(ENV_CHANGES),
    }
    import tinygrad_rep as tr
    ours = {}
    for name, m in our_backends().items():
        i = m.info()
        ours[name] = {"simd": i.get("simd"), "threads": i.get("threads"), "compiler_flags": i.get("compiler_flags")}
    info["tinygrad_rep"] = {"version": tr.__version__, "backends": ours,
                            "simd": next((v["simd"] for v in ours.values()), None)}
    info["versions"] = {d: _version(d) for d in ("numpy", "cffi", "threadpoolctl", "torch", "gensim",
                                                 "matplotlib")}
    info["blas"] = blas_info()
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            cap = torch.backends.cpu.get_cpu_capability()
        except Exception:  # older torch: no such query
            cap = None
        info["torch"] = {"version": torch.__version__, "cpu_capability": cap,
                         "mkl": bool(torch.backends.mkl.is_available())}
    return info
