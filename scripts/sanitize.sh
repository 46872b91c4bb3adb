#!/usr/bin/env bash
# scripts/sanitize.sh: build the C kernels and both extensions with AddressSanitizer and
# UndefinedBehaviorSanitizer into a separate venv, and run the kernel tests under them.
#
#   scripts/sanitize.sh                 # the kernel tests (kernels, safety, adam, fuzz)
#   scripts/sanitize.sh tests/test_kernel_fuzz.py ...   # other test files (paths from the repo root)
#
# The venv (default .venv-sanitize, or $SANITIZE_VENV) gets a regular, non-editable install, so
# the sanitized extensions live in the venv and never replace the ones an editable install put in
# the source tree; the tests therefore run from outside the source tree. Python itself is not
# built with ASan, so the ASan runtime is preloaded, and libstdc++ with it: ASan resolves its
# C++ exception interceptor (__cxa_throw) at start-up, and without libstdc++ loaded by then the
# first exception thrown by the pybind11 module aborts. Leak detection is off because CPython
# keeps allocations alive at exit by design. Any sanitizer report fails the run (UBSan does
# not recover).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SANITIZE_VENV:-$ROOT/.venv-sanitize}"
PYTHON="${PYTHON:-python3}"

export TINYGRAD_REP_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
export TINYGRAD_REP_LDFLAGS="-fsanitize=address,undefined"

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet "$ROOT[test]"

ASAN_LIB="$(gcc -print-file-name=libasan.so)"
CXX_LIB="$(gcc -print-file-name=libstdc++.so)"
for lib in "$ASAN_LIB" "$CXX_LIB"; do
    if [ ! -e "$lib" ]; then
        echo "sanitize.sh: gcc cannot find $(basename "$lib"); install gcc's sanitizer and C++ runtimes" >&2
        exit 2
    fi
done

if [ "$#" -eq 0 ]; then
    set -- tests/test_kernels.py tests/test_kernel_safety.py tests/test_adam_kernel.py tests/test_kernel_fuzz.py \
        tests/test_matmul_small.py tests/test_matmul_large.py tests/test_matmul_team.py tests/test_rows_paths.py
fi
TESTS=()
for t in "$@"; do TESTS+=("$ROOT/$t"); done

# Run from outside the source tree so `import tinygrad_rep` finds the sanitized install; the
# kernel tests assert that they (and every child process they start) loaded the extension
# modules from under this prefix, so an unsanitized build can never pass for a sanitized one.
cd "$VENV"
TINYGRAD_REP_SANITIZED_PREFIX="$VENV" \
LD_PRELOAD="$ASAN_LIB $CXX_LIB" \
ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1" \
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    "$VENV/bin/python" -m pytest -q -p no:cacheprovider "${TESTS[@]}"
