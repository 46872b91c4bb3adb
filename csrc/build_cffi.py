"""build_cffi.py: the cffi (out-of-line, API mode) build of tinygrad_rep._C_cffi.

setup.py names this file in `cffi_modules=["csrc/build_cffi.py:ffibuilder"]`. The cdef is made
from csrc/tinygrad_rep.h at build time, so the header stays the one declaration of every kernel:
cffi's cdef cannot #include, so preprocessor lines, the extern "C" braces and comments are dropped
and the prototypes are kept as they are. The generated C file only includes the header; the kernel
code comes from the static library `tinygrad_rep_kernels` that setup.py builds once (build_clib)
and links, with -fopenmp, into every extension (see setup.py's build_ext).
"""
import os
import re

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
HEADER = os.path.join(HERE, "tinygrad_rep.h")


def cdef_from_header(text):
    """The header's declarations as cdef text: no comments, no preprocessor lines, no extern "C"."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)  # block comments (may span lines)
    text = re.sub(r"//[^\n]*", " ", text)  # line comments
    text = re.sub(r"\\\n", " ", text)  # a macro continued over lines (TR_KERNELS) is one line
    kept = []
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s in ('extern "C" {', "}"):  # only present for C++ compilers, inside #ifdef
            continue
        kept.append(line)
    return "\n".join(kept) + "\n"


with open(HEADER, encoding="utf-8") as f:
    _header_text = f.read()

ffibuilder = FFI()
ffibuilder.cdef(cdef_from_header(_header_text))
ffibuilder.set_source(
    "tinygrad_rep._C_cffi",
    '#include "tinygrad_rep.h"',
    include_dirs=[HERE],
)

if __name__ == "__main__":
    # `python csrc/build_cffi.py` shows the generated cdef, which helps when a header edit breaks it.
    print(cdef_from_header(_header_text), end="")
