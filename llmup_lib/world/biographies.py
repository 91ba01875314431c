"""The biography world: a long tail of knowledge, one shared vocabulary, facts in several phrasings.

The story world (``stories``) is too small to teach scaling honestly: 40 people with 4 facts
each are memorised by every model size, so a bigger model has nothing left to buy. The biography
world (first designed as "World v2", the name its seeds and fact ids still carry) is built like
real pretraining data where that matters:

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
  ``D^-((a-1)/a)``. ``knowledge.excess_if_known`` and ``knowledge.predicted_exponents``
  compute both from the world alone, before any training.
* **Several phrasings.** For a share of the people (``augmented_share``) every story states
  each fact in one of four templates, in a random order (knowledge augmentation: Allen-Zhu & Li,
  "Physics of Language Models 3.1"); the others always use one template in one order.
* **One shared vocabulary.** A share of the pretraining documents (``health_share``) is general
  health text — symptoms, drug names, doses, note headings — with none of the clinic's
  formulary facts (no condition is paired with its drug, no drug with its regimen). The clinic
  notes (the domain corpus: the story world's program, ``clinic``) are then new facts in a
  known register, not new tokens.

As in every world run by the ``engine``, a document is a sequence of prefix-free choices, so the
text can be read back into its choices (``parse_text``) and each document carries its exact
log-probability. A fact is not a choice: once a story says "Mia Stone lived in", the town has
probability 1, so the true entropy (the floor) is made of *free-choice* bits only.
``knowledge.entropy_parts`` reports it beside the *knowledge* bits: what a model that knows none
of the facts pays on top of the floor.

Corpora are written straight into Arrow, a record batch of ``_ARROW_CHUNK`` documents at a time,
so a pool of ten million tokens never sits in Python lists.
"""

from __future__ import annotations

import itertools
import math
import numbers
import random
from dataclasses import dataclass, field

import numpy as np
from datasets import Dataset, DatasetDict

from . import stories
from .clinic import HEALTH_OPENINGS, build_health_choices, clinic_note, health_body
from .engine import (Doc, Options, compile_template, derive_seed, generate as generate_docs,
                     parse, run, validate_prefix_free, zipf_weights)

VERSION = 2  # the design's version number (not its name); unchanged, like the seeds' keys

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
    "lives_in": stories.TOWNS + ("Harrowgate", "Dunmere", "Kestrel Bay", "Lowmoor", "Northwick",
                            "Quarry Hill", "Saltmarsh", "Thistledown", "Upton", "Vale End",
                            "Westmere", "Yarrow", "Glenholm", "Cobble Cross", "Iverton",
                            "Juniper Fell"),
    "job": stories.JOBS + ("carpenter", "nurse", "miller", "weaver", "cook", "sailor", "doctor",
                      "judge", "mason", "clerk", "guard", "brewer", "smith", "poet"),
    "pet": stories.PETS + ("lizard", "ferret", "canary", "mouse", "pigeon", "snail"),
    "food": stories.FOODS + ("apples", "stew", "pancakes", "beans", "fish", "dumplings"),
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
# Single-person events of the story world (those with a second person {q} are left out).
EVENTS = tuple(e for e in stories.EVENTS if "{q}" not in e)
ENDINGS = stories.ENDINGS


# ----------------------------------------------------------------------------- the world
@dataclass
class BiographyWorld:
    seed: int
    zipf_exponent: float
    people: tuple  # rank order: people[0] is the most talked-about
    facts: dict  # person -> {relation: value}
    augmented: frozenset  # people whose facts come in four phrasings and any order
    health_share: float
    weights: np.ndarray = field(repr=False)  # p_k, summing to 1
    max_events: int = 2
    clinic: stories.World = field(repr=False, default=None)  # conditions, drugs, regimens
    pronouns: bool = False  # single-phrasing facts say "They" after the intro (PRONOUN_TEMPLATES)
    choice: dict = field(default_factory=dict, repr=False, compare=False)


def validate_number(name: str, value, low: float, high: float | None = None, *,
                    open_low: bool = False, integer: bool = False, fix: str = "") -> None:
    """Raise ValueError (saying what to pass instead, ``fix``) unless ``value`` is a finite
    number (a whole one if ``integer``) in ``[low, high]`` (``(low, high]`` if ``open_low``)."""
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


def make_biography_world(seed: int = 0, n_people: int = 2000, zipf_exponent: float = 1.5,
                         augmented_share: float = 0.5, health_share: float = 0.1,
                         max_events: int = 2, pronouns: bool = False) -> BiographyWorld:
    """The biography world; deterministic given its arguments (see the module doc). A story states
    its subject's four facts, then 1 to ``max_events`` events (0: none, a bare biography).
    ``pronouns``: single-phrasing people are named in the intro only (``PRONOUN_TEMPLATES``)."""
    validate_number("zipf_exponent", zipf_exponent, 0.0, open_low=True,
                    fix="pass e.g. zipf_exponent=1.5 (larger: a shorter tail).")
    most = len(FIRST_NAMES) * len(SURNAMES)
    validate_number("n_people", n_people, 1, most, integer=True,
                    fix=f"pass e.g. n_people=2000 (at most {most} distinct names).")
    validate_number("augmented_share", augmented_share, 0.0, 1.0,
                    fix="pass a share between 0 and 1, e.g. augmented_share=0.5.")
    validate_number("health_share", health_share, 0.0, 1.0,
                    fix="pass a share between 0 and 1, e.g. health_share=0.1.")
    validate_number("max_events", max_events, 0, len(EVENTS), integer=True,
                    fix="pass e.g. max_events=2 (0: biographies without events).")
    if not isinstance(pronouns, bool):
        raise ValueError(f"pronouns={pronouns!r} must be True or False; pass pronouns=True to "
                         "name single-phrasing people in the intro only.")
    rng = random.Random(derive_seed(seed, "world-v2"))  # the seed's key: keep it (results)
    names = [f"{f} {s}" for f, s in itertools.product(FIRST_NAMES, SURNAMES)]
    people = tuple(rng.sample(names, n_people))
    facts = {p: {r: rng.choice(VALUES[r]) for r in RELATIONS} for p in people}
    # Augmented people are spread over the ranks (every other one at share 0.5), so frequent
    # and rare people are augmented alike.
    augmented = frozenset(p for k, p in enumerate(people)
                          if math.floor((k + 1) * augmented_share)
                          > math.floor(k * augmented_share))
    world = BiographyWorld(seed, float(zipf_exponent), people, facts, augmented,
                           float(health_share), zipf_weights(n_people, zipf_exponent), max_events,
                           clinic=stories.make_world(seed), pronouns=pronouns)
    _build_choices(world)
    return world


def _fact_sentence(w: BiographyWorld, person: str, relation: str, template: int = 0) -> str:
    if w.pronouns and person not in w.augmented:
        return PRONOUN_TEMPLATES[relation].format(o=w.facts[person][relation])
    return TEMPLATES[relation][template].format(s=person, o=w.facts[person][relation])


def _build_choices(w: BiographyWorld) -> None:
    c = w.choice
    intros = [compile_template(t.replace("{s}", "{p}")) for t in INTROS]
    health = [(o, o) for o in HEALTH_OPENINGS]  # the clinic's health texts: words, no facts
    story_w = (1 - w.health_share) / len(intros)
    # The first choice writes a story's intro or a health text's opening: one prefix-free set.
    c["doc"] = Options([o for o, _ in intros] + [o for o, _ in health],
                       [story_w] * len(intros) + [w.health_share / len(health)] * len(health),
                       [("story", rest) for _, rest in intros]
                       + [("health", None)] * len(health))
    c["person"] = Options(w.people, w.weights.tolist())
    for name, values in stories.FILLERS.items():  # health texts keep theirs under ("health", slot)
        c[name] = Options(values)
    c["events"] = [compile_template(t) for t in EVENTS]
    c["endings"] = [compile_template(t) for t in ENDINGS]
    build_health_choices(c)
    # Everything a story body may offer at one point comes from this one set: every fact in
    # every phrasing, every event and ending opening.
    # (a set: with pronouns, people who share a value share its sentence, never offered twice)
    validate_prefix_free({_fact_sentence(w, p, r, t) for p in w.people for r in RELATIONS
                        for t in range(len(TEMPLATES[r]))}
                       | {o for o, _ in c["events"] + c["endings"]})


# ----------------------------------------------------------------------------- the programs
def _story(w: BiographyWorld, io, rest) -> None:
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
    return Options(texts, weights, values, validate=False)  # checked in _build_choices


def _fill(w: BiographyWorld, io, rest, person: str) -> None:
    for kind, value in rest:
        if kind == "text":
            io.emit(value)
        elif value == "p":
            io.emit(person)
        elif "." in value:  # {p.pet}: a fact, probability 1
            io.emit(w.facts[person][value.split(".")[1]])
        else:
            io.choose(value, w.choice[value])


def _document(w: BiographyWorld, io) -> None:
    kind, rest = io.choose("doc", w.choice["doc"])
    if kind == "story":
        _story(w, io, rest)
    else:
        health_body(w.choice, io)


def _note(w: BiographyWorld, io) -> None:
    """A clinic note: the same program and formulary as the story world's domain corpus."""
    clinic_note(w.clinic, io)


_PROGRAMS = {"general": _document, "domain": _note}


# ----------------------------------------------------------------------------- documents
def _validate_kind(kind: str) -> None:
    if kind not in _PROGRAMS:
        raise ValueError(f"kind={kind!r} is not a biography-world corpus; use 'general' or "
                         "'domain'.")


def sample_document(w: BiographyWorld, kind: str, rng: random.Random) -> tuple[str, float, int]:
    """One document drawn from ``rng``: its text, natural log-probability and subject rank
    (1 = most frequent; 0 = none: a health text or a clinic note)."""
    io = run(_PROGRAMS[kind], w, rng)
    rank = 0
    for name, i in io.choices:
        if name == "person":
            rank = i + 1
            break
    return "".join(io.parts), io.logprob, rank


def generate(w: BiographyWorld, kind: str, n_docs: int, seed=0) -> list[Doc]:
    """``n_docs`` documents as ``engine.Doc`` (text, exact log-probability, choices)."""
    _validate_kind(kind)
    return generate_docs(_PROGRAMS[kind], w, n_docs, seed)


def parse_text(w: BiographyWorld, text: str, kind: str = "general") -> Doc:
    """Read a document back into its choices and exact log-probability (ValueError if the text
    could not have come from this world)."""
    _validate_kind(kind)
    return parse(_PROGRAMS[kind], w, text)


_ARROW_CHUNK = 20_000  # documents per Arrow batch: bounds the Python lists alive at once


def _arrow_dataset(w: BiographyWorld, kind: str, n_docs: int, seed) -> Dataset:
    """Documents straight into Arrow, a chunk at a time (no list of a whole pool)."""
    import pyarrow as pa

    rng, batches = random.Random(seed), []
    schema = pa.schema([("text", pa.string()), ("logprob_bits", pa.float64()),
                        ("n_chars", pa.int32()), ("person_rank", pa.int32())])
    for start in range(0, n_docs, _ARROW_CHUNK):
        rows = [sample_document(w, kind, rng) for _ in range(min(_ARROW_CHUNK, n_docs - start))]
        batches.append(pa.record_batch(
            [pa.array([t for t, _, _ in rows]),
             pa.array([-lp / math.log(2) for _, lp, _ in rows]),
             pa.array([len(t) for t, _, _ in rows], pa.int32()),
             pa.array([r for _, _, r in rows], pa.int32())], schema=schema))
        del rows
    return Dataset(pa.Table.from_batches(batches, schema=schema))


def corpus(kind: str, n_train: int, n_val: int, seed: int = 0,
           world: BiographyWorld | None = None) -> DatasetDict:
    """Train and validation splits: text, logprob_bits (-log2 p), n_chars, person_rank (the
    story's subject, 1 = most frequent; 0 for health texts and clinic notes)."""
    _validate_kind(kind)
    for name, n, least in (("n_train", n_train, 1), ("n_val", n_val, 0)):
        validate_number(name, n, least, integer=True, fix=f"pass e.g. {name}=200.")
    w = world if world is not None else make_biography_world()
    return DatasetDict({split: _arrow_dataset(w, kind, n, derive_seed(seed, "v2", kind, split))
                        for split, n in (("train", n_train), ("validation", n_val))})


# ----------------------------------------------------------------------------- facts
def facts(w: BiographyWorld, ranks=None, template: int = 0, own_phrasing: bool = False
          ) -> list[dict]:
    """Cloze facts of the people at ``ranks`` (1 = most frequent; default all), in the probe
    format of ``stories.world_facts``: context + prompt, then the answer, is corpus text.

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


QUESTIONS = {
    "lives_in": ("Where does {s} live?", "In which town does {s} live?"),
    "job": ("What is {s}'s job?", "What does {s} work as?"),
    "pet": ("What pet does {s} have?", "Which animal does {s} keep as a pet?"),
    "food": ("What is {s}'s favourite food?", "Which food does {s} like best?"),
}


def instruction_set(w: BiographyWorld, n_people: int = 400, test_fraction: float = 0.5,
                    seed: int = 0) -> DatasetDict:
    """Questions about the ``n_people`` most frequent people, split *by person* (Allen-Zhu &
    Li 3.1): instruction tuning on some people's facts, exact match on the others' shows
    whether pretraining stored knowledge in an extractable form. ``augmented`` tells which
    people were seen in four phrasings."""
    validate_number("n_people", n_people, 2, len(w.people), integer=True,
                    fix=f"pass e.g. n_people={min(400, len(w.people))}.")
    validate_number("test_fraction", test_fraction, 0.0, 1.0, open_low=True,
                    fix="pass a share between 0 and 1, e.g. test_fraction=0.5.")
    people = list(w.people[:n_people])
    random.Random(derive_seed(seed, "v2-instructions")).shuffle(people)
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
