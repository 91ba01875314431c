"""One runner for every experiment table: the recipe, the rows, where they came from, and the
worker processes that make them.

An experiment (``tuning``, ``sweep``, ``capacity``, ``extraction``) is a recipe and a way to run
one point of it; what every experiment shares is here, once:

* **the table** -- a JSON object (``new_table``): the recipe (a dataclass as a dict, under
  ``"recipe"``; the tuning tables keep theirs in top-level fields, as shipped), any
  experiment-wide numbers, and the rows;
* **provenance** -- one scheme (``stamp``): the ``command``, ``runs``, ``wall_seconds``,
  ``machine``, ``cores`` and ``date`` of the command that made the table, and one entry of the
  same fields per later command that added rows, in ``extended_by``. ``provenance`` also reads
  the shipped tables' older forms (capacity's ``made_by`` list; no machine, cores or date);
* **save** -- atomic (``store.write_json``): an interrupted save leaves the old table whole;
* **load** -- checked: a missing table names the command that makes it, a corrupt one is one
  sentence (``store.read_json``), one made under another recipe is refused with its path and the
  command that remakes it;
* **extend** -- add rows, skipping the runs the table holds already (``Kind.row_key``);
* **the best rate** -- ``best_rates``: one rule with two readings (see there);
* **workers** -- ``run_points``: the points in this process, or in spawned worker processes with
  the cores split between them (``usable_cores``, ``validate_workers``).
"""

from __future__ import annotations

import numbers
import os
import platform
import statistics
import warnings
from dataclasses import asdict, dataclass, is_dataclass
from datetime import date
from pathlib import Path

from ..store import read_json, write_json

# --------------------------------------------------------------------------- kinds of table


@dataclass(frozen=True)
class Kind:
    """What the runner needs to know about one experiment's tables."""

    name: str  # the experiment on the command line: python -m llmup_lib experiment NAME
    what: str  # its tables in messages: "the capacity table ..."
    row_key: tuple[str, ...]  # the fields that name one run: a table holds each once
    recipe_fields: tuple[str, ...] = ()  # top-level fields holding the recipe; () -> "recipe"
    defaults: tuple[tuple[str, object], ...] = ()  # values of recipe fields a table may lack
    order: tuple[str, ...] = ()  # rows sorted by these after an extension; () -> appended
    takes: str = ""  # how long remaking takes, for the missing-table message

    def command(self, options: str = "") -> str:
        """The command that makes this kind of table (with ``options``)."""
        return f"python -m llmup_lib experiment {self.name}" + (f" {options}" if options else "")


def _as_dict(recipe) -> dict | None:
    if recipe is None:
        return None
    return asdict(recipe) if is_dataclass(recipe) else dict(recipe)


def recipe_of(kind: Kind, table: dict) -> dict | None:
    """The recipe a table was made under (``None`` when it records none)."""
    if not kind.recipe_fields:
        return table.get("recipe")
    defaults = dict(kind.defaults)
    return {f: table.get(f, defaults.get(f)) for f in kind.recipe_fields}


def new_table(kind: Kind, recipe, rows, **extra) -> dict:
    """A table of ``rows`` made under ``recipe`` (a dataclass or a dict), with ``extra``
    experiment-wide values (e.g. a floor or an inventory)."""
    recipe = _as_dict(recipe)
    head = {"recipe": recipe} if not kind.recipe_fields else {
        f: recipe[f] for f in kind.recipe_fields}
    return {**head, **extra, "rows": list(rows)}


def row_keys(kind: Kind, table: dict) -> set:
    """The runs a table holds, each as its ``kind.row_key`` values."""
    return {tuple(r[k] for k in kind.row_key) for r in table["rows"]}


def _differences(have, want) -> str:
    if not isinstance(have, dict):
        return "it records no recipe"
    def one(k):
        if k not in have:
            return f"no {k}"
        return f"{k} {have[k]!r}, " + (f"not {want[k]!r}" if k in want else "not in the recipe")

    fields = [k for k in dict.fromkeys([*want, *have]) if have.get(k) != want.get(k)]
    return "; ".join(one(k) for k in fields[:3]) + ("; ..." if len(fields) > 3 else "")


# --------------------------------------------------------------------------- provenance

PROVENANCE = ("command", "runs", "wall_seconds", "machine", "cores", "date")


def made_by(command: str, runs: int, wall_seconds: float) -> dict:
    """One provenance entry: the command, its runs and wall time, and where and when."""
    return {"command": command, "runs": runs, "wall_seconds": round(wall_seconds),
            "machine": f"{platform.system()} {platform.machine()}".strip(),
            "cores": usable_cores(), "date": date.today().isoformat()}


def with_provenance(table: dict, entries) -> dict:
    """``table`` with ``entries`` (first to last) as its provenance, in the one scheme: the first
    in top-level fields, the rest in ``extended_by``."""
    entries = [dict(e) for e in entries]
    rest = {k: v for k, v in table.items() if k not in PROVENANCE + ("made_by", "extended_by")}
    out = {**rest, **(entries[0] if entries else {})}
    if len(entries) > 1:
        out["extended_by"] = entries[1:]
    return out


def stamp(table: dict, command: str, wall_seconds: float) -> dict:
    """``table`` as made by ``command`` in ``wall_seconds``: its provenance, one scheme."""
    return with_provenance(table, [made_by(command, len(table["rows"]), wall_seconds)])


def provenance(table: dict) -> list[dict]:
    """Every command that made or extended ``table``, first to last, as dicts of (some of)
    ``PROVENANCE``. Reads the one scheme and the shipped tables' older forms: the tuning and
    extraction tables' top-level ``command`` and ``wall_seconds`` (and tuning's ``extended_by``),
    and the capacity table's ``made_by`` list."""
    if "made_by" in table:
        return [dict(entry) for entry in table["made_by"]]
    first = {k: table[k] for k in PROVENANCE if k in table}
    return ([first] if first else []) + [dict(entry) for entry in table.get("extended_by", [])]


# --------------------------------------------------------------------------- files


def save(table: dict, path) -> Path:
    """Write ``table`` as JSON atomically (a temporary file renamed into place): an interrupted
    or failed save leaves the table that was there."""
    return write_json(path, table)


def load(kind: Kind, path, recipe=None, remake: str | None = None):
    """The table at ``path``; with ``recipe`` (a dataclass or a dict), only if it was made under
    that recipe. Every refusal is one sentence: a missing table names ``remake`` (default: the
    kind's command), a corrupt file says so, another recipe names the path, what differs and
    the command that remakes it."""
    path = Path(path)
    remake = remake or kind.command()
    if not path.exists():
        raise FileNotFoundError(f"No {kind.what} table at {str(path)!r}; make it with "
                                f"`{remake}`{kind.takes}.")
    table = read_json(path, what=f"{kind.what} table")
    if recipe is None:
        return table
    if not isinstance(table, dict) or not isinstance(table.get("rows"), list):
        raise ValueError(f"{str(path)!r} is not a {kind.what} table (it holds no rows); remake "
                         f"it with `{remake}`.")
    want, have = _as_dict(recipe), recipe_of(kind, table)
    if have != want:
        raise ValueError(f"The {kind.what} table {str(path)!r} was made with another recipe "
                         f"({_differences(have, want)}); remake it with `{remake}`.")
    return table


def extend(kind: Kind, table: dict, more: dict, command: str | None = None,
           wall_seconds: float = 0) -> dict:
    """``table`` with the runs of ``more`` it does not hold (by ``kind.row_key``), refused when
    the two were made under different recipes. With ``command``, that command is recorded in
    ``extended_by``; a table in an older provenance form comes back in the one scheme."""
    mine, theirs = recipe_of(kind, table), recipe_of(kind, more)
    if mine != theirs:
        raise ValueError(f"Cannot extend a {kind.what} table made with another recipe "
                         f"({_differences(theirs, mine)}) by these runs; write them to a table "
                         "of their own with --out.")
    have = row_keys(kind, table)
    new = [r for r in more["rows"] if tuple(r[k] for k in kind.row_key) not in have]
    rows = table["rows"] + new
    if kind.order:
        rows = sorted(rows, key=lambda r: tuple(r[k] for k in kind.order))
    entries = provenance(table) + ([made_by(command, len(new), wall_seconds)] if command else [])
    return with_provenance({**table, "rows": rows}, entries)


# --------------------------------------------------------------------------- the best rate

RULES = ("one_std", "lowest")


def rate_stats(rows, group: str, metric: str) -> dict:
    """``{group value: {lr: (mean, std, n)}}`` of ``metric`` over each rate's seeds, rates in
    the order they first appear (``std`` the sample deviation, 0 for one seed)."""
    values: dict = {}
    for r in rows:
        values.setdefault(r[group], {}).setdefault(r["lr"], []).append(r[metric])
    return {g: {lr: (statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0, len(v))
                for lr, v in rates.items()} for g, rates in values.items()}


def best_rates(rows, group: str, metric: str, rule: str = "one_std") -> dict:
    """Each ``group`` value's best learning rate by the mean ``metric`` over seeds (lower is
    better): one rule, two readings.

    ``"one_std"`` (the tuning tables, notebooks 02, 03, 06, 07): the *lowest* rate whose mean is
    within one seed deviation of the lowest mean. Among rates the seeds cannot tell apart it
    takes the gentlest, which forgets least (the one-standard-error rule of model selection).

    ``"lowest"`` (the capacity table, notebook 05): the rate with the lowest mean. That table's
    rate sweep ran one seed, and seeds 1 and 2 ran only at each size's lowest-mean rate
    (``--at-best``), so only that rate has a deviation to be within; the one-std reading would
    move 2x24 from 1.2e-2 (three seeds) to 6e-3 (one seed). On every other shipped table the two
    readings agree (tuning's ``full`` differed, 3e-3 against 1e-2, until the domain loss was
    scored on whole notes)."""
    if rule not in RULES:
        raise ValueError(f"Unknown best-rate rule {rule!r}; use one of {', '.join(RULES)}.")
    out = {}
    for g, stats in rate_stats(rows, group, metric).items():
        lowest = min(stats, key=lambda lr: stats[lr][0])
        warn_edge(g, lowest, sorted(stats))
        if rule == "lowest":
            out[g] = lowest
        else:
            bar = stats[lowest][0] + stats[lowest][1]
            out[g] = min(lr for lr, s in stats.items() if s[0] <= bar)
    return out


def warn_edge(group, best: float, rates: list[float]) -> None:
    """Warn when the best mean sits at an end of a grid of 3 or more rates: the optimum may lie
    beyond it, so the grid should grow that way (the warning names the rate to add)."""
    if len(rates) < 3 or rates[0] < best < rates[-1]:
        return
    side, add = ("highest", best * 3) if best == rates[-1] else ("lowest", best / 3)
    grid = ", ".join(f"{r:g}" for r in rates)
    warnings.warn(f"{group}'s best rate {best:g} is the {side} of its grid ({grid}), so the "
                  f"optimum may lie beyond it; add {add:.2g} to the grid (experiment ... "
                  "--extend).", stacklevel=3)


# --------------------------------------------------------------------------- workers


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def is_seed(value) -> bool:
    """A seed is a whole number >= 0 (not a bool)."""
    return not isinstance(value, bool) and isinstance(value, numbers.Integral) and value >= 0


def validate_workers(workers, cores: int | None = None) -> int:
    cores = cores or usable_cores()
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= cores:
        raise ValueError(f"workers={workers!r} must be a whole number from 1 to the {cores} "
                         f"cores of this machine; pass e.g. --workers {cores}.")
    return workers


def validate_threads(threads) -> int:
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads={threads!r} must be a positive whole number; pass e.g. 1.")
    return threads


_WORKER: dict = {}  # a worker process's shared data, set once by _init_worker


def _init_worker(data, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    _WORKER["data"] = data


def worker_data():
    """In a worker process of ``run_points``: the ``data`` it was started with."""
    return _WORKER.get("data")


def run_points(calls, here, there=None, workers: int | None = None, threads: int | None = None,
               data=None, one_run_per_process: bool = False, done=None) -> list:
    """Run every point (``calls``: one argument tuple each) and return the results in order.

    ``workers=None`` runs ``here(*args)`` in this process. ``workers=N`` runs ``there(*args)``
    (a module-level function) in N spawned processes (fresh interpreters: safe with torch's
    thread pools, the same on every OS), each with ``threads`` torch threads (default: the cores
    split evenly; on small models one thread per run beats two threads on one run) and
    ``data`` (``worker_data()``); with ``one_run_per_process`` each process runs one point, so
    its peak memory is that run's. ``done(i, result)`` is called as each point finishes."""
    calls = [tuple(args) for args in calls]
    results: list = [None] * len(calls)

    def finish(i, result):
        results[i] = result
        if done is not None:
            done(i, result)

    if workers is None:
        for i, args in enumerate(calls):
            finish(i, here(*args))
        return results
    validate_workers(workers)
    threads = validate_threads(threads or max(1, usable_cores() // workers))
    if not calls:
        return results
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    extra = {"max_tasks_per_child": 1} if one_run_per_process else {}
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                             initializer=_init_worker, initargs=(data, threads), **extra) as pool:
        futures = {pool.submit(there, *args): i for i, args in enumerate(calls)}
        for future in as_completed(futures):
            finish(futures[future], future.result())
    return results
