"""World v2: a long tail of knowledge, one shared vocabulary, facts in several phrasings.

The first world (``world.py``) is too small to teach scaling honestly: 40 people with 4 facts
each are memorised by every model size, so a bigger model has nothing left to buy. World v2 is
built like real pretraining data where that matters:

* **A long tail.** Thousands of people, each with one value per relation (town, job, pet,
  food), drawn uniformly, so a fact is worth exactly ``ln |values|`` nats to a model that does
  not know it. Person ``k`` (rank 1 = most talked about) is the subject of a story with chance
  ``p_k ∝ k^-a`` (Zipf, exponent ``a`` = ``zipf_exponent``).
* **Scaling predicted from the data** (the "quanta" view: Michaud et al. 2023, Hutter 2021). A
  model that knows the facts of the K most frequent people pays, per character, the facts of the
  rest: ``excess(K) = Σ_{k>K} p_k · bits_per_person / chars_per_story`` — ``∝ K^(1-a)`` while
  K is far below the inventory. If a model of N parameters stores ``c`` bits per parameter,
  ``K ∝ N`` and the loss above the floor falls as ``N^-(a-1)``; if a fact must be seen ``m``
  times to be learned, D tokens teach ``K ∝ D^(1/a)`` people and the excess falls as
  ``D^-((a-1)/a)``. ``knowledge_curve`` and ``predicted_exponents`` compute both from the world
  alone, before any training.
* **Several phrasings.** For a share of the people (``augmented_share``) every story states
  each fact in one of four templates, in a random order (knowledge augmentation: Allen-Zhu & Li,
  "Physics of Language Models 3.1"); the others always use one template in one order.
* **One shared vocabulary.** A share of the pretraining documents (``health_share``) is general
  health text — symptoms, drug names, doses, note headings — with none of the clinic's
  formulary facts (no condition is paired with its drug, no drug with its regimen). The clinic
  notes (the domain corpus, same program as ``world.py``) are then new facts in a known
  register, not new tokens.

As in ``world.py`` every document is a sequence of prefix-free choices, so the text can be read
back into its choices (``parse_text``) and each document carries its exact log-probability. A
fact is not a choice: once a story says "Mia Stone lived in", the town has probability 1, so the
true entropy (the floor) is made of *free-choice* bits only. ``entropy_parts`` reports it beside
the *knowledge* bits: what a model that knows none of the facts pays on top of the floor.

Corpora are written straight into Arrow (``Dataset.from_generator``), so a pool of ten million
tokens never sits in Python lists.
"""

from __future__ import annotations

import itertools
import math
import numbers
import random
from dataclasses import dataclass, field

import numpy as np
from datasets import Dataset, DatasetDict

from . import stories as v1
from .stories import Options, _check_prefix_free, _compile, _derive_seed, _Reader, _Sampler

VERSION = 2

# ----------------------------------------------------------------------------- the vocabulary
FIRST_NAMES = (
    "Ada", "Alma", "Anya", "Arlo", "Bea", "Bram", "Cora", "Cyrus", "Dara", "Dov", "Edda",
    "Emil", "Esme", "Ezra", "Faye", "Flint", "Gia", "Gus", "Hana", "Hal", "Ines", "Ira", "Jada",
    "Joss", "Kai", "Kira", "Lars", "Lena", "Luz", "Mae", "Mika", "Nell", "Nico", "Odile", "Olaf",
    "Pia", "Quinn", "Rhea", "Rolf", "Sana", "Sven", "Tara", "Theo", "Una", "Vera", "Vik", "Wynn",
    "Yara", "Zeno", "Zora")
SURNAMES = (
    "Abbot", "Barrow", "Birch", "Bolt", "Brant", "Carver", "Colby", "Crane", "Dale", "Drake",
    "Dunmore", "Ellery", "Esk", "Farrow", "Fenwick", "Frost", "Garnet", "Glass", "Greer",
    "Hale", "Harrow", "Holt", "Hurst", "Ingle", "Ives", "Jarrow", "Kell", "Kemp", "Lark",
    "Locke", "Lowry", "Marsh", "Merrow", "Moss", "Nash", "Norwood", "Oakes", "Orme", "Pike",
    "Prynne", "Quill", "Rook", "Rowan", "Rusk", "Sallow", "Shaw", "Slade", "Stroud", "Thorne",
    "Tully", "Vance", "Voss", "Wade", "Whitlock", "Wren", "Yates", "Yoxall", "Zell")
VALUES = {  # one value per person and relation, drawn uniformly: ln |values| nats per fact
    "lives_in": v1.TOWNS + ("Harrowgate", "Dunmere", "Kestrel Bay", "Lowmoor", "Northwick",
                            "Quarry Hill", "Saltmarsh", "Thistledown", "Upton", "Vale End",
                            "Westmere", "Yarrow", "Glenholm", "Cobble Cross", "Iverton",
                            "Juniper Fell"),
    "job": v1.JOBS + ("carpenter", "nurse", "miller", "weaver", "cook", "sailor", "doctor",
                      "judge", "mason", "clerk", "guard", "brewer", "smith", "poet"),
    "pet": v1.PETS + ("lizard", "ferret", "canary", "mouse", "pigeon", "snail"),
    "food": v1.FOODS + ("apples", "stew", "pancakes", "beans", "fish", "dumplings"),
}
# Four templates per relation. Template 0 is the one every single-phrasing person gets, and the
# cloze prompt of the knowledge probe ({o} always comes last, before the full stop).
TEMPLATES = {
    "lives_in": ("{s} lived in {o}.", "{s}'s home was in {o}.", "{s} came from {o}.",
                 "The home town of {s} was {o}."),
    "job": ("{s} worked as a {o}.", "{s} earned a living as a {o}.",
            "{s} had a job as a {o}.", "By trade, {s} was a {o}."),
    "pet": ("{s} had a pet {o}.", "{s} looked after a pet {o}.", "{s} kept a pet {o}.",
            "At home, {s} had a pet {o}."),
    "food": ("{s}'s favourite food was {o}.", "{s} liked to eat {o}.",
             "{s} loved to eat {o}.", "Of all foods, {s} liked {o}."),
}
RELATIONS = tuple(TEMPLATES)
# With ``pronouns``, a single-phrasing person's facts name them once, in the intro, and then say
# "They", as Allen-Zhu & Li's bioS does: the fact is stored behind the story's context, not
# behind the name. Augmented people keep the name in every sentence (itself an augmentation:
# the paper's "fullname").
PRONOUN_TEMPLATES = {"lives_in": "They lived in {o}.", "job": "They worked as a {o}.",
                     "pet": "They had a pet {o}.", "food": "Their favourite food was {o}."}
INTROS = ("This is a story about {s}.", "Here is a story about {s}.",
          "Once upon a time, there was someone called {s}.")
# Single-person events from world.py (those with a second person {q} are left out).
EVENTS = tuple(e for e in v1.EVENTS if "{q}" not in e)
ENDINGS = v1.ENDINGS


# ----------------------------------------------------------------------------- the world
@dataclass
class WorldV2:
    seed: int
    zipf_exponent: float
    people: tuple  # rank order: people[0] is the most talked-about
    facts: dict  # person -> {relation: value}
    augmented: frozenset  # people whose facts come in four phrasings and any order
    health_share: float
    weights: np.ndarray = field(repr=False)  # p_k, summing to 1
    max_events: int = 2
    clinic: v1.World = field(repr=False, default=None)  # conditions, drugs, regimens
    pronouns: bool = False  # single-phrasing facts say "They" after the intro (PRONOUN_TEMPLATES)
    choice: dict = field(default_factory=dict, repr=False, compare=False)


def _check_number(name: str, value, low: float, high: float | None = None, *,
                  open_low: bool = False, integer: bool = False, fix: str = "") -> None:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok and integer:
        ok = isinstance(value, numbers.Integral)
    if ok:
        ok = (value > low if open_low else value >= low) and (high is None or value <= high)
    if not ok:
        span = (f"> {low:g}" if open_low else f">= {low:g}") + (
            f" and <= {high:g}" if high is not None else "")
        kind = "a whole number" if integer else "a number"
        raise ValueError(f"{name}={value!r} must be {kind} {span}; {fix}")


def zipf_weights(n: int, exponent: float) -> np.ndarray:
    """``p_k ∝ k^-exponent`` for k = 1..n, summing to 1."""
    ranks = np.arange(1, n + 1, dtype=float)
    w = ranks ** -float(exponent)
    return w / w.sum()


def make_world_v2(seed: int = 0, n_people: int = 2000, zipf_exponent: float = 1.5,
                  augmented_share: float = 0.5, health_share: float = 0.1,
                  max_events: int = 2, pronouns: bool = False) -> WorldV2:
    """The v2 world; deterministic given its arguments (see the module doc). A story states
    its subject's four facts, then 1 to ``max_events`` events (0: none, a bare biography).
    ``pronouns``: single-phrasing people are named in the intro only (``PRONOUN_TEMPLATES``)."""
    _check_number("zipf_exponent", zipf_exponent, 0.0, open_low=True,
                  fix="pass e.g. zipf_exponent=1.5 (larger: a shorter tail).")
    most = len(FIRST_NAMES) * len(SURNAMES)
    _check_number("n_people", n_people, 1, most, integer=True,
                  fix=f"pass e.g. n_people=2000 (at most {most} distinct names).")
    _check_number("augmented_share", augmented_share, 0.0, 1.0,
                  fix="pass a share between 0 and 1, e.g. augmented_share=0.5.")
    _check_number("health_share", health_share, 0.0, 1.0,
                  fix="pass a share between 0 and 1, e.g. health_share=0.1.")
    _check_number("max_events", max_events, 0, len(EVENTS), integer=True,
                  fix="pass e.g. max_events=2 (0: biographies without events).")
    if not isinstance(pronouns, bool):
        raise ValueError(f"pronouns={pronouns!r} must be True or False; pass pronouns=True to "
                         "name single-phrasing people in the intro only.")
    rng = random.Random(_derive_seed(seed, "world-v2"))
    names = [f"{f} {s}" for f, s in itertools.product(FIRST_NAMES, SURNAMES)]
    people = tuple(rng.sample(names, n_people))
    facts = {p: {r: rng.choice(VALUES[r]) for r in RELATIONS} for p in people}
    # Augmented people are spread over the ranks (every other one at share 0.5), so frequent
    # and rare people are augmented alike.
    augmented = frozenset(p for k, p in enumerate(people)
                          if math.floor((k + 1) * augmented_share)
                          > math.floor(k * augmented_share))
    world = WorldV2(seed, float(zipf_exponent), people, facts, augmented, float(health_share),
                    zipf_weights(n_people, zipf_exponent), max_events,
                    clinic=v1.make_world(seed), pronouns=pronouns)
    _build_choices(world)
    return world


def _fact_sentence(w: WorldV2, person: str, relation: str, template: int = 0) -> str:
    if w.pronouns and person not in w.augmented:
        return PRONOUN_TEMPLATES[relation].format(o=w.facts[person][relation])
    return TEMPLATES[relation][template].format(s=person, o=w.facts[person][relation])


def _build_choices(w: WorldV2) -> None:
    c = w.choice
    intros = [_compile(t.replace("{s}", "{p}")) for t in INTROS]
    health = [(o, o) for o in v1.HEALTH_OPENINGS]  # world.py's health texts: words, no facts
    story_w = (1 - w.health_share) / len(intros)
    # The first choice writes a story's intro or a health text's opening: one prefix-free set.
    c["doc"] = Options([o for o, _ in intros] + [o for o, _ in health],
                       [story_w] * len(intros) + [w.health_share / len(health)] * len(health),
                       [("story", rest) for _, rest in intros]
                       + [("health", None)] * len(health))
    c["person"] = Options(w.people, w.weights.tolist())
    for name, values in v1.FILLERS.items():  # health texts keep theirs under ("health", slot)
        c[name] = Options(values)
    c["events"] = [_compile(t) for t in EVENTS]
    c["endings"] = [_compile(t) for t in ENDINGS]
    v1.build_health_choices(c)
    # Everything a story body may offer at one point comes from this one set: every fact in
    # every phrasing, every event and ending opening.
    # (a set: with pronouns, people who share a value share its sentence, never offered twice)
    _check_prefix_free({_fact_sentence(w, p, r, t) for p in w.people for r in RELATIONS
                        for t in range(len(TEMPLATES[r]))}
                       | {o for o, _ in c["events"] + c["endings"]})


# ----------------------------------------------------------------------------- the programs
def _story(w: WorldV2, io, rest) -> None:
    """Intro (one person), the person's four facts, 1 to ``max_events`` events, one ending
    sentence: short, so that facts are a large share of every story's tokens."""
    person = None
    for kind, value in rest:
        if kind == "text":
            io.emit(value)
        else:
            person = io.choose("person", w.choice["person"])
    stated, n_events, used = [], 0, set()
    augmented = person in w.augmented
    while True:
        io.emit(" ")
        kind, item, tail = io.choose("sentence", _sentence_options(w, person, augmented,
                                                                   stated, used, n_events))
        if kind == "fact":
            stated.append(item)
        elif kind == "event":
            used.add(item)
            n_events += 1
        _fill(w, io, tail, person)
        if kind == "ending":
            return


def _sentence_options(w, person, augmented, stated, used, n_events) -> Options:
    """All four facts first (any order and phrasing if augmented), then events, then the end."""
    rows = []  # (text, weight, (kind, item, rest))
    todo = [r for r in RELATIONS if r not in stated]
    if todo:
        if augmented:
            for r in todo:
                for t in range(len(TEMPLATES[r])):
                    rows.append((_fact_sentence(w, person, r, t), 1.0, ("fact", r, ())))
        else:
            rows.append((_fact_sentence(w, person, todo[0]), 1.0, ("fact", todo[0], ())))
    else:
        if n_events >= w.max_events:
            p_end = 1.0
        else:
            p_end = 0.0 if n_events == 0 else 0.6
        events = [i for i in range(len(EVENTS)) if i not in used]
        for i in events if p_end < 1 else ():
            opening, rest = w.choice["events"][i]
            rows.append((opening, (1 - p_end) / len(events), ("event", i, rest)))
        for i, (opening, rest) in enumerate(w.choice["endings"] if p_end else ()):
            rows.append((opening, p_end / len(ENDINGS), ("ending", i, rest)))
    texts, weights, values = zip(*rows)
    return Options(texts, weights, values, check=False)  # checked in _build_choices


def _fill(w: WorldV2, io, rest, person: str) -> None:
    for kind, value in rest:
        if kind == "text":
            io.emit(value)
        elif value == "p":
            io.emit(person)
        elif "." in value:  # {p.pet}: a fact, probability 1
            io.emit(w.facts[person][value.split(".")[1]])
        else:
            io.choose(value, w.choice[value])


def _document(w: WorldV2, io) -> None:
    kind, rest = io.choose("doc", w.choice["doc"])
    if kind == "story":
        _story(w, io, rest)
    else:
        v1.health_body(w.choice, io)


def _note(w: WorldV2, io) -> None:
    """A clinic note: the same program and formulary as world.py's domain corpus."""
    v1._note(w.clinic, io)


_PROGRAMS = {"general": _document, "domain": _note}


# ----------------------------------------------------------------------------- documents
def _check_kind(kind: str) -> None:
    if kind not in _PROGRAMS:
        raise ValueError(f"kind={kind!r} is not a v2 corpus; use 'general' or 'domain'.")


def _run(w: WorldV2, kind: str, rng: random.Random) -> _Sampler:
    """Generate one document; the sampler holds its parts, log-probability and choices."""
    io = _Sampler(rng)
    _PROGRAMS[kind](w, io)
    return io


def _sample(w: WorldV2, kind: str, rng: random.Random) -> tuple[str, float, int]:
    """One document: its text, natural log-probability and subject rank (0 = none)."""
    io = _run(w, kind, rng)
    rank = 0
    for name, i in io.choices:
        if name == "person":
            rank = i + 1
            break
    return "".join(io.parts), io.logprob, rank


def generate(w: WorldV2, kind: str, n_docs: int, seed=0) -> list[v1.Doc]:
    """``n_docs`` documents as ``world.Doc`` (text, exact log-probability, choices)."""
    _check_kind(kind)
    rng, docs = random.Random(seed), []
    for _ in range(n_docs):
        io = _run(w, kind, rng)
        docs.append(v1.Doc("".join(io.parts), io.logprob, tuple(io.choices)))
    return docs


def parse_text(w: WorldV2, text: str, kind: str = "general") -> v1.Doc:
    """Read a document back into its choices and exact log-probability (ValueError if the text
    could not have come from this world)."""
    _check_kind(kind)
    io = _Reader(text)
    _PROGRAMS[kind](w, io)
    if io.pos != len(text):
        raise ValueError(f"text goes on after a complete document at character {io.pos}")
    return v1.Doc(text, io.logprob, tuple(io.choices))


_ARROW_CHUNK = 20_000  # documents per Arrow batch: bounds the Python lists alive at once


def _docs_dataset(w: WorldV2, kind: str, n_docs: int, seed) -> Dataset:
    """Documents straight into Arrow, a chunk at a time (no list of a whole pool)."""
    import pyarrow as pa

    rng, batches = random.Random(seed), []
    schema = pa.schema([("text", pa.string()), ("logprob_bits", pa.float64()),
                        ("n_chars", pa.int32()), ("person_rank", pa.int32())])
    for start in range(0, n_docs, _ARROW_CHUNK):
        rows = [_sample(w, kind, rng) for _ in range(min(_ARROW_CHUNK, n_docs - start))]
        batches.append(pa.record_batch(
            [pa.array([t for t, _, _ in rows]),
             pa.array([-lp / math.log(2) for _, lp, _ in rows]),
             pa.array([len(t) for t, _, _ in rows], pa.int32()),
             pa.array([r for _, _, r in rows], pa.int32())], schema=schema))
        del rows
    return Dataset(pa.Table.from_batches(batches, schema=schema))


def corpus(kind: str, n_train: int, n_val: int, seed: int = 0, world: WorldV2 | None = None
           ) -> DatasetDict:
    """Train and validation splits: text, logprob_bits (-log2 p), n_chars, person_rank (the
    story's subject, 1 = most frequent; 0 for health texts and clinic notes)."""
    _check_kind(kind)
    for name, n, least in (("n_train", n_train, 1), ("n_val", n_val, 0)):
        _check_number(name, n, least, integer=True, fix=f"pass e.g. {name}=200.")
    w = world if world is not None else make_world_v2()
    return DatasetDict({split: _docs_dataset(w, kind, n, _derive_seed(seed, "v2", kind, split))
                        for split, n in (("train", n_train), ("validation", n_val))})


# ----------------------------------------------------------------------------- entropy and knowledge
def knowledge_nats_per_story(w: WorldV2) -> float:
    """What a story costs a model that knows everything but its subject's facts: one uniform
    guess per relation, ``Σ_r ln |values_r|`` nats."""
    return sum(math.log(len(VALUES[r])) for r in RELATIONS)


def entropy_parts(w: WorldV2, n_docs: int = 20_000, seed: int = 0) -> dict:
    """The floor and what knowledge adds to it, in bits per character, from a fresh sample.

    ``free_bits_per_char`` is the true entropy (facts cost nothing to a model that knows them);
    ``knowledge_bits_per_char`` is what a model that knows no fact pays on top of it; their sum
    is the loss of a perfect model of everything except the facts.
    """
    _check_number("n_docs", n_docs, 1, integer=True, fix="pass e.g. n_docs=20000.")
    rng = random.Random(_derive_seed(seed, "v2", "entropy"))
    bits = chars = stories = 0.0
    for _ in range(n_docs):
        text, logprob, rank = _sample(w, "general", rng)
        bits -= logprob / math.log(2)
        chars += len(text)
        stories += rank > 0
    knowledge = stories * knowledge_nats_per_story(w) / math.log(2)
    return {"free_bits_per_char": bits / chars, "knowledge_bits_per_char": knowledge / chars,
            "chars_per_doc": chars / n_docs, "story_share": stories / n_docs,
            "knowledge_bits_total": len(w.people) * knowledge_nats_per_story(w) / math.log(2)}


def excess_if_known(w: WorldV2, k, chars_per_story: float | None = None):
    """Expected nats per *story* (or per character, given ``chars_per_story``: total characters
    / stories) above the floor for a model that knows the facts of the ``k`` most frequent
    people and none of the rest: ``Σ_{rank>k} p_rank · Σ_r ln |values_r|``."""
    tail = np.concatenate([np.cumsum(w.weights[::-1])[::-1], [0.0]])  # tail[k] = Σ_{rank>k}
    k = np.clip(np.asarray(k, dtype=float), 0, len(w.people))
    per_story = np.interp(k, np.arange(len(tail)), tail) * knowledge_nats_per_story(w)
    return per_story if chars_per_story is None else per_story / chars_per_story


def _loglog_slope(x, y) -> float:
    x, y = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    return float(np.polyfit(x, y, 1)[0])


def predicted_exponents(w: WorldV2, n_params, bits_per_param: float,
                        stories, min_exposures: float) -> dict:
    """The loss-vs-size and loss-vs-data exponents, predicted from the world alone.

    * size: a model of N parameters holding ``bits_per_param`` bits each knows
      ``K(N) = N · bits_per_param / bits_per_person`` people (the most frequent first), so its
      excess is ``excess_if_known(K(N))``; ``alpha`` is the log-log slope over ``n_params``.
    * data: a person is learned once seen ``min_exposures`` times; ``stories`` training stories
      show person k ``stories · p_k`` times, so ``K(D)`` people are learnable; ``beta`` is the
      log-log slope of ``excess_if_known(K(D))`` over ``stories``.

    ``alpha_asymptotic = a - 1`` and ``beta_asymptotic = (a - 1) / a`` are the slopes of an
    infinite Zipf tail (Michaud et al. 2023); a finite inventory steepens both near its end.
    """
    _check_number("bits_per_param", bits_per_param, 0.0, open_low=True,
                  fix="pass the capacity measured by the knowledge probe, e.g. 1.0.")
    _check_number("min_exposures", min_exposures, 0.0, open_low=True,
                  fix="pass e.g. min_exposures=20.")
    n_params, stories = np.asarray(n_params, float), np.asarray(stories, float)
    bits_per_person = knowledge_nats_per_story(w) / math.log(2)
    k_size = n_params * bits_per_param / bits_per_person
    k_data = np.array([(s * w.weights >= min_exposures).sum() for s in stories], float)
    ex_size, ex_data = excess_if_known(w, k_size), excess_if_known(w, k_data)
    a = w.zipf_exponent
    out = {"alpha_asymptotic": a - 1, "beta_asymptotic": (a - 1) / a,
           "k_size": k_size, "k_data": k_data, "excess_size": ex_size, "excess_data": ex_data}
    out["alpha"] = -_loglog_slope(n_params, ex_size) if (ex_size > 0).all() else float("nan")
    out["beta"] = -_loglog_slope(stories, ex_data) if (ex_data > 0).all() else float("nan")
    return out


def min_exposures(w: WorldV2, n_stories: float) -> float:
    """How often the least-mentioned person is the subject of ``n_stories`` training stories,
    in expectation."""
    return float(n_stories * w.weights[-1])


# ----------------------------------------------------------------------------- facts
def facts(w: WorldV2, ranks=None, template: int = 0, own_phrasing: bool = False) -> list[dict]:
    """Cloze facts of the people at ``ranks`` (1 = most frequent; default all), in the probe
    format of ``world.world_facts``: context + prompt, then the answer, is corpus text.

    By default every fact is asked with the person's name (``TEMPLATES[r][template]``).
    ``own_phrasing`` asks a person whose biographies say "They" (``pronouns``) the way they do:
    the intro, the facts stated before this one, then "They lived in" (bioS's completion: does
    the model hold the fact at all, whatever a question can reach?)."""
    ranks = range(1, len(w.people) + 1) if ranks is None else ranks
    rows = []
    for k in ranks:
        person = w.people[k - 1]
        pronoun = own_phrasing and w.pronouns and person not in w.augmented
        for i, r in enumerate(RELATIONS):
            context = INTROS[0].format(s=person) + " "
            if pronoun:
                before = [_fact_sentence(w, person, q) for q in RELATIONS[:i]]
                context += "".join(f"{sentence} " for sentence in before)
                prompt = PRONOUN_TEMPLATES[r].split(" {o}")[0]
            else:
                prompt = TEMPLATES[r][template].split(" {o}")[0].format(s=person)
            rows.append({"fact_id": f"v2:{r}:{person}", "kind": "world", "subject": person,
                         "relation": r, "object": w.facts[person][r], "rank": k,
                         "augmented": person in w.augmented, "context": context,
                         "prompt": prompt, "answer": " " + w.facts[person][r]})
    return rows


def stories_to_learn(w: WorldV2, k: int, min_exposures: float) -> float:
    """Training stories needed for the ``k`` most frequent people to be seen ``min_exposures``
    times each (in expectation): ``min_exposures / p_k``. With ``k = len(w.people)`` this is
    the budget at which every fact of the world is learnable."""
    _check_number("k", k, 1, len(w.people), integer=True,
                  fix=f"pass a rank from 1 to {len(w.people)}.")
    return float(min_exposures / w.weights[k - 1])


QUESTIONS = {
    "lives_in": ("Where does {s} live?", "In which town does {s} live?"),
    "job": ("What is {s}'s job?", "What does {s} work as?"),
    "pet": ("What pet does {s} have?", "Which animal does {s} keep as a pet?"),
    "food": ("What is {s}'s favourite food?", "Which food does {s} like best?"),
}


def instruction_set(w: WorldV2, n_people: int = 400, test_fraction: float = 0.5, seed: int = 0
                    ) -> DatasetDict:
    """Questions about the ``n_people`` most frequent people, split *by person* (Allen-Zhu &
    Li 3.1): instruction tuning on some people's facts, exact match on the others' shows
    whether pretraining stored knowledge in an extractable form. ``augmented`` tells which
    people were seen in four phrasings."""
    _check_number("n_people", n_people, 2, len(w.people), integer=True,
                  fix=f"pass e.g. n_people={min(400, len(w.people))}.")
    _check_number("test_fraction", test_fraction, 0.0, 1.0, open_low=True,
                  fix="pass a share between 0 and 1, e.g. test_fraction=0.5.")
    people = list(w.people[:n_people])
    random.Random(_derive_seed(seed, "v2-instructions")).shuffle(people)
    n_test = max(1, round(test_fraction * n_people))
    rows: dict = {"train": [], "test": []}
    for i, person in enumerate(people):
        for r in RELATIONS:
            fact = TEMPLATES[r][0].format(s=person, o=w.facts[person][r])
            for q in QUESTIONS[r]:
                rows["test" if i < n_test else "train"].append(
                    {"question": q.format(s=person), "answer": w.facts[person][r],
                     "response": fact, "relation": r, "subject": person,
                     "rank": w.people.index(person) + 1, "augmented": person in w.augmented})
    return DatasetDict({split: Dataset.from_list(r) for split, r in rows.items()})
