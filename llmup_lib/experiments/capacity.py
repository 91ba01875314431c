"""Knowledge capacity (Allen-Zhu & Li, *Physics of LMs 3.3*): how many bits of facts a model of
N parameters stores, and how much of its loss that explains.

Models of several sizes are pretrained from scratch on World v2 biographies of a fixed set of
people (near-uniform, so every person is seen about ``exposures`` times; the name in every
sentence). Each person has four facts, 17.4 bits in all (``biographies.BiographyWorld``). After
training, a multiple-choice probe scores every fact: the model's distribution ``q`` over the
relation's values, and the bits it holds about the fact, ``log2 |values| + log2 q(true value)``
-- the code length it saves against a uniform guess. Summed over every fact this is the bits the
model stores: a model that knows only how often each value occurs scores 0, and a confidently
wrong one (or one that has not even learned the values) below 0, so chance adds nothing (tested
with an oracle, a uniform and a wrong scorer).

Small models cannot hold the inventory: their bits grow with N (the capacity-limited sizes), until
a size holds it all. Dividing bits by parameters gives the bits per parameter, set beside 3.3's
"2 bits per parameter" (measured there at 1,000 exposures, on far larger models).

Each run trains for one pass over its biographies, about a minute on one core, so
``python -m llmup_lib experiment capacity`` writes the table (``llmup_lib/data/capacity/cpu.json``: a learning-rate
sweep on seed 0, then each size at its best rate on two more seeds); notebook 05b reads it and
retrains the smallest size live.

The same pretraining on a Zipf world (``ZIPF_RECIPE``, ``experiment capacity --zipf``: person k
read with chance p_k ∝ k^-1.5) asks which facts a model knows. The probe asks the most frequent
people and a sample of the rest, and ``knowledge_profile`` reads each run the way notebook 05's
Zipf memory is read: the facts known, K, the cost of the missing ones, and what that cost would
be if the K people known were the most frequent (the memory) or any K (a frequency-blind null).
"""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path

from ..store import DATA_DIR as _SHIPPED  # the checkout's data/, or the installed package's
from .runner import Kind, best_rates as _best_rates, load, new_table, run_points, validate_workers

DATA_DIR = _SHIPPED / "capacity"
SIZES = ("2x8", "2x16", "2x24", "2x32", "2x48")


@dataclass(frozen=True)
class CapacityRecipe:
    """Pretraining on bare biographies, one pass, then the knowledge probe over every person."""

    people: int = 320  # near-uniform (zipf exponent 1e-3); 320 x 17.4 = 5,566 bits of facts
    exposures: int = 200  # biographies per person: one pass over people x exposures documents
    val_docs: int = 200
    context: int = 128
    batch_size: int = 16
    zipf_exponent: float = 1e-3  # 1e-3: every person is read about `exposures` times
    probe_head: int = 0  # 0: probe every person; else the `probe_head` most frequent ones exactly
    probe_tail: int = 0  # ... and this many of the rest, drawn uniformly (a stratified estimate)


RECIPE = CapacityRecipe()
# The same pretraining on a Zipf world (notebook 05b, section 3): 2,000 people, person k the
# subject of a biography with chance p_k ∝ k^-1.5, 64,000 biographies (32 per person on average:
# the most frequent is read about 25,000 times, the 25th 200 times, the 300th 5 times). The probe
# asks the 300 most frequent people and 100 of the other 1,700, drawn uniformly.
ZIPF_RECIPE = CapacityRecipe(people=2000, exposures=32, zipf_exponent=1.5, probe_head=300,
                             probe_tail=100)
ZIPF_SIZES = ("2x16", "2x24", "2x32", "2x48")  # 2x8 knows nobody in the uniform world either
# notebook 05b's exposure sweep: readings per person, each count a table of its own (200: cpu.json)
EXPOSURES = (50, 100, 200, 400)
CAPACITY = Kind("capacity", "capacity", row_key=("size", "lr", "seed"),
                order=("seed", "params", "lr"),
                takes=" (the commands in llmup_lib/data/capacity/README.md: 17 minutes on 2 cores)")
_DATA: dict = {}  # (seed, recipe, vocabulary) -> prepared data, kept for the seed's next run


def capacity_world(seed: int, recipe: CapacityRecipe = RECIPE):
    from ..world.biographies import make_biography_world

    return make_biography_world(seed=seed, n_people=recipe.people,
                                zipf_exponent=recipe.zipf_exponent, health_share=0.0, max_events=0)


def probes_everyone(recipe: CapacityRecipe) -> bool:
    """Whether the recipe's probe asks every person (no head and tail sample)."""
    return not recipe.probe_head or recipe.probe_head >= recipe.people


def probe_ranks(seed: int, recipe: CapacityRecipe = RECIPE) -> list[int]:
    """The ranks the probe asks (1 = most frequent): everyone, or the head and a uniform sample
    of the tail (``probe_head``, ``probe_tail``), drawn from the seed."""
    if probes_everyone(recipe):
        return list(range(1, recipe.people + 1))
    import numpy as np

    from ..world.engine import derive_seed

    rng = np.random.default_rng(derive_seed(seed, "capacity", "probe-tail"))
    rest = np.arange(recipe.probe_head + 1, recipe.people + 1)
    tail = rng.choice(rest, size=min(recipe.probe_tail, len(rest)), replace=False)
    return list(range(1, recipe.probe_head + 1)) + sorted(int(k) for k in tail)


def capacity_data(seed: int, tokenizer, recipe: CapacityRecipe = RECIPE) -> dict:
    """The seed's training and validation blocks, the true floor (nats/token) and the facts."""
    from ..core.tokenizer import pack_blocks
    from ..world.biographies import corpus, facts

    key = (seed, recipe, frozenset(tokenizer.get_vocab().items()))  # another tokenizer: new data
    if key not in _DATA:
        world = capacity_world(seed, recipe)
        bios = corpus("general", n_train=recipe.people * recipe.exposures,
                      n_val=recipe.val_docs, seed=seed, world=world)
        val = bios["validation"]
        val_tokens = sum(len(x) + 1 for x in  # + EOS, which the floor knows for free
                         tokenizer(list(val["text"]), add_special_tokens=False)["input_ids"])
        _DATA.clear()  # one seed at a time: the blocks are the bulk of a worker's memory
        _DATA[key] = {
            "train": pack_blocks(bios["train"]["text"], tokenizer, recipe.context),
            "val": pack_blocks(val["text"], tokenizer, recipe.context),
            "floor": sum(val["logprob_bits"]) * math.log(2) / val_tokens,
            "tokens_per_bio": val_tokens / len(val),
            "facts": facts(world, probe_ranks(seed, recipe)),
        }
    return _DATA[key]


def inventory_bits(recipe: CapacityRecipe = RECIPE) -> float:
    """Bits of facts in the world: people x sum over relations of log2 |values|."""
    from ..world.biographies import RELATIONS, VALUES

    return recipe.people * sum(math.log2(len(VALUES[r])) for r in RELATIONS)


def fact_bits(model, tokenizer, facts, batch_size: int = 64) -> tuple[list, list]:
    """The multiple-choice probe, fact by fact: the bits the model holds about each fact
    (log2 |values| + log2 q(true value), q the model's distribution over the relation's values)
    and whether the true value is its first choice."""
    import numpy as np

    from ..core.evaluate import sequence_logprobs
    from ..world.biographies import VALUES

    prompts, values = [], []
    for f in facts:
        for v in VALUES[f["relation"]]:
            prompts.append(f["context"] + f["prompt"])
            values.append(" " + v)
    scores = np.array(sequence_logprobs(model, tokenizer, prompts, values, batch_size=batch_size))
    bits, known = [], []
    start = 0
    for f in facts:  # each fact's choices are consecutive in ``scores``
        choices = VALUES[f["relation"]]
        s = scores[start:start + len(choices)]
        start += len(choices)
        true = choices.index(f["object"])
        bits.append(math.log2(len(choices)) + (s[true] - np.logaddexp.reduce(s)) / math.log(2))
        known.append(bool(np.argmax(s) == true))
    return bits, known


def knowledge_bits(model, tokenizer, facts, batch_size: int = 64) -> dict:
    """The probe summed over ``facts``: ``bits`` and ``known``, the share of facts whose true
    value is the model's first choice (``fact_bits``)."""
    bits, known = fact_bits(model, tokenizer, facts, batch_size)
    return {"bits": float(sum(bits)), "known": sum(known) / len(facts)}


def _by_person(facts, values) -> dict:
    """``values`` (one per fact) summed per person's rank."""
    out: dict = {}
    for f, v in zip(facts, values):
        out[f["rank"]] = out.get(f["rank"], 0.0) + float(v)
    return out


def probe_fields(facts, bits, known, recipe: CapacityRecipe) -> dict:
    """A row's probe columns. Every person asked: the sums. A head and a tail sample: the
    totals estimated (the tail sample scaled to the whole tail), and each head person's bits and
    the sample's ranks and bits, which notebook 05b reads person by person."""
    if probes_everyone(recipe):
        return {"bits": round(float(sum(bits)), 1),
                "facts_known": round(sum(known) / len(facts), 4)}
    head = recipe.probe_head
    per_bits, per_known = _by_person(facts, bits), _by_person(facts, known)
    tail = sorted(k for k in per_bits if k > head)
    scale = (recipe.people - head) / len(tail)  # each sampled person stands for `scale` people
    total_bits = (sum(per_bits[k] for k in range(1, head + 1))
                  + scale * sum(per_bits[k] for k in tail))
    total_known = (sum(per_known[k] for k in range(1, head + 1))
                   + scale * sum(per_known[k] for k in tail))
    return {"bits": round(total_bits, 1),
            "facts_known": round(total_known / (4 * recipe.people), 4),
            "head_bits": [round(per_bits[k], 2) for k in range(1, head + 1)],
            "tail_ranks": tail, "tail_bits": [round(per_bits[k], 2) for k in tail]}


def validate_size(size) -> str:
    from ..core.family import parse_shape

    parse_shape(size)  # one sentence naming the bad size and the fix
    return size


def run_point(size: str, lr: float, seed: int, tokenizer, recipe: CapacityRecipe = RECIPE) -> dict:
    """One row: ``size`` pretrained from random weights at peak rate ``lr`` for one pass over the
    seed's biographies, then its validation loss, excess over the floor and stored bits."""
    from ..core.models import count_params
    from ..core.family import build_grid_model, non_embedding_params, parse_shape
    from ..core.train import TrainConfig, eval_loss, train

    data = capacity_data(seed, tokenizer, recipe)
    start = time.perf_counter()
    model = build_grid_model(validate_size(size), tokenizer, recipe.context, seed=seed)
    steps = len(data["train"]) // recipe.batch_size  # one pass: each biography seen once
    model = train(model, data["train"], None,
                  TrainConfig(steps=steps, batch_size=recipe.batch_size, lr=lr, seed=seed,
                              progress=False)).model
    train_seconds = time.perf_counter() - start
    loss = eval_loss(model, data["val"], 32)
    bits, known = fact_bits(model, tokenizer, data["facts"])
    params = non_embedding_params(parse_shape(size))
    return {"size": size, "lr": lr, "seed": seed, "params": params,
            "params_all": count_params(model)["total"], "steps": steps,
            "tokens": steps * recipe.batch_size * recipe.context,
            "val_loss": round(loss, 5), "floor": round(data["floor"], 5),
            "excess": round(loss - data["floor"], 5),
            "tokens_per_bio": round(data["tokens_per_bio"], 2),
            **probe_fields(data["facts"], bits, known, recipe),
            "train_seconds": round(train_seconds, 1),
            "seconds": round(time.perf_counter() - start, 1)}


def _worker_point(size, lr, seed, recipe) -> dict:
    from ..core.tokenizer import load_tokenizer

    return run_point(size, lr, seed, load_tokenizer(), recipe)


def run_table(points, tokenizer, recipe: CapacityRecipe = RECIPE, workers: int = 1,
              log=print) -> dict:
    """Every ``(size, lr, seed)`` of ``points``; ``workers`` > 1 trains that many at once, each
    process with its share of the cores (``runner.run_points``)."""
    validate_workers(workers)
    points = [(validate_size(s), float(lr), int(seed)) for s, lr, seed in points]

    done = (lambda i, row: log(json.dumps(row))) if log else None
    if workers == 1:  # in this process
        rows = run_points(points, lambda s, lr, seed: run_point(s, lr, seed, tokenizer, recipe),
                          done=done)
    else:
        rows = run_points([(*p, recipe) for p in points], None, _worker_point, workers,
                          done=done)
    rows.sort(key=lambda r: tuple(r[k] for k in CAPACITY.order))
    return new_table(CAPACITY, recipe, rows, inventory_bits=round(inventory_bits(recipe), 1))


# ----------------------------------------------------------------------------- files
def exposure_recipe(exposures: int | None = None) -> CapacityRecipe:
    """The recipe with ``exposures`` biographies per person (None: the default, 200)."""
    if exposures is None:
        return RECIPE
    if isinstance(exposures, bool) or not isinstance(exposures, int) or exposures <= 0:
        raise ValueError(f"exposures={exposures!r} must be a positive whole number of biographies "
                         "per person; pass e.g. 100.")
    return replace(RECIPE, exposures=exposures)


def table_path(profile: str = "cpu", exposures: int = RECIPE.exposures, zipf: bool = False
               ) -> Path:
    """The shipped table: ``cpu.json`` at the default exposures, ``cpu_e<N>.json`` at others,
    ``cpu_zipf.json`` for the Zipf world (``ZIPF_RECIPE``)."""
    if zipf:
        return DATA_DIR / f"{profile}_zipf.json"
    suffix = "" if exposures == RECIPE.exposures else f"_e{exposures}"
    return DATA_DIR / f"{profile}{suffix}.json"


def load_table(path=None, recipe: CapacityRecipe = RECIPE) -> dict:
    """The shipped (or given) table, refused when its recipe is not ``recipe``."""
    return load(CAPACITY, path or table_path(), recipe)


# ----------------------------------------------------------------------------- reading the table
def best_rates(table: dict, metric: str = "val_loss") -> dict:
    """Each size's rate with the lowest mean ``metric`` over its seeds: ``runner.best_rates``'
    ``"lowest"`` reading, not the tuning tables' one-std one, because this table's rate sweep ran
    one seed and only each size's lowest-mean rate has three (see there)."""
    return _best_rates(table["rows"], "size", metric, rule="lowest")


def at_best(table: dict) -> list[dict]:
    """One entry per size at its best rate, smallest first: ``size``, ``params``, ``lr``, and
    per metric the list over seeds (``bits``, ``excess``, ``val_loss``, ``facts_known``)."""
    rates = best_rates(table)
    out = []
    for size, lr in rates.items():
        rows = sorted((r for r in table["rows"] if r["size"] == size and r["lr"] == lr),
                      key=lambda r: r["seed"])
        entry = {"size": size, "params": rows[0]["params"], "params_all": rows[0]["params_all"],
                 "lr": lr, "seeds": [r["seed"] for r in rows]}
        for m in ("bits", "excess", "val_loss", "facts_known"):
            entry[m] = [r[m] for r in rows]
        out.append(entry)
    return sorted(out, key=lambda e: e["params"])


def knowledge_excess(bits: float, table: dict) -> float:
    """The part of the loss above the floor (nats/token) that the probe's missing bits explain:
    every biography states all of one person's facts, so a model short of ``inventory - bits``
    pays that share of a person's bits on each biography's tokens."""
    people = table["recipe"]["people"]
    per_bio = statistics.mean(r["tokens_per_bio"] for r in table["rows"])  # each seed's world
    return (table["inventory_bits"] - bits) * math.log(2) / (people * per_bio)





# ----------------------------------------------------------------------------- a Zipf world
def person_bits(recipe: CapacityRecipe = ZIPF_RECIPE) -> float:
    """Bits of one person's facts: Σ over relations of log2 |values| (17.4)."""
    return inventory_bits(replace(recipe, people=1))


def readings_by_rank(recipe: CapacityRecipe = ZIPF_RECIPE):
    """How many of the training biographies are about the person at each rank (1 first), in
    expectation: ``people x exposures x p_k``."""
    from ..world.engine import zipf_weights

    return recipe.people * recipe.exposures * zipf_weights(recipe.people, recipe.zipf_exponent)


def knowledge_profile(row: dict, recipe: CapacityRecipe = ZIPF_RECIPE) -> dict:
    """One run on a Zipf world read the way 05's Zipf memory is read: which contexts it knows.

    * ``unknown_bits``: what the model holds about a person it has not learned, the p-weighted
      mean over the tail sample (ranks past ``probe_head``, read a few times each). Below 0
      when its guess leans to the values of the people it reads most.
    * ``known_share``: each head person's share of the way from ``unknown_bits`` to all B bits
      (``person_bits``), at most 1 (below 0 where the model holds less than about the unknown).
    * ``k``: the people's worth of facts it holds, the head's shares summed.
    * ``measured``: the knowledge part of the loss, Σ_k p_k (B − bits_k) ln 2 per biography: the
      head exactly, each tail person at ``unknown_bits``.
    * ``memory``: the memory's prediction from ``k`` alone: it knows the K most frequent people
      and none of the rest, each at the same cost, so it pays the Zipf tail past K.
    * ``null``: the same K people known regardless of how often they are read.

    The three excesses in nats per token (per biography over the row's ``tokens_per_bio``)."""
    import numpy as np

    from ..world.engine import zipf_weights
    from ..world.knowledge import tail_mass

    if probes_everyone(recipe) or "head_bits" not in row:
        raise ValueError("knowledge_profile reads a Zipf table's rows (with head_bits); load "
                         "it with load_table(path, ZIPF_RECIPE).")
    p = zipf_weights(recipe.people, recipe.zipf_exponent)
    b = person_bits(recipe)
    head = np.asarray(row["head_bits"], float)
    tail_p = p[np.asarray(row["tail_ranks"]) - 1]
    unknown = float((tail_p * np.asarray(row["tail_bits"], float)).sum() / tail_p.sum())
    cost = b - unknown  # bits an unknown person costs
    h = len(head)
    share = np.minimum(1.0, (head - unknown) / cost)
    k = float(share.sum())
    missing = (p[:h] * (b - head)).sum() + p[h:].sum() * cost
    memory = float(tail_mass(p, k)) * cost
    null = (1 - k / recipe.people) * cost
    per_token = math.log(2) / row["tokens_per_bio"]
    return {"size": row["size"], "seed": row["seed"], "params": row["params"], "k": k,
            "known_share": share.tolist(), "unknown_bits": unknown,
            "measured": float(missing * per_token),
            "memory": float(memory * per_token), "null": float(null * per_token),
            "excess": row["excess"]}
