"""Knowledge extraction (Allen-Zhu & Li, *Physics of LMs 3.1*): pretraining's phrasing decides
whether instruction tuning can reach a fact.

A small model is pretrained from scratch on World v2 biographies of 200 people, every fact seen
about 200 times. It is then instruction-tuned (full fine-tuning, prompt masked) on questions
about half of the people and asked about the other half. The held-out exact match says whether
pretraining stored the facts in a form a question can reach; the fact probe (multiple choice)
says whether it stored them at all. Three arms differ only in how the biographies are written:

- ``single``: one template and one order, the person named in the first sentence only and
  "They" after it (the paper's bioS);
- ``fullname``: one template, the full name in every sentence (World v2's default; the paper
  counts this as an augmentation);
- ``augmented``: four templates in any order, the name in every sentence.

Pretraining takes about 4 minutes per arm on 2 cores, too slow for a notebook, so
``python -m llmup_lib experiment extraction`` writes the table over seeds (``llmup_lib/data/extraction/cpu.json``)
and saves the seed-0 bases of the ``single`` and ``augmented`` arms in float16
(``llmup_lib/data/extraction/cpu_<arm>``); notebook 04b instruction-tunes those two live. Every run rounds
its pretrained weights to float16 before instruction tuning, so a shipped base repeats its row.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..store import DATA_DIR as _SHIPPED  # the checkout's data/, or the installed package's
from ..store import write_json
from .runner import Kind, load, new_table, run_points

DATA_DIR = _SHIPPED / "extraction"
ARMS = {"single": {"augmented_share": 0.0, "pronouns": True},
        "fullname": {"augmented_share": 0.0, "pronouns": False},
        "augmented": {"augmented_share": 1.0, "pronouns": False}}
SHIPPED_BASES = ("single", "augmented")
EXTRACTION = Kind("extraction", "extraction", row_key=("arm", "seed"),
                  takes=" (with --save-bases: about 40 minutes on 2 cores)")


@dataclass(frozen=True)
class ExtractionRecipe:
    """One arm: pretraining on bare biographies, then instruction tuning and greedy scoring."""

    people: int = 200  # near-uniform (zipf exponent 1e-3): every person seen about equally
    docs: int = 40_000  # biographies to pretrain on: about 200 per person
    val_docs: int = 200
    size: str = "small"
    context: int = 128
    steps: int = 1500
    batch_size: int = 16
    lr: float = 3e-3
    it_steps: int = 150
    it_batch_size: int = 32
    it_lr: float = 1e-3
    eval_rows: int = 200  # questions scored per split (trained people, held-out people)
    max_new_tokens: int = 24
    # what exact match compares: the attribute value alone. The whole answer sentence ("Mae
    # Abbot lived in Brookside.") is verbatim pretraining text for `fullname` and `augmented`
    # and never appears for `single`, so scoring it would favour two arms by form, not recall.
    scoring: str = "attribute value"


RECIPE = ExtractionRecipe()
SCORINGS = ("attribute value", "sentence")
# the fields that make a base model; the rest only instruction-tune and score it
PRETRAINING_FIELDS = ("people", "docs", "val_docs", "size", "context", "steps", "batch_size", "lr")


def pretraining_recipe(recipe: ExtractionRecipe) -> dict:
    return {k: getattr(recipe, k) for k in PRETRAINING_FIELDS}


def validate_arm(arm) -> str:
    if arm not in ARMS:
        raise ValueError(f"Unknown extraction arm {arm!r}; use one of {', '.join(ARMS)}.")
    return arm


def extraction_world(arm: str, seed: int, recipe: ExtractionRecipe = RECIPE):
    """The arm's world: the same people and facts for every arm of a seed, written its way."""
    from ..world.biographies import make_biography_world

    return make_biography_world(seed=seed, n_people=recipe.people, zipf_exponent=1e-3,
                                health_share=0.0, max_events=0, **ARMS[validate_arm(arm)])


def pretrain(arm: str, seed: int, tokenizer, recipe: ExtractionRecipe = RECIPE):
    """Pretrain the arm's base from random weights: ``(model, validation loss)``, the weights
    rounded to float16 (as shipped) and the loss theirs."""
    from ..core.models import build_model
    from ..core.tokenizer import pack_blocks
    from ..core.train import TrainConfig, eval_loss, train
    from ..world.biographies import corpus

    bios = corpus("general", n_train=recipe.docs, n_val=recipe.val_docs, seed=seed,
                  world=extraction_world(arm, seed, recipe))
    train_blocks = pack_blocks(bios["train"]["text"], tokenizer, recipe.context)
    val_blocks = pack_blocks(bios["validation"]["text"], tokenizer, recipe.context)
    model = build_model(recipe.size, tokenizer, recipe.context, seed=seed)
    model = train(model, train_blocks, None,
                  TrainConfig(steps=recipe.steps, batch_size=recipe.batch_size, lr=recipe.lr,
                              seed=seed, progress=False)).model
    model.half().float()  # the weights a shipped base holds
    return model, eval_loss(model, val_blocks, recipe.batch_size)


def states_value(answer: str, value: str) -> bool:
    """Whether an answer gives ``value`` as its attribute: the answer, less its final full
    stop, ends with the value ("Cyrus Holt lived in Brookside." states "Brookside", whatever
    name it starts with; "Brookside is far." does not)."""
    return answer.strip().removesuffix(".").rstrip().endswith(value.strip())


def asked(model, tokenizer, rows, limit: int, max_new_tokens: int):
    """``(rows, answers)``: a fixed sample of ``limit`` questions (spread over the people) and
    the model's greedy answers to them."""
    from ..tasks.instructions import answer_questions

    rows = rows.shuffle(seed=0).select(range(min(limit, len(rows))))
    return rows, answer_questions(model, tokenizer, rows["question"], max_new_tokens)


def share_right(rows, answers, scoring: str = RECIPE.scoring) -> float:
    """Share of ``answers`` right: ``scoring="attribute value"`` asks for the value alone
    (``states_value``), ``"sentence"`` for exactly the expected sentence."""
    if scoring not in SCORINGS:
        raise ValueError(f"Unknown extraction scoring {scoring!r}; use one of "
                         f"{', '.join(map(repr, SCORINGS))}.")
    if scoring == "sentence":
        right = [a == r for a, r in zip(answers, rows["response"])]
    else:
        right = [states_value(a, v) for a, v in zip(answers, rows["answer"])]
    return sum(right) / len(right)


def exact_match(model, tokenizer, rows, limit: int, max_new_tokens: int,
                scoring: str = RECIPE.scoring) -> float:
    """Share of ``limit`` questions answered right (``asked``, then ``share_right``)."""
    return share_right(*asked(model, tokenizer, rows, limit, max_new_tokens), scoring)


def instruction_tune(base, arm: str, seed: int, tokenizer, recipe: ExtractionRecipe = RECIPE):
    """A copy of ``base`` instruction-tuned on half the people's questions (prompt masked):
    ``(model, questions)``, the questions split by person into ``train`` and ``test``."""
    from ..methods.finetune import full_finetune_model
    from ..tasks.instructions import instruction_rows
    from ..core.train import TrainConfig, train
    from ..world.biographies import instruction_set

    qa = instruction_set(extraction_world(arm, seed, recipe), n_people=recipe.people, seed=seed)
    rows = instruction_rows(tokenizer, qa["train"]["question"], qa["train"]["response"])
    tuned = train(full_finetune_model(base), rows, None,  # a trainable copy: base is untouched
                  TrainConfig(steps=recipe.it_steps, batch_size=recipe.it_batch_size,
                              lr=recipe.it_lr, seed=seed, progress=False)).model
    return tuned, qa


def run_arm(arm: str, seed: int, tokenizer, recipe: ExtractionRecipe = RECIPE,
            save_to=None) -> dict:
    """One row of the table: pretrain, optionally save the base, instruction-tune, score."""
    from ..core.evaluate import fact_accuracy
    from ..world.biographies import facts

    start = time.perf_counter()
    base, val_loss = pretrain(arm, seed, tokenizer, recipe)
    pretrain_seconds = time.perf_counter() - start
    if save_to is not None:
        save_base(base, save_to, arm, seed, recipe, val_loss)
    tuned, qa = instruction_tune(base, arm, seed, tokenizer, recipe)
    world = extraction_world(arm, seed, recipe)
    scores = {"probe_all_people": fact_accuracy(base, tokenizer, facts(world))["accuracy"],
              # storage, asked the way this base read its biographies ("... They lived in")
              "probe_own_phrasing": fact_accuracy(base, tokenizer,
                                                  facts(world, own_phrasing=True))["accuracy"]}
    scores["em_trained"] = exact_match(tuned, tokenizer, qa["train"], recipe.eval_rows,
                                       recipe.max_new_tokens, recipe.scoring)
    rows, answers = asked(tuned, tokenizer, qa["test"], recipe.eval_rows, recipe.max_new_tokens)
    scores["em_heldout"] = share_right(rows, answers, recipe.scoring)
    # the whole sentence too, to show what scoring the form would add (information only)
    scores["em_heldout_sentence"] = share_right(rows, answers, "sentence")
    return {"arm": arm, "seed": seed, "pretrain_val_loss": round(val_loss, 5),
            **{k: round(v, 4) for k, v in scores.items()},
            "pretrain_seconds": round(pretrain_seconds),
            "seconds": round(time.perf_counter() - start)}


def run_table(arms, seeds, tokenizer, recipe: ExtractionRecipe = RECIPE, save_bases=None,
              log=print) -> dict:
    """Every (seed, arm); with ``save_bases`` (a folder) the first seed's bases of the arms in
    ``SHIPPED_BASES`` are saved there as ``cpu_<arm>`` (made on the 2-core CPU machine)."""
    arms = [validate_arm(a) for a in arms]
    seeds = list(seeds)
    calls = []
    for seed in seeds:
        for arm in arms:
            save_to = None
            if save_bases is not None and seed == seeds[0] and arm in SHIPPED_BASES:
                save_to = Path(save_bases) / f"cpu_{arm}"
            calls.append((arm, seed, save_to))
    rows = run_points(calls, lambda arm, seed, save_to: run_arm(arm, seed, tokenizer, recipe,
                                                                 save_to),
                      done=lambda i, row: log(json.dumps(row)) if log else None)
    return new_table(EXTRACTION, recipe, rows, seeds=seeds)


# ----------------------------------------------------------------------------- files
def table_path(profile: str = "cpu") -> Path:
    return DATA_DIR / f"{profile}.json"


def load_table(path=None, recipe: ExtractionRecipe = RECIPE) -> dict:
    """The shipped (or given) table, refused when its recipe is not ``recipe``."""
    return load(EXTRACTION, path or table_path(), recipe)


def save_base(model, path, arm: str, seed: int, recipe: ExtractionRecipe, val_loss: float) -> Path:
    path = Path(path)
    model.half().save_pretrained(path)
    model.float()
    meta = {"arm": arm, "seed": seed, "recipe": asdict(recipe), "val_loss": round(val_loss, 5)}
    write_json(path / "extraction_base.json", meta)
    return path


def load_base(arm: str, tokenizer, recipe: ExtractionRecipe = RECIPE, seed: int = 0,
              log=print, folder=DATA_DIR):
    """The arm's base for ``seed``: the one saved in ``folder`` (shipped for ``single`` and
    ``augmented``, seed 0) when it was pretrained as ``recipe`` says (its instruction-tuning
    fields may differ), else pretrained here (about 4 minutes on 2 cores)."""
    import torch

    from ..core.models import load_model

    path = Path(folder) / f"cpu_{validate_arm(arm)}"
    meta_file = path / "extraction_base.json"
    if meta_file.exists():
        meta = json.loads(meta_file.read_text())
        saved = {k: meta["recipe"].get(k) for k in PRETRAINING_FIELDS}
        if saved == pretraining_recipe(recipe) and meta["seed"] == seed:
            return load_model(path, dtype=torch.float32)
    log(f"no shipped {arm!r} base for this recipe and seed {seed}: pretraining it "
        f"({recipe.steps} steps)")
    return pretrain(arm, seed, tokenizer, recipe)[0]


# ----------------------------------------------------------------------------- reading the table
def arm_values(table: dict, arm: str, metric: str = "em_heldout") -> list[float]:
    """One value per seed of ``metric`` for ``arm``."""
    values = [r[metric] for r in table["rows"] if r["arm"] == validate_arm(arm)]
    if not values:
        raise ValueError(f"The extraction table has no {arm!r} rows; rerun "
                         f"`{EXTRACTION.command(f'--arms {arm}')}`.")
    return values


