"""`tinygrad-rep graph`: draw a computation graph with every node's value and gradient
(.dot, and .svg/.png with Graphviz), and write its backward trace.

What is drawn (one of):
  (default)                 a 64-16-10 MLP's cross-entropy on a batch of digits
  --expr "h = x * w; (h * h).sum()" --input x=1,-2,3 --input w=0.5
                            your own expression: each --input NAME=VALUES is a float64 tensor
                            that requires grad (VALUES: a number or a Python list, nested for
                            matrices); `tr`, `F` (functional), `np` and `Tensor` are in scope; the
                            last line is the result; variables you assign name their tensors
  --module models.py:net --input x=[[0.1,0.2]]   (or --input-shape 4,2)
                            your own Module: FILE.py:ATTR or package.module:ATTR, ATTR being a
                            Module or something that returns one when called with no arguments
A result with more than one element is differentiated as L = sum(result).

Writes into --out: graph.dot (always), graph.svg and graph.png (when Graphviz's `dot` is
installed), backward_trace.txt (the table, and with values the arrays of every step) and
backward_trace.json; with --html also graph.html, the interactive backprop explorer.
"""
import argparse
import ast
import contextlib
import importlib
import importlib.util
import os

import numpy as np

from . import options
from ..instruments import trace, viz
from ..instruments._common import write_text


EXAMPLES = """examples:
  tinygrad-rep graph                                        the built-in MLP on digits
  tinygrad-rep graph --expr "h = x * w; (h * h).sum()" --input x=1,-2,3 --input w=0.5
  tinygrad-rep graph --module mymodel.py:net --input-shape 4,64 --html
Each node shows its value and its gradient dL/dnode (min/mean/max for big tensors); the
drawing's legend explains colours and shapes; backward_trace.txt lists every backward step."""


def add_arguments(parser):
    parser.description = "Draw a computation graph with every node's value and gradient."
    parser.epilog = EXAMPLES
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--expr", help="draw this Python expression (statements separated by ';' or "
                                     "newlines, the last one the result) over the --input tensors")
    what.add_argument("--module", metavar="FILE.py:ATTR|MODULE:ATTR",
                      help="draw this Module applied to --input (or a random --input-shape batch)")
    parser.add_argument("--input", action="append", default=[], metavar="NAME=VALUES",
                        help="a named input, e.g. x=1,-2,3 or w=[[1,2],[3,4]] (repeatable)")
    parser.add_argument("--input-shape", metavar="N,D", help="with --module: a random normal input of this shape")
    parser.add_argument("--values", action=argparse.BooleanOptionalAction, default=True,
                        help="show each node's value and gradient (default: on; --no-values for norms only)")
    parser.add_argument("--max-elements", type=int, default=8,
                        help="tensors with more elements are shown as min/mean/max (default: 8)")
    parser.add_argument("--out", default=os.path.join("runs", "graph"),
                        help="output folder (default: runs/graph)")
    parser.add_argument("--batch-size", type=int, default=8, help="digits in the built-in MLP's batch (default: 8)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the built-in MLP and of --input-shape")
    parser.add_argument("--formats", default="svg,png",
                        help="formats rendered by Graphviz besides .dot (default: svg,png)")
    parser.add_argument("--html", action="store_true",
                        help="also write graph.html: the interactive backprop explorer (works offline)")


# ------------------------------------------------------------------------------ what to draw

def parse_input(text, requires_grad=True):
    """'x=1,-2,3' -> a float64 Tensor named x. VALUES is a Python literal: a number, a list
    (nested for matrices) or comma-separated numbers."""
    from ..tensor import Tensor
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise options.UsageError(f"--input must be NAME=VALUES (e.g. x=1,-2,3), got {text!r}")
    try:
        array = np.asarray(ast.literal_eval(values.strip()), dtype=np.float64)
    except (ValueError, SyntaxError, TypeError):
        raise options.UsageError(f"--input {name}: VALUES must be a number or a list of numbers, "
                                 f"got {values.strip()!r}") from None
    if not np.all(np.isfinite(array)):
        raise options.UsageError(f"--input {name}: values must be finite, got {values.strip()!r}")
    t = Tensor(array, requires_grad=requires_grad)
    t.name = name
    return t


def expression_graph(expr, inputs):
    """Run `expr` (statements, the last one an expression: the result) with the input tensors
    in scope. Tensors assigned to variables are named after them. Returns the result."""
    from .. import functional as F
    import tinygrad_rep as tr
    from ..tensor import Tensor
    try:
        tree = ast.parse(expr, "<--expr>", "exec")
    except SyntaxError as e:
        raise options.UsageError(f"--expr: syntax error: {e.msg} in {expr!r}") from None
    if not tree.body or not isinstance(tree.body[-1], ast.Expr):
        raise options.UsageError("--expr: the last statement must be an expression (the result to draw)")
    scope = {"tr": tr, "F": F, "np": np, "Tensor": Tensor}
    scope.update({t.name: t for t in inputs})
    last = ast.Expression(tree.body.pop().value)
    try:
        exec(compile(tree, "<--expr>", "exec"), scope)
        result = eval(compile(last, "<--expr>", "eval"), scope)
    except Exception as e:  # the user's own code: report its error in one line
        raise options.UsageError(f"--expr failed: {type(e).__name__}: {e}") from None
    for name, value in scope.items():
        if isinstance(value, Tensor) and value.name is None and not name.startswith("_"):
            value.name = name
    return result


def load_module(spec):
    """FILE.py:ATTR or package.module:ATTR -> a Module (ATTR called with no arguments when it
    is not a Module itself)."""
    from .. import nn
    where, sep, attr = spec.rpartition(":")
    if not sep or not where or not attr:
        raise options.UsageError(f"--module must be FILE.py:ATTR or MODULE:ATTR, got {spec!r}")
    try:
        if where.endswith(".py"):
            if not os.path.isfile(where):
                raise options.UsageError(f"--module: no such file {where}")
            loader = importlib.util.spec_from_file_location("_tinygrad_rep_graph_module", where)
            mod = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(mod)
        else:
            mod = importlib.import_module(where)
        obj = getattr(mod, attr)
        if not isinstance(obj, nn.Module) and callable(obj):
            obj = obj()
    except options.UsageError:
        raise
    except Exception as e:  # the user's own code: report its error in one line
        raise options.UsageError(f"--module {spec}: {type(e).__name__}: {e}") from None
    if not isinstance(obj, nn.Module):
        raise options.UsageError(f"--module {spec}: {attr} is a {type(obj).__name__}, not a tr.nn.Module")
    return obj


def module_graph(model, inputs, input_shape, seed=0):
    """model(x) for the one input given (cast to the model's dtype) or a random batch."""
    from ..tensor import Tensor
    params = list(model.parameters())
    dtype = params[0].dtype if params else np.float64
    if input_shape is not None:
        if inputs:
            raise options.UsageError("give either --input or --input-shape with --module, not both")
        shape = options.widths("input-shape", input_shape)
        x = Tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype))
        x.name = "input"
    elif len(inputs) == 1:
        x = Tensor(inputs[0].data.astype(dtype))
        x.name = inputs[0].name
    else:
        raise options.UsageError("--module needs one --input NAME=VALUES or --input-shape")
    try:
        return model(x)
    except Exception as e:  # the user's model: report its error in one line
        raise options.UsageError(f"--module: the forward pass failed: {type(e).__name__}: {e}") from None


# ------------------------------------------------------------------------------ the command

def run(args):
    from ..tensor import Tensor
    options.positive("batch-size", args.batch_size, integer=True)
    options.non_negative("seed", args.seed, integer=True)
    options.positive("max-elements", args.max_elements, integer=True)
    if args.input and not (args.expr or args.module):
        raise options.UsageError("--input needs --expr or --module")
    if args.input_shape and not args.module:
        raise options.UsageError("--input-shape needs --module")
    options.output_folder(args.out)

    # with --html, remember where each op was made: the explorer shows it (file:line)
    with viz.recording() if args.html else contextlib.nullcontext():
        if args.expr is not None:
            out = expression_graph(args.expr, [parse_input(s) for s in args.input])
            what = f"expression {args.expr}"
        elif args.module is not None:
            model = load_module(args.module)
            out = module_graph(model, [parse_input(s, requires_grad=False) for s in args.input],
                               args.input_shape, args.seed)
            what = f"module {args.module}"
        else:
            from ..instruments.tour import mlp_loss_graph
            _, out = mlp_loss_graph(batch_size=args.batch_size, seed=args.seed)
            what = f"64-16-10 MLP, cross-entropy on {args.batch_size} digits"
    if not isinstance(out, Tensor):
        raise options.UsageError(f"the {what.split()[0]} gave a {type(out).__name__}, not a Tensor")
    if not out.requires_grad:
        raise options.UsageError(f"the result of the {what.split()[0]} does not require grad: "
                                 f"nothing to differentiate (give an --input or a model with parameters)")

    with trace(keep_values=args.values) as t:
        out.backward(np.ones(out.shape, dtype=out.dtype))
    value = f"{out.item():.4g}" if out.size == 1 else f"L = sum of {out.size} outputs"
    dot = viz.to_dot(out, trace=t, values=args.values, max_elements=args.max_elements,
                     title=f"{what} ({value})")
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    files = viz.render(dot, os.path.join(args.out, "graph"), formats)
    text = t.table()
    if args.values:
        text += "\n\n" + t.details(max_elements=args.max_elements)
    write_text(os.path.join(args.out, "backward_trace.txt"), text + "\n")
    t.to_json(os.path.join(args.out, "backward_trace.json"))
    print(text)
    print()
    for kind in ("dot",) + formats:
        if kind in files:
            print(f"wrote {files[kind]}")
    print(f"wrote {os.path.join(args.out, 'backward_trace.txt')} and backward_trace.json")
    if args.html:
        print(f"wrote {viz.explore(out, os.path.join(args.out, 'graph.html'), title=f'{what} ({value})')}")
    if "missing" in files:
        print(files["missing"])
    return 0
