"""Headline numbers, machine-readable: each notebook records what it measured.

    from llmup_lib.teaching.results import record
    record("05_scaling", r2_surface=0.991, alpha_fit=0.41)

When ``LLMUP_RESULTS_DIR`` is set, the numbers are merged into ``$LLMUP_RESULTS_DIR/<stem>.json``
(a flat JSON object, name -> number, written atomically); ``python -m llmup_lib run-all`` sets
it for every kernel and prints what each notebook recorded. Unset, ``record`` only checks and
returns the numbers, so a notebook runs the same everywhere.
"""

from __future__ import annotations

import math
import numbers
import os
import re
from pathlib import Path

from ..store import read_json, write_json

ENV = "LLMUP_RESULTS_DIR"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def results_dir() -> Path | None:
    """``$LLMUP_RESULTS_DIR`` as a path, or None when unset (or empty)."""
    value = os.environ.get(ENV, "").strip()
    return Path(value).expanduser() if value else None


def _as_number(key: str, value) -> float | int:
    if hasattr(value, "item") and not isinstance(value, numbers.Number):
        try:
            value = value.item()  # a one-element torch tensor or NumPy array
        except (ValueError, RuntimeError):
            pass  # several elements: refused below
    if isinstance(value, bool):
        return int(value)
    if not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"result {key}={value!r} is not a finite number; record numbers only "
                         "(e.g. a loss as a float, a share as a fraction in [0, 1]).")
    return value if isinstance(value, numbers.Integral) else float(value)


def record(stem: str, **numbers_) -> dict:
    """Check ``numbers_`` (name -> finite number) and, when ``LLMUP_RESULTS_DIR`` is set, merge
    them into ``<dir>/<stem>.json``; returns the checked numbers."""
    if not isinstance(stem, str) or not _NAME.match(stem):
        raise ValueError(f"stem={stem!r} must be a notebook's file name without .ipynb, "
                         "e.g. '05_scaling'.")
    if not numbers_:
        raise ValueError("record() got no numbers; pass them by name, e.g. "
                         "record('05_scaling', r2_surface=0.99).")
    checked = {k: _as_number(k, v) for k, v in numbers_.items()}
    folder = results_dir()
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{stem}.json"
        merged = {**read(path), **checked}
        write_json(path, merged, sort_keys=True)  # a reader sees the old file or the new one
    return checked


def read(path) -> dict:
    """The numbers in one results file ({} when it does not exist)."""
    path = Path(path)
    if not path.exists():
        return {}
    data = read_json(path, what="results file")
    if not isinstance(data, dict):
        raise ValueError(f"{str(path)!r} is not a results file (a JSON object of numbers); "
                         "delete it and rerun the notebook.")
    return data


def collect(folder) -> dict:
    """``{stem: {name: number}}`` for every results file in ``folder``."""
    folder = Path(folder)
    return {p.stem: read(p) for p in sorted(folder.glob("*.json"))} if folder.is_dir() else {}


def format_results(results: dict, width: int = 100) -> str:
    """One line per notebook: ``stem: name=value, …`` (values to 4 significant digits)."""
    lines = []
    for stem, values in results.items():
        text = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in values.items())
        line = f"{stem}: {text}"
        lines.append(line if len(line) <= width else line[: width - 1] + "…")
    return "\n".join(lines)
