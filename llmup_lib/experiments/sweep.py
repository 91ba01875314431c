"""Sweeps: train a grid of (size, tokens) points with one recipe and keep the results as tables.

``llmup_lib.methods.scaling`` fits laws to rows; this module makes the rows:

* **the recipe** -- ``SweepRecipe``: one recipe for every size, only the learning rate scales;
* **the data** -- ``sweep_data``: enough fresh documents that no run sees one twice;
* **the points** -- a size family at fixed tokens, or ``plan_isoflop`` budgets;
* **the runs** -- ``run_sweep``, each row cached by recipe, shape, tokens and training pool
  (``$LLMUP_CACHE/scaling``, checksummed, so a corrupt entry is retrained), in this process or
  in worker processes (``runner.run_points``);
* **the tables** -- ``save_table``/``load_table`` (CSV, or JSON with the recipe and the
  runner's provenance; the shipped ``cpu`` tables in ``llmup_lib/data/scaling/``, lists of rows, load as
  they are: ``shipped_table``); ``python -m llmup_lib experiment sweep`` runs all of this.
"""

from __future__ import annotations

import csv
import io
import json
import math
import numbers
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from ..store import cache_dir, digest, write_text
from .runner import (Kind, is_seed, load, made_by, new_table, provenance, run_points, validate_threads,
                     validate_workers, with_provenance, worker_data)

from ..core.memory import process_peak_rss_mb, reset_peak_rss
from ..core.models import FAMILY
from ..core.family import build_grid_model, non_embedding_params, parse_shape, training_flops


# --------------------------------------------------------------------------- recipe and data


@dataclass
class SweepRecipe:
    """One recipe for every size: only the learning rate changes, ``lr = min(lr_max,
    lr_ref·d_ref/d)``
    (Adam's update size is per weight, so wider layers need proportionally smaller steps, the
    μP rule for hidden matrices), anchored on the profile's base model recipe."""
    context: int = 128
    batch_size: int = 16
    lr_ref: float = 3e-3
    width_ref: int = 128
    lr_max: float = 1.2e-2  # tiny widths: 1/d would give 2.4e-2, which trains worse (measured)
    warmup_fraction: float = 0.05
    eval_blocks: int = 128
    seed: int = 0

    def lr(self, width: int) -> float:
        return min(self.lr_max, self.lr_ref * self.width_ref / width)

    @classmethod
    def from_profile(cls, profile, **overrides) -> "SweepRecipe":
        base_width = FAMILY[profile.base_size][1]
        kw = dict(context=profile.context, batch_size=profile.batch_size, lr_ref=profile.lr,
                  width_ref=base_width, seed=profile.seed)
        kw.update(overrides)
        return cls(**kw)


SWEEP = Kind("sweep", "sweep", row_key=("size", "tokens"))


def _cache_root() -> Path:
    return cache_dir("scaling")


def sweep_table_path(name: str) -> Path:
    """Where a notebook keeps a sweep's table: ``$LLMUP_CACHE/scaling/NAME`` (default cache
    ``~/.cache/llmup``), beside the cached runs, for later notebooks to reuse."""
    return _cache_root() / name


def shipped_table(name: str, profile: str = "cpu") -> Path:
    """A sweep table shipped with the package, ``llmup_lib/data/scaling/{profile}_{name}.json``: runs too
    long for a notebook's budget, made by the ``python -m llmup_lib experiment sweep`` command in
    ``llmup_lib/data/scaling/README.md`` and checked against a live rerun in notebook 05."""
    from ..store import DATA_DIR

    path = DATA_DIR / "scaling" / f"{profile}_{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"No shipped sweep table {path.name!r}; make it with the command "
                                "in llmup_lib/data/scaling/README.md, or run the sweep in the notebook.")
    return path


def _docs_for(tokens: float) -> int:
    # ~87 tokens per story in the suite's BPE (371 chars x 0.235 tokens/char); 10 % spare
    return int(math.ceil(tokens / 80 * 1.1)) + 100


def sweep_data(recipe: SweepRecipe, max_tokens: float, n_val: int = 200):
    """Training and validation blocks of the general corpus, enough documents that no run of
    up to ``max_tokens`` sees a document twice (scaling laws assume fresh data)."""
    from ..core.corpora import load_corpus
    from ..core.tokenizer import load_tokenizer, pack_blocks

    tokenizer = load_tokenizer()
    corpus = load_corpus("general", n_train=_docs_for(max_tokens), n_val=n_val, seed=recipe.seed)
    train = pack_blocks(corpus["train"]["text"], tokenizer, recipe.context)
    val = pack_blocks(corpus["validation"]["text"], tokenizer, recipe.context)
    return tokenizer, train, val[:recipe.eval_blocks], corpus


def plan_isoflop(budgets, names, recipe: SweepRecipe, min_steps: int = 20,
                 max_steps: int | None = None) -> list[dict]:
    """Sweep points for an IsoFLOP experiment: at each budget ``C`` every size gets
    ``D = C / (6·N)`` tokens (rounded to whole steps); sizes given fewer than ``min_steps``
    or more than ``max_steps`` steps are skipped. Returns ``[{"size", "tokens", "budget"}]``."""
    tokens_per_step = recipe.context * recipe.batch_size
    points = []
    for c in budgets:
        if not (c > 0):
            raise ValueError(f"budget {c!r} must be a positive number of FLOPs.")
        for name in names:
            n = non_embedding_params(parse_shape(name))
            steps = round(c / (6 * n) / tokens_per_step)
            if steps >= min_steps and (max_steps is None or steps <= max_steps):
                points.append({"size": name, "tokens": steps * tokens_per_step, "budget": c})
    return points


def _row_key(point: dict, recipe: SweepRecipe, shape, n_blocks: int) -> str:
    # n_blocks: the batches are permutations of the training pool, so its size is in the key;
    # a point's own rate or seed (a tuned sweep) joins it only when given, so the rows cached
    # under the recipe's rule keep their keys
    parts = [asdict(recipe), list(shape), point["tokens"], n_blocks, 3]
    parts += [[k, point[k]] for k in RUN_OVERRIDES if point.get(k) is not None]
    return digest(parts, 16)


def _row_digest(row: dict) -> str:
    return digest(row, 64)


def _read_cached_row(path: Path) -> dict | None:
    """A cached sweep row, or None when there is none. A truncated or corrupt entry (unparsable,
    or its SHA-256 does not match) is reported with a warning and retrained, never used."""
    if not path.exists():
        return None
    try:
        entry = json.loads(path.read_text())
        if isinstance(entry, dict) and set(entry) == {"row", "sha256"}:
            if _row_digest(entry["row"]) != entry["sha256"]:
                raise ValueError("checksum mismatch")
            return entry["row"]
        if isinstance(entry, dict) and "val_loss" in entry:  # written before checksums
            return entry
        raise ValueError("not a sweep row")
    except (ValueError, UnicodeDecodeError) as err:
        warnings.warn(f"Cached sweep row {str(path)!r} is corrupt ({err}); retraining it.",
                      stacklevel=3)
        return None


def recipe_id(recipe: SweepRecipe) -> str:
    """A short hash of the recipe: rows (and shards) with the same id were trained alike."""
    return digest(asdict(recipe), 12)


def parse_shard(text) -> tuple[int, int]:
    """``"K/N"`` (shard K of N, 1-based) as ``(K, N)``."""
    try:
        k, n = (int(x) for x in str(text).split("/"))
        ok = 1 <= k <= n
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"shard {text!r} is not K/N with 1 <= K <= N; pass e.g. --shard 1/2 "
                         "(the first of two shards).")
    return k, n


def shard_points(points, shard) -> list[dict]:
    """Shard ``K/N`` of ``points``: every N-th point from the K-th (so each shard gets a mix of
    small and large sizes), each tagged with its place in the whole list (``point_index``)."""
    k, n = parse_shard(shard) if isinstance(shard, str) else parse_shard(f"{shard[0]}/{shard[1]}")
    return [{**p, "point_index": i} for i, p in enumerate(points) if i % n == k - 1]


RUN_OVERRIDES = ("lr", "seed")  # what a point may set for itself (a tuned, seeded sweep)


def check_lr_factors(factors, shown: str) -> None:
    """One sentence naming ``shown`` (the factors as the caller received them) unless every
    factor is a number > 0."""
    if any(not (isinstance(f, numbers.Real) and f > 0) for f in factors):
        raise ValueError(f"{shown} must all be > 0, e.g. 0.5,1,2.")


def check_seeds(seeds, shown: str) -> None:
    """One sentence naming ``shown`` unless the seeds are distinct whole numbers >= 0."""
    if len(set(seeds)) < len(seeds) or not all(is_seed(s) for s in seeds):
        raise ValueError(f"{shown} must be distinct whole numbers >= 0, e.g. 0,1,2.")


def tuned_points(points, recipe: SweepRecipe, lr_factors=None, seeds=None) -> list[dict]:
    """Each point at every rate factor (times its size's width-rule rate, ``recipe.lr``) and
    every seed: a tuned, seeded sweep (``experiment sweep --lr-factors 0.5,1,2 --seeds 0,1,2``).
    ``None`` keeps the rule's rate, or the recipe's seed."""
    factors = [None] if lr_factors is None else list(lr_factors)
    if lr_factors is not None:
        check_lr_factors(factors, f"lr_factors={','.join(map(str, factors))!r}")
    seed_list = [None] if seeds is None else list(seeds)
    if seeds is not None:
        check_seeds(seed_list, f"seeds={','.join(map(str, seed_list))!r}")
    out = []
    for p in points:
        rule = recipe.lr(parse_shape(p["size"])[1])
        out += [{**p, **({} if f is None else {"lr": float(f"{rule * f:.4g}")}),
                 **({} if s is None else {"seed": int(s)})} for f in factors for s in seed_list]
    return out


def point_lr(p: dict, recipe: SweepRecipe) -> float:
    """The point's own rate, or the recipe's width rule."""
    return p["lr"] if p.get("lr") is not None else recipe.lr(parse_shape(p["size"])[1])


def point_seed(p: dict, recipe: SweepRecipe) -> int:
    """The point's own seed (its initialisation and batch order; the data stay the recipe's),
    or the recipe's."""
    return p["seed"] if p.get("seed") is not None else recipe.seed


def _train_point(p: dict, recipe: SweepRecipe, data, progress: bool, accelerator) -> dict:
    """Train one sweep point and return its row (no cache): the body of ``run_sweep``."""
    import torch

    from ..core.models import count_params
    from ..core.train import TrainConfig, eval_loss, train

    tokenizer, train_blocks, val_blocks = data[:3]
    tokens_per_step = recipe.context * recipe.batch_size
    shape = parse_shape(p["size"])
    steps = max(1, round(p["tokens"] / tokens_per_step))
    measured = reset_peak_rss()
    lr, seed = point_lr(p, recipe), point_seed(p, recipe)
    model = build_grid_model(p["size"], tokenizer, recipe.context, seed=seed)
    counts = count_params(model)
    cfg = TrainConfig(steps=steps, batch_size=recipe.batch_size, lr=lr,
                      warmup_steps=max(1, round(recipe.warmup_fraction * steps)),
                      seed=seed, progress=progress, log_every=max(1, steps // 20))
    t0 = time.perf_counter()
    result = train(model, train_blocks, None, cfg, accelerator=accelerator)
    wall = time.perf_counter() - t0
    model = result.model
    val = eval_loss(model, val_blocks, recipe.batch_size)
    flops = training_flops(model.config, steps * tokens_per_step, recipe.context)
    if torch.cuda.is_available() and torch.cuda.max_memory_allocated():
        peak, scope = torch.cuda.max_memory_allocated() / 2**20, "cuda"
        torch.cuda.reset_peak_memory_stats()
    else:  # the process's peak since the reset: this run (a process of its own, or reset)
        peak, scope = process_peak_rss_mb(), ("run" if measured else "process")
    row = {**p, "layers": shape[0], "width": shape[1], "heads": shape[2],
           "params": counts["non_embedding"], "params_total": counts["total"],
           "lr": lr, "seed": seed, "steps": steps, "tokens": steps * tokens_per_step,
           "flops_6nd": flops["six_nd"], "flops_total": flops["total"],
           "flops_attention": flops["attention"], "val_loss": val,
           "final_train_loss": result.history[-1]["train_loss"],
           "train_seconds": result.seconds, "wall_seconds": wall,
           "tokens_per_second": result.tokens_per_second,
           "state_mb": counts["total"] * 16 / 2**20,  # fp32 weights, grads, Adam m and v
           "peak_rss_mb": peak, "peak_scope": scope, "threads": torch.get_num_threads(),
           "device": str(accelerator.device), "processes": accelerator.num_processes,
           "recipe_id": recipe_id(recipe),
           "curve_tokens": [h["tokens"] for h in result.history if "train_loss" in h],
           "curve_loss": [h["train_loss"] for h in result.history if "train_loss" in h]}
    return row


SHARD_KEYS = ("point_index", "shard")  # where a row sits in a sharded sweep, not the run itself


def _worker_point(p: dict, recipe: SweepRecipe) -> dict:
    """One point in a worker process of its own (``max_tasks_per_child=1``): its peak memory
    is the run's."""
    from accelerate import Accelerator

    return _train_point(p, recipe, worker_data(), False, Accelerator(cpu=True))


def run_sweep(points, recipe: SweepRecipe | None = None, data=None, cache: bool = True,
              progress: bool = False, log=print, workers: int | None = None,
              threads: int | None = None) -> list[dict]:
    """Train one model per point (``{"size": name, "tokens": D, ...}``, optionally with its own
    ``"lr"`` and ``"seed"``, as a tuned and seeded sweep gives them) with ``recipe`` and
    return one row per run: shape, parameters, lr, steps, tokens, FLOPs (both counts), the
    validation loss, wall time, throughput and the run's peak memory.

    Rows are cached in ``$LLMUP_CACHE/scaling`` (default ``~/.cache/llmup``) by recipe, shape
    and tokens, so rerunning a sweep (or a later notebook) costs nothing; ``cache=False``
    retrains. Under ``accelerate launch`` each run is data-parallel over the processes (the
    recipe's batch is global) and only the main process writes the cache.

    ``workers=N`` trains N points at once, each in a fresh process of its own (CPU), with
    ``threads`` torch threads each (default: the cores split evenly): on a small model one
    thread per run is faster than two threads on one run. ``peak_rss_mb`` is each run's own
    peak (``peak_scope`` "run"), from its process or, in-process on Linux, after resetting the
    process's high-water mark.
    """
    from accelerate import Accelerator

    recipe = recipe or SweepRecipe()
    points = [dict(p) for p in points]
    for p in points:
        if "tokens" not in p or not p["tokens"] > 0:
            raise ValueError(f"sweep point {p!r} needs a positive 'tokens' count.")
        parse_shape(p["size"])
        if p.get("lr") is not None and not (isinstance(p["lr"], numbers.Real) and p["lr"] > 0):
            raise ValueError(f"sweep point {p!r} has lr={p['lr']!r}; a learning rate must be a "
                             "number > 0, e.g. 3e-3.")
        if p.get("seed") is not None and not is_seed(p["seed"]):
            raise ValueError(f"sweep point {p!r} has seed={p['seed']!r}; a seed must be a whole "
                             "number >= 0, e.g. 1.")
    accelerator = Accelerator()
    if workers is not None:
        validate_workers(workers)
        if accelerator.num_processes > 1:
            raise ValueError(f"workers={workers} cannot be combined with "
                             f"{accelerator.num_processes} accelerate processes; use one or the "
                             "other.")
        if threads is not None:
            validate_threads(threads)
    if not points:
        return []
    max_tokens = max(p["tokens"] for p in points)
    if data is None:
        data = sweep_data(recipe, max_tokens)
    data = tuple(data[:3])
    root = _cache_root()
    rows: list = [None] * len(points)
    todo = []
    for i, p in enumerate(points):
        path = root / f"{_row_key(p, recipe, parse_shape(p['size']), len(data[1]))}.json"
        row = _read_cached_row(path) if cache else None
        if row is not None:
            row.update({k: v for k, v in p.items() if k not in row or k in SHARD_KEYS})
            row.setdefault("recipe_id", recipe_id(recipe))  # rows cached before it existed
            rows[i] = row
        else:
            todo.append((i, p, path))

    def finish(j, row):
        i, p, path = todo[j]
        rows[i] = row
        if cache and accelerator.is_main_process:
            kept = {k: v for k, v in row.items() if k not in SHARD_KEYS}  # not the run's
            write_text(path, json.dumps({"row": kept, "sha256": _row_digest(kept)}))
        if log and accelerator.is_main_process:
            log(f"{p['size']:>7} N={row['params']:>9,} D={row['tokens']:>9,} "
                f"lr={row['lr']:.2g}: val loss {row['val_loss']:.4f}")

    def here(p):
        import torch

        row = _train_point(p, recipe, data, progress, accelerator)
        torch.manual_seed(recipe.seed)
        return row

    # workers: each point in a spawned process of its own, so its peak memory is that run's
    run_points([(p,) if workers is None else (p, recipe) for _, p, _ in todo], here,
               _worker_point, workers, threads, data, one_run_per_process=True, done=finish)
    return rows


def merge_tables(paths, out=None, command: str | None = None, wall_seconds: float = 0
                 ) -> list[dict]:
    """Join the partial tables of a sharded sweep (``--shard K/N``) into one, in the order of
    the unsharded sweep; with ``out``, save it (with the shards' provenance, and ``command``'s
    if given). Tables of different recipes, or two rows for the same point, are refused before
    anything is written."""
    if len(paths) < 1:
        raise ValueError("merge needs at least one table; pass the shards' tables, e.g. "
                         "`experiment sweep merge part1.json part2.json --out sweep.json`.")
    tables = [(str(p), _read_table(p)) for p in paths]
    first_path, first = next(((p, t["rows"]) for p, t in tables if t["rows"]), (None, []))
    ref = first[0].get("recipe_id") if first else None
    merged, seen = [], {}
    for path, table in tables:
        for row in table["rows"]:
            if row.get("recipe_id") != ref:
                raise ValueError(f"{path!r} was made with recipe {row.get('recipe_id')!r} but "
                                 f"{first_path!r} with {ref!r}; merge only the shards of one "
                                 "sweep command (same --profile, --context, --batch-size), or "
                                 "rerun the odd one with that recipe.")
            key = row.get("point_index", (row["size"], row["tokens"], row.get("budget"),
                                          row.get("lr"), row.get("seed")))
            if key in seen:
                raise ValueError(f"{path!r} and {seen[key]!r} both hold the point {row['size']} "
                                 f"at {row['tokens']} tokens; pass each shard's table once.")
            seen[key] = path
            merged.append(row)
    merged.sort(key=lambda r: r.get("point_index", 0))
    shards = {r.get("shard") for r in merged if r.get("shard")}
    if shards:
        n = int(next(iter(shards)).split("/")[1])
        if len(shards) != n:
            warnings.warn(f"merged {len(shards)} of {n} shards; the table is partial.",
                          stacklevel=2)
    out_rows = [{k: v for k, v in r.items() if k not in SHARD_KEYS} for r in merged]
    if out is not None:
        entries = [e for _, t in tables for e in provenance(t)]
        if command:
            entries.append(made_by(command, len(out_rows), wall_seconds))
        recipe = next((t["recipe"] for _, t in tables if t.get("recipe")), None)
        save_table(out_rows, out, recipe, entries)
    return out_rows


def save_table(rows: list[dict], path, recipe=None, made=()) -> Path:
    """Write sweep rows atomically: CSV (``.csv``, scalar columns only) or JSON (anything else:
    a table of the rows, with the training curves, its ``recipe`` when given, and ``made``, the
    provenance entries of the commands that made it, in the runner's one scheme)."""
    path = Path(path)
    if not rows:
        raise ValueError("No rows to save; run a sweep first.")
    if path.suffix == ".csv":
        keys = list(dict.fromkeys(k for r in rows for k, v in r.items()
                                  if not isinstance(v, (list, tuple, dict))))
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=keys, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return write_text(path, text.getvalue())
    table = new_table(SWEEP, recipe, rows) if recipe is not None else {"rows": list(rows)}
    return write_text(path, json.dumps(with_provenance(table, made), indent=1) + "\n")


def _read_table(path) -> dict:
    """The table at ``path`` as a dict with ``rows``: a CSV, a JSON table, or a JSON list of rows
    (the shipped tables, written before tables carried their recipe and provenance)."""
    path = Path(path)
    if path.suffix == ".csv" and path.exists():
        with path.open(newline="") as fh:
            return {"rows": [{k: _number(v) for k, v in row.items()}
                             for row in csv.DictReader(fh)]}
    table = load(SWEEP, path, remake=SWEEP.command("--out PATH"))
    return {"rows": table} if isinstance(table, list) else table


def load_table(path, recipe: SweepRecipe | None = None) -> list[dict]:
    """The rows of a table written by ``save_table`` (numbers come back as numbers), or of a
    shipped one; with ``recipe``, refused unless every row was trained under it."""
    rows = _read_table(path)["rows"]
    if recipe is not None:
        want = recipe_id(recipe)
        odd = next((r.get("recipe_id") for r in rows if r.get("recipe_id") != want), want)
        if odd != want:
            raise ValueError(f"The sweep table {str(path)!r} was made with another recipe "
                             f"(recipe_id {odd!r}, not {want!r}); remake it with "
                             f"`{SWEEP.command('--out PATH')}`.")
    return rows


def _number(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text
