"""Learning-rate sweeps for the fine-tuning task: every method at its own best rate, over seeds.

A comparison of two methods means something only when each runs at its own best learning rate,
and its differences are read against the seed spread. ``tune`` trains every (method, rate, seed)
on notebook 02's task (the clinic notes, the same steps, batch and data) and scores each run with
notebook 02's numbers: domain loss and its excess over the floor, domain facts, general loss and
world facts. The ``cpu`` table is shipped in ``llmup_lib/data/tuning/`` (too slow to rerun in a notebook's
budget); ``python -m llmup_lib experiment tune`` made it, and the notebooks read it, take each method's best
rate from it, and retrain one row live to check the table is what this code produces.

Methods: ``full`` (every weight), ``full-replay`` (every weight, on the notes with a fifth of
the blocks drawn from the general corpus: ``domain.replay_blocks``), ``scratch`` (the same
architecture from random weights), ``lora-rK`` (rank K on all linear layers, plus the domain's
never-trained token rows), ``larger`` (notebook 07's larger pretrained model, ``base.LARGER``,
fully fine-tuned).

The domain loss is scored on whole held-out notes (``domain.DomainScorer``), the contexts the
floor is the floor of; a table records that as its ``scoring``, and a table scored on packed blocks
(made before 2026-12-05) is refused. ``steps`` (``--steps``) runs the grid at another step budget
into a table of its own (``cpu_domain_steps30.json`` for 30 steps); ``--workers`` trains that many
runs at once, one process each.

A second task, ``distill``, sweeps notebook 06's students (``tasks.students.DISTILL_METHODS``: the
`nano` student from scratch and by logit KD, a half-depth student at the teacher's width, from
random weights or from the teacher's every other layer, and the two arms of the T² experiment),
scored by validation loss.

A third, ``instructions``, sweeps notebook 04's arms (``tasks.instructions.INSTRUCTION_METHODS``:
full fine-tuning and LoRA r=8 with the prompt masked, LoRA r=8 with it counted), scored by exact
match on trained and on held-out questions; an arm's rate is read off the trained questions'
error (``trained_error``), the score a practitioner has without the held-out set.
"""

from __future__ import annotations

import math
import numbers
import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from .runner import Kind, best_rates, load, new_table, run_points, validate_workers

METRICS = ("domain_loss", "domain_excess", "domain_facts", "general_loss", "world_facts")
TASK_METRICS = {"domain": METRICS, "distill": ("val_loss",),
                "instructions": ("trained_error", "em_trained", "em_heldout")}
_METHOD = re.compile(r"^(full|full-replay|scratch|larger|lora-r([1-9][0-9]*))$")
# how each task's loss is scored (a table records it; one scored otherwise is refused)
SCORING = {"domain": "whole documents", "distill": "packed blocks",
           "instructions": "exact sentence"}
# the CLI's grid when --grid is not given: the shipped tables' (llmup_lib/data/tuning/README.md)
DEFAULT_GRID = {
    "domain": ["larger=1e-4,3e-4,1e-3,3e-3,1e-2", "full=3e-5,1e-4,3e-4,1e-3,3e-3,1e-2,3e-2",
               "full-replay=3e-5,1e-4,3e-4,1e-3,3e-3", "lora-r1=3e-4,1e-3,3e-3,1e-2,3e-2,1e-1",
               "lora-r2=3e-3,1e-2,3e-2,1e-1", "lora-r4=3e-4,1e-3,3e-3,1e-2,3e-2,1e-1",
               "lora-r8=1e-3,3e-3,1e-2,3e-2", "lora-r16=1e-4,3e-4,1e-3,3e-3,1e-2,3e-2",
               "scratch=1e-3,3e-3,1e-2,3e-2"],
    "distill": ["scratch=3e-3,1e-2,3e-2", "kd=3e-3,1e-2,3e-2", "kd-half=1e-3,3e-3,1e-2",
                "kd-half-init=3e-4,1e-3,3e-3,1e-2", "t4-with-t2=1e-2", "t4-without-t2=1e-2"],
    "instructions": ["full=1e-4,2e-4,3e-4,1e-3,3e-3,1e-2",
                     "lora-r8=1e-3,2e-3,2.5e-3,3e-3,5e-3,1e-2,3e-2",
                     "lora-r8-unmasked=1e-3,3e-3,5e-3,7e-3,1e-2,2e-2,3e-2"],
}


@dataclass(frozen=True)
class TuningRecipe:
    """What a tuning table's runs share: the profile, the task, the base model's recipe key
    (``base.base_recipe_key``; a rebuilt tokenizer or base changes it), the step budget (``None``:
    the task's recipe, ``domain_recipe``) and how the loss is scored (``SCORING``). Kept as
    top-level fields of the table, as the shipped tables hold them."""

    profile: str
    task: str
    recipe_key: str
    steps: int | None = None
    scoring: str = "whole documents"


TUNING = Kind("tune", "tuning", row_key=("method", "lr", "seed"),
              recipe_fields=("profile", "task", "recipe_key", "steps", "scoring"),
              defaults=(("task", "domain"), ("steps", None), ("scoring", "packed blocks")))


def tuning_recipe(profile, tokenizer, task: str = "domain", steps: int | None = None
                  ) -> TuningRecipe:
    from ..core.base import base_recipe_key

    task = validate_task(task)
    return TuningRecipe(profile.name, task, base_recipe_key(profile, tokenizer),
                        validate_steps(steps, task), SCORING[task])


def validate_steps(steps, task: str = "domain") -> int | None:
    """``None`` (the task's own budget) or a positive whole number of steps (domain task only)."""
    if steps is None:
        return None
    if isinstance(steps, bool) or not isinstance(steps, int) or steps <= 0:
        raise ValueError(f"steps={steps!r} must be a positive whole number of steps, e.g. 30.")
    if task != "domain":
        raise ValueError(f"steps={steps!r}: only the domain task runs at another step budget; "
                         f"leave --steps out for the {task} task.")
    return steps


def validate_task(task) -> str:
    if task not in TASK_METRICS:
        raise ValueError(f"Unknown tuning task {task!r}; use 'domain' (notebooks 02-03), "
                         "'distill' (notebook 06) or 'instructions' (notebook 04).")
    return task


def validate_method(method, task: str = "domain") -> str:
    if validate_task(task) == "distill":
        from ..tasks.students import validate_method as validate_distill_method

        return validate_distill_method(method)
    if task == "instructions":
        from ..tasks.instructions import validate_method as validate_instruction_method

        return validate_instruction_method(method)
    if not isinstance(method, str) or not _METHOD.match(method):
        raise ValueError(f"Unknown method {method!r}; use 'full', 'full-replay', 'scratch', "
                         "'larger' or 'lora-rK' with a rank K >= 1, e.g. 'lora-r2'.")
    return method


def validate_grid(grid, task: str = "domain") -> dict:
    """``{method: [learning rates]}``: known methods, at least one positive finite rate each."""
    if not isinstance(grid, dict) or not grid:
        raise ValueError("grid must map methods to learning rates, e.g. "
                         "{'full': [1e-3, 3e-3], 'lora-r2': [3e-3, 1e-2]}.")
    for method, lrs in grid.items():
        validate_method(method, task)
        if not lrs or not all(isinstance(lr, numbers.Real) and not isinstance(lr, bool)
                              and math.isfinite(lr) and lr > 0 for lr in lrs):
            raise ValueError(f"Learning rates {lrs!r} for {method!r} must be positive numbers; "
                             "pass e.g. [1e-3, 3e-3, 1e-2].")
    return grid


def parse_grid(specs, task: str = "domain") -> dict:
    """``["full=1e-3,3e-3", "lora-r2=1e-2"]`` (the CLI's ``--grid``) -> ``{method: [rates]}``."""
    grid = {}
    for spec in specs:
        method, sep, rates = str(spec).partition("=")
        try:
            grid[method.strip()] = [float(r) for r in rates.split(",")] if sep else []
        except ValueError:
            raise ValueError(f"--grid {spec!r} is not METHOD=RATE,RATE; pass e.g. "
                             "full=3e-4,1e-3,3e-3.") from None
    return validate_grid(grid, task)


def tuning_data(profile, tokenizer) -> dict:
    """Everything a run needs, loaded once: the prepared base, the domain's new tokens, blocks
    (and the replay mix), the floor and a scorer (notebook 02's numbers)."""
    from ..core.base import general_blocks
    from ..core.evaluate import fact_accuracy
    from ..tasks.domain import (domain_blocks, domain_floor_nats, domain_scorer, prepared_base,
                                replay_blocks)
    from ..world.stories import make_world, world_facts

    base, new_tokens = prepared_base(profile, tokenizer)
    domain_train, domain_val = domain_blocks(profile, tokenizer)
    replay = replay_blocks(domain_train, general_blocks(profile, tokenizer)[0])
    score, floor = domain_scorer(profile, tokenizer), domain_floor_nats(profile, tokenizer)
    stories = world_facts(make_world(0), "world")

    def measure(model) -> dict:
        s = score(model)
        return {"domain_loss": s["domain loss"], "domain_excess": s["domain loss"] - floor,
                "domain_facts": s["domain facts"], "general_loss": s["general loss"],
                "world_facts": fact_accuracy(model, tokenizer, stories)["accuracy"]}

    return {"base": base, "new_tokens": new_tokens, "train": domain_train, "val": domain_val,
            "replay": replay, "floor": floor, "measure": measure, "tokenizer": tokenizer}


def larger_base(profile, tokenizer):
    """Notebook 07's larger pretrained model (``base.LARGER``), ready for the domain task."""
    from ..core.base import larger_base_profile
    from ..tasks.domain import prepared_base

    return prepared_base(larger_base_profile(profile), tokenizer)[0]


def make_model(method: str, data: dict, profile, seed: int):
    """A fresh trainable model for ``method``; ``seed`` sets any random initialisation."""
    import torch

    from ..methods.finetune import full_finetune_model
    from ..methods.lora import lora_model
    from ..core.models import build_model

    validate_method(method)
    if method in ("full", "full-replay"):
        return full_finetune_model(data["base"])
    if method == "scratch":
        return build_model(profile.base_size, data["tokenizer"], profile.context, seed=seed)
    if method == "larger":
        if "larger" not in data:  # loaded once, on the first run that needs it
            data["larger"] = larger_base(profile, data["tokenizer"])
        return full_finetune_model(data["larger"])
    torch.manual_seed(seed)  # the adapters' random A
    rank = int(method.split("-r")[1])
    return lora_model(data["base"], rank, targets="all-linear", trainable_tokens=data["new_tokens"])


def tune_run(method: str, lr: float, seed: int, data: dict, profile,
             steps: int | None = None) -> dict:
    """Train one (method, rate, seed) on the domain task (``steps``: its recipe's budget when
    None) and score it."""
    from ..tasks.domain import domain_recipe
    from ..core.train import train

    cfg = domain_recipe(profile, steps=validate_steps(steps), lr=lr)
    cfg.seed, cfg.progress = seed, False  # the seed sets the batch order
    start = time.perf_counter()
    blocks = data["replay"] if method == "full-replay" else data["train"]
    result = train(make_model(method, data, profile, seed), blocks, data["val"], cfg)
    row = {"method": method, "lr": lr, "seed": seed, "steps": cfg.steps,
           **data["measure"](result.model)}
    row["train_seconds"] = round(time.perf_counter() - start, 1)  # training and scoring
    return row


def _task_functions(task: str):
    """``(prepare, run)``: the task's data loader and its one-run function."""
    if task == "distill":
        from ..tasks.students import distill_tuning_data, distill_tune_run

        return distill_tuning_data, lambda m, lr, s, data, profile, steps: distill_tune_run(
            m, lr, s, data, profile)
    if task == "instructions":
        from ..tasks.instructions import instruction_tune_run, instruction_tuning_data

        return instruction_tuning_data, lambda m, lr, s, data, profile, steps: (
            instruction_tune_run(m, lr, s, data, profile))
    return tuning_data, tune_run


_WORKER_DATA: dict = {}  # in a worker process: each (profile, task)'s data, loaded once


def _worker_run(method: str, lr: float, seed: int, profile, task: str,
                steps: int | None) -> dict:
    """One run in a worker process of ``runner.run_points`` (the data loaded on its first run)."""
    from ..core.tokenizer import load_tokenizer

    prepare, run = _task_functions(task)
    if (profile, task) not in _WORKER_DATA:
        _WORKER_DATA[(profile, task)] = prepare(profile, load_tokenizer())
    return run(method, lr, seed, _WORKER_DATA[(profile, task)], profile, steps)


def tune(grid: dict, seeds, profile, tokenizer, log=print, task: str = "domain",
         skip=(), steps: int | None = None, workers: int | None = None) -> dict:
    """Every (method, rate, seed) of ``grid`` x ``seeds`` on ``task``, except those in ``skip``
    (already in a table being extended): a table under the ``TuningRecipe``. ``steps`` sets the
    step budget (domain task; None: the recipe's); ``workers`` > 1 trains that many runs at
    once, each in a process of its own with its share of the cores (``runner.run_points``)."""
    grid = validate_grid(grid, task)
    seeds = list(seeds)
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ValueError(f"seeds={seeds!r} must be one or more whole numbers, e.g. [0, 1, 2].")
    recipe = tuning_recipe(profile, tokenizer, task, steps)
    if workers is not None:
        validate_workers(workers)
    prepare, run = _task_functions(task)
    data = prepare(profile, tokenizer)  # here too: the table's floor and teacher loss
    calls = [(method, lr, seed) for method, lrs in grid.items() for lr in lrs for seed in seeds
             if (method, lr, seed) not in skip]
    shown = {"distill": ("val_loss",), "instructions": ("em_trained", "em_heldout")}.get(
        task, ("domain_excess", "general_loss"))

    def done(i, r):
        if log:
            scores = ", ".join(f"{m.replace('_', ' ')} {r[m]:.3f}" for m in shown)
            log(f"{r['method']:>12} lr={r['lr']:<8g} seed {r['seed']}: {scores} "
                f"({r['train_seconds']:.0f} s)")

    if workers is None or workers == 1:
        rows = run_points(calls, lambda m, lr, s: run(m, lr, s, data, profile, steps), done=done)
    else:
        rows = run_points([(*c, profile, task, steps) for c in calls], None, _worker_run,
                          workers, done=done)
    extra = {}
    if "floor" in data:  # the domain notes' true entropy (nats/token)
        extra["floor_nats"] = data["floor"]
    if "teacher_loss" in data:  # notebook 06's teacher on the validation blocks
        extra["teacher_loss"] = data["teacher_loss"]
    return new_table(TUNING, recipe, rows, **extra)


def summary(table: dict) -> dict:
    """``{(method, lr): {"n": seeds, metric: mean, metric + "_std": std}}``."""
    groups: dict = {}
    for r in table["rows"]:
        groups.setdefault((r["method"], r["lr"]), []).append(r)
    out = {}
    for key, rows in groups.items():
        entry = {"n": len(rows)}
        for m in TASK_METRICS[table.get("task", "domain")]:
            values = [r[m] for r in rows]
            entry[m] = statistics.mean(values)
            entry[m + "_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        out[key] = entry
    return out


def seed_values(table: dict, method: str, lr: float, metric: str) -> list[float]:
    """``metric`` of every seed's run of ``method`` at ``lr``, in seed order (for the notebooks'
    checks, ``claims.claim_better``)."""
    rows = sorted((r for r in table["rows"] if r["method"] == method and r["lr"] == lr),
                  key=lambda r: r["seed"])
    if not rows:
        raise ValueError(f"The table has no runs of {method!r} at lr={lr:g}.")
    return [r[metric] for r in rows]


def best_rate(table: dict, method: str, metric: str | None = None,
              one_std: bool = True) -> float:
    """``method``'s best learning rate by the mean ``metric`` over seeds (lower is better):
    ``runner.best_rates``, by default its one-std reading (the *lowest* rate whose mean is within
    one seed deviation of the best mean: among rates the seeds cannot tell apart, the gentlest,
    which forgets least); ``one_std=False`` returns the plain argmin. ``metric`` defaults to the
    task's first score after the loss: the domain excess (``domain``), the validation loss
    (``distill``)."""
    task = table.get("task", "domain")
    validate_method(method, task)
    metric = metric or {"domain": "domain_excess", "distill": "val_loss",
                        "instructions": "trained_error"}[task]
    rows = [r for r in table["rows"] if r["method"] == method]
    if not rows:
        raise ValueError(f"The table has no rows for {method!r}; it has "
                         f"{sorted({r['method'] for r in table['rows']})}.")
    return best_rates(rows, "method", metric, "one_std" if one_std else "lowest")[method]


def tuning_table_path(profile: str = "cpu", task: str = "domain", steps: int | None = None
                      ) -> Path:
    """``data/tuning/<profile>_<task>.json``; another step budget: ``..._steps<N>.json``."""
    from ..store import DATA_DIR

    budget = f"_steps{steps}" if validate_steps(steps, validate_task(task)) else ""
    return DATA_DIR / "tuning" / f"{profile}_{task}{budget}.json"


def load_tuning_table(profile, tokenizer, path=None, task: str = "domain",
                      steps: int | None = None) -> dict:
    """The shipped (or given) table, refused when it was made for another profile, task, base
    model, step budget or scoring (``runner.load``: one sentence naming the path and the command
    that remakes it)."""
    path = Path(path) if path is not None else tuning_table_path(profile.name, task, steps)
    budget = f" --steps {steps}" if steps else ""
    remake = TUNING.command(f"--task {task}{budget} --profile {profile.name} --out {path}")
    return load(TUNING, path, tuning_recipe(profile, tokenizer, task, steps), remake)


DEFAULT_LORA_LR = 1e-2  # LoRA's rate where no tuning table exists (full and scratch: the profile's)
DEFAULT_STUDENT_LR = 1e-2  # notebook 06's students' rate where no tuning table exists


def _default_rate(method: str, task: str, profile) -> float:
    if task == "distill":
        return DEFAULT_STUDENT_LR
    if method == "larger":  # its own pretraining peak, as the base model's is full's default
        from ..core.base import larger_base_profile

        return larger_base_profile(profile).lr
    return DEFAULT_LORA_LR if method.startswith("lora") else profile.lr


def tuned_rates(profile, tokenizer, methods=("full", "lora-r2", "scratch"), log=print,
                task: str = "domain"):
    """``(rates, table)``: each method's best rate from the profile's shipped tuning table for
    ``task``; for a profile without one (only ``cpu`` ships tables) or a table made for another
    base model, the suite's defaults (the profile's rate; ``DEFAULT_LORA_LR`` for LoRA,
    ``DEFAULT_STUDENT_LR`` for students) and ``None``, after one line saying so and how to make
    the table."""
    for method in methods:
        validate_method(method, task)
    try:
        table = load_tuning_table(profile, tokenizer, task=task)
    except (FileNotFoundError, ValueError) as err:
        if log:
            log(f"{err} Using the default rates until then.")
        return {m: _default_rate(m, task, profile) for m in methods}, None
    return {m: best_rate(table, m) for m in methods}, table
