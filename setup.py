"""setup.py: builds the C kernels once and links them into both Python extensions.

Metadata lives in pyproject.toml; this file only describes the compiled parts:
  - csrc/*.c -> static library `tinygrad_rep_kernels` (setuptools build_clib), compiled with C
    flags. Pybind11Extension would put -std=c++17 on every source of its extension, .c files
    included, so the C sources never go into an extension's own source list.
  - tinygrad_rep._C      pybind11 module (csrc/bind_pybind.cpp) linked with that library;
  - tinygrad_rep._C_cffi cffi API-mode module (csrc/build_cffi.py) linked with the same library.
Both extensions also link -fopenmp (libgomp).

Environment (both optional):
  TINYGRAD_REP_CFLAGS   extra flags for every C/C++ compile, e.g. sanitizers:
                        "-fsanitize=address,undefined -fno-omit-frame-pointer"
  TINYGRAD_REP_LDFLAGS  extra link flags; when unset, the -fsanitize=... entries of
                        TINYGRAD_REP_CFLAGS are used, so a sanitizer build links its runtime.
The C flags actually used are compiled into the library (tr_build_flags(), backend_info()).
"""
import glob
import hashlib
import os
import shlex

from pybind11.setup_helpers import Pybind11Extension
from setuptools import find_namespace_packages, setup
from setuptools.command.build_ext import build_ext

KERNEL_LIB = "tinygrad_rep_kernels"
C_SOURCES = ["csrc/runtime.c", "csrc/matmul.c", "csrc/matmul_small.c", "csrc/relu.c", "csrc/softmax.c", "csrc/softmax_x86.c", "csrc/embedding.c", "csrc/sgns.c", "csrc/optim.c"]
HEADER = "csrc/tinygrad_rep.h"

# No -march=native (the wheel must run on any x86-64; target_clones picks AVX-512/AVX2 at load
# time) and no -ffast-math (the kernels promise IEEE NaN/inf behaviour).
# -fvisibility=hidden: the kernels are linked into each extension and need not be exported from
# it, so two extensions (or an RTLD_GLOBAL load) can never bind to each other's tr_* symbols.
BASE_CFLAGS = ["-std=c11", "-O3", "-fopenmp", "-fPIC", "-fvisibility=hidden"]
EXTRA_FLAGS = shlex.split(os.environ.get("TINYGRAD_REP_CFLAGS", ""))
_ldflags = os.environ.get("TINYGRAD_REP_LDFLAGS")
EXTRA_LDFLAGS = (shlex.split(_ldflags) if _ldflags is not None
                 else [f for f in EXTRA_FLAGS if f.startswith("-fsanitize")])
C_FLAGS = BASE_CFLAGS + EXTRA_FLAGS
LINK_FLAGS = ["-fopenmp"] + EXTRA_LDFLAGS


# Objects built with other flags (a sanitizer build, say) go to their own build folder, so that
# setuptools, which only compares file times, never links objects built with different flags.
BUILD_BASE = "build"
if EXTRA_FLAGS or EXTRA_LDFLAGS:
    BUILD_BASE += "/flags-" + hashlib.sha1(" ".join(EXTRA_FLAGS + ["|"] + EXTRA_LDFLAGS).encode()).hexdigest()[:10]


def c_string(text):
    """text as a C string literal, for a -D define."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class build_ext_with_kernels(build_ext):
    """build_ext that first builds the kernel library and links it into every extension.

    The distutils `build` command runs build_clib before build_ext, but an editable install
    (`pip install -e .`) may run build_ext alone, so it is run here explicitly (a command runs
    at most once per setup.py invocation, so this never builds twice).
    cffi's setuptools hook wraps whatever build_ext class is registered, so this also covers
    the cffi extension, which cffi creates itself.
    """

    def run(self):
        self.run_command("build_clib")
        super().run()

    def build_extension(self, ext):
        clib = self.get_finalized_command("build_clib")
        if KERNEL_LIB not in ext.libraries:
            ext.libraries.append(KERNEL_LIB)
        if clib.build_clib not in ext.library_dirs:
            ext.library_dirs.append(clib.build_clib)
        for flag in EXTRA_FLAGS:
            if flag not in ext.extra_compile_args:
                ext.extra_compile_args.append(flag)
        for flag in LINK_FLAGS:
            if flag not in ext.extra_link_args:
                ext.extra_link_args.append(flag)
        # Relink when the kernel library changes (setuptools compares these files' times).
        ext.depends = list(ext.depends) + C_SOURCES + [HEADER] + glob.glob("csrc/*.h")
        super().build_extension(ext)


setup(
    # tinygrad_rep/ and the repository's benchmarks/ folder, shipped as tinygrad_rep.benchmarks
    packages=find_namespace_packages(include=["tinygrad_rep", "tinygrad_rep.*"], exclude=["*.__pycache__"])
    + ["tinygrad_rep.benchmarks"],
    package_dir={"tinygrad_rep.benchmarks": "benchmarks"},
    libraries=[(KERNEL_LIB, {
        "sources": C_SOURCES,
        "include_dirs": ["csrc"],
        "cflags": C_FLAGS,
        "macros": [("TR_BUILD_FLAGS", c_string(" ".join(C_FLAGS)))],
        "obj_deps": {"": [HEADER]},  # any header change rebuilds every kernel
    })],
    ext_modules=[
        Pybind11Extension("tinygrad_rep._C", ["csrc/bind_pybind.cpp"], include_dirs=["csrc"]),
    ],
    cffi_modules=["csrc/build_cffi.py:ffibuilder"],
    cmdclass={"build_ext": build_ext_with_kernels},
    options={"build": {"build_base": BUILD_BASE}},
)
