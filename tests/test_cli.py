"""The command line's own options and the gradcheck command's coverage of every op."""
import importlib
import inspect
import pkgutil

import pytest

import tinygrad_rep as tr
import tinygrad_rep.ops as ops
from tinygrad_rep.cli import main
from tinygrad_rep.commands import gradcheck as gc


def _function_classes():
    # walked here independently of the command, so the test does not trust its walk
    found = set()
    for info in pkgutil.walk_packages(ops.__path__, ops.__name__ + "."):
        mod = importlib.import_module(info.name)
        for name, cls in vars(mod).items():
            if inspect.isclass(cls) and issubclass(cls, tr.Function) and cls.__module__ == mod.__name__:
                found.add((mod.__name__.rsplit(".", 1)[1], name))
    return found


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"tinygrad-rep {tr.__version__}"


def test_gradcheck_command_covers_every_op_of_the_library():
    expected = {f"{m}.{c}" for m, c in _function_classes()}
    assert {"elementwise.Abs", "elementwise.Clamp", "elementwise.LogSigmoid", "reduce.Norm", "movement.Expand",
            "conv.Im2Col", "sgns.SGNSLoss", "sgns.SGNSPairs"} <= expected
    assert set(gc.library_ops()) == expected
    assert set(gc.op_cases()) == expected
    for name, (fn, spec) in gc.op_cases().items():  # each case's graph really contains its op
        out = fn(*gc.op_inputs(spec, 0))
        assert type(out.grad_fn) is gc.library_ops()[name] or any(
            type(f) is gc.library_ops()[name] for f in _graph_functions(out)), name


def _graph_functions(t):
    seen, stack, fns = set(), [t], []
    while stack:
        n = stack.pop()
        if id(n) in seen or n.grad_fn is None:
            continue
        seen.add(id(n))
        fns.append(n.grad_fn)
        stack.extend(n.grad_fn.inputs)
    return fns


def test_gradcheck_command_passes_and_lists_every_op(capsys):
    assert main(["gradcheck"]) == 0
    out = capsys.readouterr().out
    for name in gc.library_ops():
        assert f"  {name} " in out
    assert "FAIL" not in out


def test_an_op_without_a_case_fails_the_command(monkeypatch, capsys):
    cases = gc.op_cases()
    del cases["reduce.Norm"]
    monkeypatch.setattr(gc, "op_cases", lambda: cases)
    assert main(["gradcheck"]) == 1
    assert "reduce.Norm" in capsys.readouterr().out.split("FAIL: no gradient case")[0].splitlines()[-1]
