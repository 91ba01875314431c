"""Timing budgets: what the suite promises to keep fast, timed against its budget.

    python benchmarks/bench_timings.py                        # every budget; exit 1 if one is over
    python benchmarks/bench_timings.py --only colab-setup,hub-offline-model
    python benchmarks/bench_timings.py --scale 2              # every budget doubled (a busy machine)

These were wall-clock assertions inside the unit tests. A test that fails because a shared
machine was busy teaches nothing, so the tests keep their correctness checks (the documents, the
error message, the widget cells' output) and the time is measured here, printed as a markdown
table (name, what, budget, measured, within budget) under the machine and date. The exit status
is 1 when any measured time is over its budget (times ``--scale``), 0 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the checkout's llmup_lib, also when run as a plain script


@dataclass(frozen=True)
class Budget:
    name: str
    what: str
    seconds: float
    run: Callable[[], tuple[float, str]]  # -> (measured seconds, a detail for the table)


def _timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


# ----------------------------------------------------------------------------- the cases

def _world(kind: str) -> tuple[float, str]:
    """10,000 documents of the first world (was tests/test_world.py's ``docs`` fixture)."""
    from llmup_lib.world import stories

    world = stories.make_world(0)
    generate = {"general": stories.generate_general, "domain": stories.generate_domain}[kind]
    seconds, docs = _timed(lambda: generate(world, 10_000, seed=1))
    return seconds, f"{len(docs):,} documents"


def _biographies() -> tuple[float, str]:
    """130,000 biographies, about 10 M BPE tokens (was test_generation_is_lean_and_fast)."""
    from llmup_lib.world import biographies as B

    world = B.make_biography_world(seed=0, n_people=2000, zipf_exponent=1.3)
    seconds, ds = _timed(lambda: B.corpus("general", 130_000, 1, world=world)["train"])
    chars = sum(ds["n_chars"])
    return seconds, f"{chars / 1e6:.1f} M characters (~{chars / 3.9 / 1e6:.1f} M tokens)"


def _colab_setup() -> tuple[float, str]:
    """The Colab setup cell, executed outside Colab: it must do nothing, at once
    (was tests/test_colab.py::test_setup_cell_does_nothing_outside_colab)."""
    from llmup_lib import colab

    source = colab.setup_cell_source()
    saved = os.environ.get("LLMUP_PROFILE")
    try:
        seconds, _ = _timed(lambda: exec(compile(source, "<colab-setup>", "exec"), {}))
    finally:
        if saved is None:
            os.environ.pop("LLMUP_PROFILE", None)
        else:
            os.environ["LLMUP_PROFILE"] = saved
    return seconds, "did nothing" if colab.colab_setup() is False else "**ran the setup**"


@contextlib.contextmanager
def _offline(how: str):
    """Offline two ways, as tests/test_real_models.py's ``offline`` fixture: told so by the
    environment, or a network where no connection opens."""
    names = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HTTPS_PROXY",
             "https_proxy", "ALL_PROXY", "all_proxy")
    saved_env = {k: os.environ.pop(k) for k in names if k in os.environ}
    saved_connect = socket.create_connection
    if how == "HF_HUB_OFFLINE=1":
        os.environ["HF_HUB_OFFLINE"] = "1"
    else:
        def refuse(*args, **kwargs):
            raise OSError("network is unreachable")
        socket.create_connection = refuse
    try:
        yield
    finally:
        socket.create_connection = saved_connect
        os.environ.pop("HF_HUB_OFFLINE", None)
        os.environ.update(saved_env)


def _hub_offline(what: str) -> tuple[float, str]:
    """A Hub name offline fails fast and clearly (was tests/test_real_models.py::
    test_a_hub_name_offline_fails_fast_and_clearly): the slower of the two ways offline."""
    from llmup_lib.core.corpora import load_corpus
    from llmup_lib.core.models import load_model

    load, name = {"model": (load_model, "EleutherAI/pythia-14m"),
                  "dataset": (load_corpus, "roneneldan/TinyStories")}[what]
    worst = 0.0
    for how in ("HF_HUB_OFFLINE=1", "no network"):
        with _offline(how):
            start = time.perf_counter()
            try:
                load(name)
            except ValueError:
                pass
            else:
                return time.perf_counter() - start, "**loaded: not offline?**"
            worst = max(worst, time.perf_counter() - start)
    return worst, "ValueError, both ways offline"


def _widget_cells() -> tuple[float, str]:
    """60 widget cells through run-all's kernel (was tests/test_runall.py::
    test_widget_cells_do_not_stall_the_run): an nbclient#312 stall costs the cell's whole wait."""
    import nbformat

    from llmup_lib.runall import run_notebook

    code = nbformat.v4.new_code_cell
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [code("import ipywidgets as w")]
    nb.cells += [code(f"w.interactive(lambda x: print(2 * x), x=w.IntSlider(value={i}))")
                 for i in range(60)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "04_widgets.ipynb"
        nbformat.write(nb, str(path))
        run = run_notebook(path, Path(tmp) / "out", timeout=120)
    return run.seconds, "ok" if run.ok else f"**{run.status}**"


BUDGETS = [
    Budget("world-general", "10,000 general documents (stories.generate_general)", 5.0,
           lambda: _world("general")),
    Budget("world-domain", "10,000 clinic notes (stories.generate_domain)", 5.0,
           lambda: _world("domain")),
    Budget("world-v2", "130,000 biographies, ~10 M BPE tokens (biographies.corpus)", 30.0,
           _biographies),
    Budget("colab-setup", "the Colab setup cell outside Colab", 0.5, _colab_setup),
    Budget("hub-offline-model", "load_model('EleutherAI/pythia-14m') offline fails", 2.0,
           lambda: _hub_offline("model")),
    Budget("hub-offline-dataset", "load_corpus('roneneldan/TinyStories') offline fails", 2.0,
           lambda: _hub_offline("dataset")),
    Budget("widget-cells", "run_notebook on 60 widget cells (nbclient#312)", 45.0,
           _widget_cells),
]


# ----------------------------------------------------------------------------- measure, print

@dataclass(frozen=True)
class Row:
    budget: Budget
    seconds: float
    detail: str
    limit: float

    @property
    def ok(self) -> bool:
        return self.seconds <= self.limit and "**" not in self.detail


def select(only: str | None) -> list[Budget]:
    if not only:
        return list(BUDGETS)
    names = [n.strip() for n in only.split(",") if n.strip()]
    known = {b.name: b for b in BUDGETS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"Unknown budget(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(known)}.")
    return [known[n] for n in names]


def measure(budgets: list[Budget], scale: float = 1.0, log=print) -> list[Row]:
    rows = []
    for budget in budgets:
        if log:
            log(f"timing {budget.name} ...", file=sys.stderr, flush=True)
        seconds, detail = budget.run()
        rows.append(Row(budget, seconds, detail, budget.seconds * scale))
    return rows


def table(rows: list[Row]) -> str:
    lines = ["| name | what | budget (s) | measured (s) | within budget | detail |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.budget.name} | {r.budget.what} | {r.limit:g} | {r.seconds:.2f} | "
                     f"{'yes' if r.ok else '**NO**'} | {r.detail} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=None, help="comma-separated budget names "
                        f"(default all: {', '.join(b.name for b in BUDGETS)})")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every budget (e.g. 2 on a shared machine)")
    args = parser.parse_args(argv)
    if not args.scale > 0:
        parser.error(f"--scale {args.scale} must be a positive number, e.g. --scale 2")
    rows = measure(select(args.only), args.scale)
    try:
        from run_benchmarks import machine  # the same machine line as every other table
        where = machine()
    except Exception:  # noqa: BLE001 - the table is still worth printing without it
        where = f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}"
    print(f"## Timing budgets\n\n_{where}_\n\n{table(rows)}\n")
    over = [r.budget.name for r in rows if not r.ok]
    print(f"over budget: {', '.join(over)}" if over else "every time within its budget")
    return 1 if over else 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # run_benchmarks, for machine()
    raise SystemExit(main())
