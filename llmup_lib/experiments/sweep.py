"""Sweeps: train a grid of (size, tokens) points with one recipe and keep the results as tables.

``llmup_lib.methods.scaling`` fits laws to rows; this module makes the rows:

* **the recipe** -- ``SweepRecipe``: one recipe for every size, only the learning rate scales;
* **the data** -- ``sweep_data``: enough fresh documents that no run sees one twice;
* **the points** -- a size family at fixed tokens, or ``plan_isoflop`` budgets;
* **the runs** -- ``run_sweep``, each row cached by recipe, shape, tokens and training pool
  (``$LLMUP_CACHE/scaling``, checksummed, so a corrupt entry is retrained);
* **the tables** -- ``save_table``/``load_table`` (CSV or JSON) and the shipped ``cpu`` tables
  in ``data/scaling/`` (``shipped_table``); ``python -m llmup_lib sweep`` runs all of this.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from ..core.evaluate import process_peak_rss_mb
from ..core.models import FAMILY
from ..methods.scaling import build_grid_model, non_embedding_params, parse_shape, training_flops


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


def _cache_root() -> Path:
    return Path(os.environ.get("LLMUP_CACHE", Path.home() / ".cache" / "llmup")) / "scaling"


def sweep_table_path(name: str) -> Path:
    """Where a notebook keeps a sweep's table: ``$LLMUP_CACHE/scaling/NAME`` (default cache
    ``~/.cache/llmup``), beside the cached runs, for later notebooks to reuse."""
    return _cache_root() / name


def shipped_table(name: str, profile: str = "cpu") -> Path:
    """A sweep table shipped with the package, ``data/scaling/{profile}_{name}.json``: runs too
    long for a notebook's budget, made by the ``python -m llmup_lib sweep`` command in
    ``data/scaling/README.md`` and checked against a live rerun in notebook 05."""
    from ..store import DATA_DIR

    path = DATA_DIR / "scaling" / f"{profile}_{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"No shipped sweep table {path.name!r}; make it with the command "
                                "in data/scaling/README.md, or run the sweep in the notebook.")
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
    # n_blocks: the batches are permutations of the training pool, so its size is in the key
    blob = json.dumps([asdict(recipe), list(shape), point["tokens"], n_blocks, 3],
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _row_digest(row: dict) -> str:
    return hashlib.sha256(json.dumps(row, sort_keys=True).encode()).hexdigest()


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
    return hashlib.sha256(json.dumps(asdict(recipe), sort_keys=True).encode()).hexdigest()[:12]


def reset_peak_rss() -> bool:
    """Reset this process's ``VmHWM`` to its current RSS (Linux >= 4.0: ``/proc/self/clear_refs``
    accepts ``5``), so ``process_peak_rss_mb`` then measures one run. False where it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def check_workers(workers, cores: int | None = None) -> int:
    cores = cores or usable_cores()
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= cores:
        raise ValueError(f"workers={workers!r} must be a whole number from 1 to the {cores} "
                         f"cores of this machine; pass e.g. --workers {cores}.")
    return workers


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
    model = build_grid_model(p["size"], tokenizer, recipe.context, seed=recipe.seed)
    counts = count_params(model)
    lr = recipe.lr(shape[1])
    cfg = TrainConfig(steps=steps, batch_size=recipe.batch_size, lr=lr,
                      warmup_steps=max(1, round(recipe.warmup_fraction * steps)),
                      seed=recipe.seed, progress=progress, log_every=max(1, steps // 20))
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
           "lr": lr, "steps": steps, "tokens": steps * tokens_per_step,
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
_WORKER = {}  # a worker process's data and thread count, set once by _init_worker


def _init_worker(data, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    _WORKER["data"] = data


def _worker_point(p: dict, recipe: SweepRecipe) -> dict:
    """One point in a worker process of its own (``max_tasks_per_child=1``): its peak memory
    is the run's."""
    from accelerate import Accelerator

    return _train_point(p, recipe, _WORKER["data"], False, Accelerator(cpu=True))


def run_sweep(points, recipe: SweepRecipe | None = None, data=None, cache: bool = True,
              progress: bool = False, log=print, workers: int | None = None,
              threads: int | None = None) -> list[dict]:
    """Train one model per point (``{"size": name, "tokens": D, ...}``) with ``recipe`` and
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
    accelerator = Accelerator()
    if workers is not None:
        check_workers(workers)
        if accelerator.num_processes > 1:
            raise ValueError(f"workers={workers} cannot be combined with "
                             f"{accelerator.num_processes} accelerate processes; use one or the "
                             "other.")
        threads = threads or max(1, usable_cores() // workers)
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads={threads!r} must be a positive whole number; pass e.g. 1.")
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

    def finish(i, p, path, row):
        rows[i] = row
        if cache and accelerator.is_main_process:
            root.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            kept = {k: v for k, v in row.items() if k not in SHARD_KEYS}  # not the run's
            tmp.write_text(json.dumps({"row": kept, "sha256": _row_digest(kept)}))
            os.replace(tmp, path)
        if log and accelerator.is_main_process:
            log(f"{p['size']:>7} N={row['params']:>9,} D={row['tokens']:>9,} "
                f"lr={row['lr']:.2g}: val loss {row['val_loss']:.4f}")

    if workers is None:
        import torch

        for i, p, path in todo:
            finish(i, p, path, _train_point(p, recipe, data, progress, accelerator))
            torch.manual_seed(recipe.seed)
    elif todo:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        # spawn (not fork): a fresh interpreter per run, safe with torch's thread pools and the
        # same on every OS; each process runs one point, so its peak memory is that run's
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                                 initializer=_init_worker, initargs=(data, threads),
                                 max_tasks_per_child=1) as pool:
            futures = [(pool.submit(_worker_point, p, recipe), i, p, path)
                       for i, p, path in todo]
            for future, i, p, path in futures:
                finish(i, p, path, future.result())
    return rows


def merge_tables(paths, out=None) -> list[dict]:
    """Join the partial tables of a sharded sweep (``--shard K/N``) into one, in the order of
    the unsharded sweep; with ``out``, save it. Tables of different recipes, or two rows for
    the same point, are refused before anything is written."""
    if len(paths) < 1:
        raise ValueError("merge needs at least one table; pass the shards' tables, e.g. "
                         "`sweep merge part1.json part2.json --out sweep.json`.")
    tables = [(str(p), load_table(p)) for p in paths]
    first_path, first = next(((p, rows) for p, rows in tables if rows), (None, []))
    ref = first[0].get("recipe_id") if first else None
    merged, seen = [], {}
    for path, rows in tables:
        for row in rows:
            if row.get("recipe_id") != ref:
                raise ValueError(f"{path!r} was made with recipe {row.get('recipe_id')!r} but "
                                 f"{first_path!r} with {ref!r}; merge only the shards of one "
                                 "sweep command (same --profile, --context, --batch-size), or "
                                 "rerun the odd one with that recipe.")
            key = row.get("point_index", (row["size"], row["tokens"], row.get("budget")))
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
        save_table(out_rows, out)
    return out_rows


def save_table(rows: list[dict], path) -> Path:
    """Write sweep rows as CSV (``.csv``, scalar columns only) or JSON (anything else, with the
    training curves)."""
    path = Path(path)
    if not rows:
        raise ValueError("No rows to save; run a sweep first.")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        keys = list(dict.fromkeys(k for r in rows for k, v in r.items()
                                  if not isinstance(v, (list, tuple, dict))))
        with path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    else:
        path.write_text(json.dumps(rows, indent=1) + "\n")
    return path


def load_table(path) -> list[dict]:
    """Read rows written by ``save_table`` (numbers come back as numbers)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No sweep table at {str(path)!r}; run "
                                "`python -m llmup_lib sweep --out PATH` first.")
    if path.suffix != ".csv":
        return json.loads(path.read_text())
    with path.open(newline="") as fh:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def _number(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text
