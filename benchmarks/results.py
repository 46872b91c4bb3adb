"""results.json: reading and writing a run's results (written atomically, never half-written).

A results file holds the run's command, mode, thread count, machine, load, each suite's status
and the records (see measurements.RECORD_KEYS). The baseline of the README's published table is one
such file, shipped in this folder as baseline.json (`tinygrad-rep bench compare NEW.json`
compares against it).
"""
import json
import os

from tinygrad_rep.output import write_text_atomic

SCHEMA = "tinygrad_rep-bench/1"
BASELINE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "baseline.json")


def write_results(path, results):
    """Write a run's results as JSON to path, atomically (its folder made if needed). Values JSON
    has no type for (a path, say) are written as their text."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_text_atomic(path, json.dumps(results, indent=1, sort_keys=False, default=str) + "\n")


def run_line(results):
    """When and how a run was made, and how busy the machine was: one line."""
    load = results.get("load") or {}
    return (f"{results.get('created')}, {results.get('mode')}, {results.get('threads')} thread(s); other "
            f"processes {load.get('others_cpu_percent', '-')}% of CPU time, steal {load.get('steal_percent', '-')}%")


def load_results(path):
    """A results.json as a dict; a clear error when the file is not one."""
    with open(path) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not a JSON file: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("records"), list):
        raise ValueError(f"{path} is not a benchmark results file (no 'records' list)")
    return data
