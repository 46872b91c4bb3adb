"""Checking command-line options: every command range-checks its numbers here, before any work.

Each check raises UsageError (a ValueError; the command line prints it in one line and exits 2)
whose message names the option as the user typed it, e.g. "--epochs must be positive, got -1".
NaN and infinities are refused everywhere: no option means anything sensible at NaN.
"""
import math
import os


class UsageError(ValueError):
    """A bad command-line option or argument: reported in one line, exit status 2."""


def _flag(name):
    return name if name.startswith("-") else "--" + name.replace("_", "-")


def _number(name, value, integer):
    """value as a finite number (an int when `integer`), or UsageError naming the option."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"{_flag(name)} must be a number, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"{_flag(name)} must be a finite number, got {value}")
    if integer and not float(value).is_integer():
        raise UsageError(f"{_flag(name)} must be a whole number, got {value}")
    return int(value) if integer else value


def positive(name, value, integer=False):
    """value > 0 (None passes: the option was not given). Returns value."""
    if value is None:
        return None
    v = _number(name, value, integer)
    if not v > 0:
        raise UsageError(f"{_flag(name)} must be positive, got {value}")
    return v


def non_negative(name, value, integer=False):
    """value >= 0 (None passes). Returns value."""
    if value is None:
        return None
    v = _number(name, value, integer)
    if v < 0:
        raise UsageError(f"{_flag(name)} must be non-negative, got {value}")
    return v


def in_range(name, value, low, high, low_open=False, high_open=False, integer=False):
    """low <= value <= high, with either end open on request (None passes). Returns value."""
    if value is None:
        return None
    v = _number(name, value, integer)
    if (v <= low if low_open else v < low) or (v >= high if high_open else v > high):
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise UsageError(f"{_flag(name)} must be in {interval}, got {value}")
    return v


def at_most(name, value, high, integer=False):
    """value <= high (None passes); used for limits such as a window size. Returns value."""
    if value is None:
        return None
    v = _number(name, value, integer)
    if v > high:
        raise UsageError(f"{_flag(name)} must be at most {high}, got {value}")
    return v


def widths(name, text):
    """Comma-separated positive integers ("256,128") -> tuple; None passes."""
    if text is None:
        return None
    try:
        out = tuple(int(h) for h in text.split(",") if h.strip())
    except ValueError:
        raise UsageError(f"{_flag(name)} must be comma-separated integers, got {text!r}") from None
    if not out or min(out) <= 0:
        raise UsageError(f"{_flag(name)} must list positive widths, got {text!r}")
    return out


def output_folder(path, name="out"):
    """Check and create the output folder before any work: not empty, not an existing file,
    creatable and writable. Returns the path. A bad value is a UsageError; a folder that cannot
    be created or written is an OSError naming it (a failed run, exit 1)."""
    if path is None or not str(path).strip():
        raise UsageError(f"{_flag(name)} must name a folder, got {path!r}")
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"{_flag(name)} {path} exists and is not a folder")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise OSError(e.errno, f"cannot create the output folder {path}: {e.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(13, f"cannot write into the output folder {path}: permission denied")
    return path
