"""`tinygrad-rep gradcheck`: every op and loss against central differences, one line each.

Prints, per case, the largest |analytic - numerical| gradient error in float64 on the current
backend, and fails (exit 1) if any case fails tr.gradcheck. Two parts: every Function class of
tinygrad_rep.ops, found by walking the package (so an op added without a case here is reported as
a failure, never skipped), then the public Tensor methods and losses built on them.
"""
import time

import numpy as np

from .. import Tensor, backend, concat, gradcheck, stack
from .. import functional as F
from ..gradcheck import GradcheckError, max_gradient_error
from ..testing.op_cases import library_ops, op_cases, op_inputs
from . import options


def _cases():
    """(name, fn, input shapes) for the public Tensor methods and losses; float64, away from kinks."""
    t = np.array([0, 2, 1, 3])
    idx = np.array([[1, 1], [4, 0]])

    def pos(x):  # keep log/sqrt/pow inputs positive
        return x * x + 0.5

    return [
        ("add (broadcast)", lambda a, b: a + b, [(3, 4), (4,)]),
        ("sub (broadcast)", lambda a, b: a - b, [(3, 1), (1, 4)]),
        ("mul (broadcast)", lambda a, b: a * b, [(2, 3, 4), (3, 1)]),
        ("div", lambda a, b: a / pos(b), [(3, 4), (3, 4)]),
        ("neg", lambda a: -a, [(5,)]),
        ("pow 3", lambda a: a ** 3, [(3, 4)]),
        ("pow -1.5", lambda a: pos(a) ** -1.5, [(3, 4)]),
        ("matmul 2-D", lambda a, b: a @ b, [(3, 4), (4, 5)]),
        ("matmul 1-D", lambda a, b: a @ b, [(4,), (4, 3)]),
        ("matmul batched", lambda a, b: a @ b, [(2, 3, 4), (1, 4, 2)]),
        ("exp", lambda a: a.exp(), [(3, 4)]),
        ("log", lambda a: pos(a).log(), [(3, 4)]),
        ("sqrt", lambda a: pos(a).sqrt(), [(3, 4)]),
        ("relu", lambda a: a.relu(), [(3, 4)]),
        ("sigmoid", lambda a: a.sigmoid(), [(3, 4)]),
        ("tanh", lambda a: a.tanh(), [(3, 4)]),
        ("softmax", lambda a: a.softmax(-1), [(3, 5)]),
        ("softmax axis 0", lambda a: a.softmax(0), [(3, 5)]),
        ("log_softmax", lambda a: a.log_softmax(-1), [(3, 5)]),
        ("sum", lambda a: a.sum(axis=1, keepdims=True), [(3, 4)]),
        ("mean", lambda a: a.mean(axis=(0, 2)), [(2, 3, 4)]),
        ("max", lambda a: a.max(axis=1), [(3, 4)]),
        ("logsumexp", lambda a: a.logsumexp(axis=-1), [(3, 4)]),
        ("reshape", lambda a: a.reshape(4, 3) * 2, [(3, 4)]),
        ("transpose", lambda a: a.transpose(2, 0, 1) * 2, [(2, 3, 4)]),
        ("index", lambda a: a[np.array([0, 0, 2]), 1:3], [(3, 4)]),
        ("concat", lambda a, b: concat([a, b], axis=1), [(3, 2), (3, 4)]),
        ("stack", lambda a, b: stack([a, b], axis=0), [(3, 4), (3, 4)]),
        ("F.normalize", lambda a: F.normalize(a), [(3, 4)]),
        ("F.cosine_similarity", lambda a, b: F.cosine_similarity(a, b), [(3, 4), (3, 4)]),
        ("F.mse_loss", lambda a, b: F.mse_loss(a, b), [(3, 4), (3, 4)]),
        ("F.binary_cross_entropy_with_logits",
         lambda a, b: F.binary_cross_entropy_with_logits(a, b.sigmoid()), [(3, 4), (3, 4)]),
        ("F.cross_entropy", lambda a: F.cross_entropy(a, t), [(4, 5)]),
        ("F.embedding", lambda w: F.embedding(w, idx), [(5, 3)]),
        ("F.nt_xent_loss", lambda a, b: F.nt_xent_loss(a, b, 0.5), [(4, 3), (4, 3)]),
        ("F.info_nce_loss", lambda a, b: F.info_nce_loss(a, b), [(4, 3), (4, 3)]),
        ("F.info_nce_loss (negatives)", lambda a, b, n: F.info_nce_loss(a, b, n), [(4, 3), (4, 3), (5, 3)]),
        ("F.triplet_margin_loss", lambda a, p, n: F.triplet_margin_loss(a, p, n), [(4, 3), (4, 3), (4, 3)]),
        ("F.skipgram_negative_sampling_loss", F.skipgram_negative_sampling_loss, [(4, 3), (4, 3), (4, 2, 3)]),
    ]


def _check(name, fn, inputs, rows, out):
    t0 = time.perf_counter()
    err = max_gradient_error(fn, inputs)
    try:
        gradcheck(fn, inputs)
        status = "ok"
    except GradcheckError as e:
        status = f"FAIL: {e}"
    rows.append({"op": name, "max_error": err, "status": status, "seconds": time.perf_counter() - t0})
    out(f"  {name:36s} {err:9.2e}  {status}")
    return status == "ok"


def tour(seed=0, out=print):
    """Run every case; print one line per case; return (rows, all_passed).

    First every Function class of tinygrad_rep.ops (one without a case fails the tour), then the
    public methods and losses."""
    rng = np.random.default_rng(seed)
    rows, ok = [], True
    out(f"gradient check, float64, backend {backend.get_backend()}: max |analytic - numerical| per case")
    found, cases = library_ops(), op_cases()
    out(f"every op class of tinygrad_rep.ops ({len(found)}):")
    for name in sorted(found):
        if name not in cases:
            rows.append({"op": name, "max_error": float("nan"), "status": "FAIL: no gradient case", "seconds": 0.0})
            out(f"  {name:36s} {'-':>9s}  FAIL: no gradient case in commands/gradcheck.py")
            ok = False
            continue
        fn, spec = cases[name]
        ok = _check(name, fn, op_inputs(spec, seed), rows, out) and ok
    out("the public methods and losses built on them:")
    for name, fn, shapes in _cases():
        inputs = [Tensor(rng.uniform(-2, 2, s) + np.sign(rng.uniform(-1, 1, s)) * 0.05,
                         requires_grad=True, dtype=np.float64) for s in shapes]
        t0 = time.perf_counter()
        err = max_gradient_error(fn, inputs)
        try:
            gradcheck(fn, inputs)
            status = "ok"
        except GradcheckError as e:
            status, ok = f"FAIL: {e}", False
        rows.append({"op": name, "max_error": err, "status": status, "seconds": time.perf_counter() - t0})
        out(f"  {name:36s} {err:9.2e}  {status}")
    return rows, ok


def add_arguments(parser):
    parser.add_argument("--seed", type=int, default=0, help="seed for the random inputs")


def run(args):
    options.non_negative("seed", args.seed, integer=True)
    _, ok = tour(args.seed)
    return 0 if ok else 1
