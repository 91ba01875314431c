"""A world whose truth is known.

The suite's corpora are not scraped: they are *generated* from a small fixed world (people, towns,
pets, a clinic's formulary), so we know exactly what a perfect model would know.

* Every document is made by a sequence of random choices (which person, which sentence, which
  place...). Each choice writes its own piece of text, and the pieces offered at one choice are
  *prefix-free* (none is the start of another). So the text can be read back into its choices
  (``parse_text``): different choice sequences never give the same text, and
  p(text) = p(choice sequence) = the product of the choices' probabilities. Each ``Doc`` carries
  that exact log-probability.
* Facts are not choices: once the story says "Mia lived in", the town has probability 1. A model
  that has memorised the world pays nothing for it; one that has not, pays the bits of a guess.
* Hence a corpus has a known *true entropy* in bits per character
  (``entropy_bits_per_char``): the floor that no model's cross-entropy can beat on average.

The machinery (choice points, sampler and reader, ``Doc``, seeds, the generic driver) is
``engine``; the clinic's vocabulary, notes and health texts are ``clinic``. This module is the
story world and its three products: a general corpus (short stories, and a tenth of general
health text that shares the clinic's vocabulary but none of its facts), a domain corpus (clinic
notes) and an instruction set (questions and answers about the facts, split by fact).
"""

from __future__ import annotations


import random
from dataclasses import dataclass, field

from datasets import Dataset, DatasetDict

from .clinic import (DOMAIN_PROMPTS, HEALTH, HEALTH_OPENINGS, build_health_choices,
                     build_note_choices, clinic_note, draw_formulary, health_body)
from .engine import (Doc, Options, compile_template, derive_seed, docs_dataset, generate,
                     harmonic_weights, parse, validate_prefix_free)

# ----------------------------------------------------------------------------- the vocabulary
# Lists that share a choice point must be prefix-free; make_world checks this, so an edit that
# breaks it fails loudly instead of silently making the entropy wrong.

NAMES = ("Mia", "Leo", "Ava", "Noah", "Ella", "Sam", "Ruby", "Finn", "Lily", "Jack", "Rose",
         "Owen", "Ivy", "Max", "Grace", "Ben", "Lucy", "Tom", "Nora", "Eli", "Zoe", "Hugo",
         "Alice", "Oscar", "Daisy", "Felix", "Hazel", "Jude", "Maya", "Ted", "Iris", "Carl",
         "Wren", "Paul", "Fern", "Milo", "Tess", "Otto", "June", "Dean")
TOWNS = ("Oakville", "Millbrook", "Riverton", "Stonebridge", "Fernhill", "Ashford",
         "Brookside", "Elmwood", "Pinecrest", "Maplewood", "Willowby", "Redcliff")
JOBS = ("baker", "farmer", "teacher", "painter", "builder", "fisher", "tailor", "potter",
        "singer", "gardener")  # all start with a consonant: "worked as a ..."
PETS = ("cat", "dog", "rabbit", "goat", "pony", "duck", "parrot", "turtle", "hamster", "goose")
FOODS = ("soup", "bread", "rice", "cheese", "pie", "noodles", "carrots", "honey", "plums",
         "porridge")
FILLERS = {  # free slots of the event sentences: random, not facts
    "place": ("park", "market", "river", "library", "garden", "bakery", "harbour", "meadow",
              "station", "forest"),
    "color": ("red", "blue", "green", "yellow", "little", "shiny", "wooden", "striped"),
    "object": ("ball", "kite", "book", "hat", "cup", "box", "drum", "lamp", "key", "scarf"),
    "animal": ("fox", "owl", "deer", "frog", "squirrel", "hedgehog", "crow", "mouse", "badger",
               "heron", "mole", "beetle"),
    "weather": ("sunny", "rainy", "windy", "snowy", "foggy", "cold"),
    "town": TOWNS,
}

# One fixed sentence per relation, so "Mia lived in" is a clean cloze prompt for the fact.
FACT_FORMS = {"lives_in": "{s} lived in {o}.", "job": "{s} worked as a {o}.",
              "pet": "{s} had a pet {o}.", "food": "{s}'s favourite food was {o}."}

# Slots: {a} first person, {b} second person (intro only); {p} one of the story's people,
# {q} the other one; {p.pet} etc. a fact about p; anything else is a FILLERS choice.
INTROS = ("Once upon a time, there lived a child named {a}.",
          "This is a story about {a}.",
          "In a quiet town, there was someone called {a}.",
          "Once upon a time, two friends named {a} and {b} lived near each other.",
          "This story is about {a} and {b}.",
          "There were once two neighbours, {a} and {b}.")
EVENTS = ("In the morning, {p} walked to the {place}.",
          "After lunch, {p} took the {p.pet} for a walk to the {place}.",
          "One {weather} day, {p} found a {color} {object} near the {place}.",
          "Later, {p} gave {q} a {color} {object}.",
          "That afternoon, {p} and {q} played with a {object} in the {place}.",
          "At noon, {p} had {p.food} for lunch at home in {p.lives_in}.",
          "On the way to work, {p} the {p.job} saw a {animal} by the {place}.",
          "Then {p} wrote a letter to a friend in {town}.",
          "In the evening, {p} read a book about a {color} {animal}.",
          "Suddenly, a {animal} ran past {p} and into the {place}.",
          "The next day, {p} took the bus to {town}.",
          "Soon, {p} asked {q} for help with a {object}.",
          "Every week, {p} bought {p.food} at the market in {p.lives_in}.",
          "At night, {p} dreamed about a {color} {object}.")
ENDINGS = ("That night, {p} fell asleep in {p.lives_in} with a smile.",
           "In the end, {p} was tired but very happy.",
           "From then on, {p} always kept a {color} {object} close by.",
           "And that was the end of a busy day for {p} the {p.job}.")


# The general corpus mixes in health texts (``clinic``): the clinic's words, never its facts.
HEALTH_SHARE = 0.1  # share of the general corpus's documents that are health texts

# Questions about every fact (the instruction set), the clinic's formulary facts too.
QUESTIONS = {
    "lives_in": ("Where does {s} live?", "In which town does {s} live?",
                 "What is the name of {s}'s home town?"),
    "job": ("What is {s}'s job?", "What does {s} work as?", "What kind of work does {s} do?"),
    "pet": ("What pet does {s} have?", "What animal does {s} keep as a pet?"),
    "food": ("What is {s}'s favourite food?", "Which food does {s} like best?"),
    "first_line_drug": ("Which drug is first-line for {s}?",
                        "What is the first-line treatment for {s}?",
                        "A patient has {s}. Which drug should they start?"),
    "dose": ("What is the dose of {s}?", "How much {s} is given per dose?"),
    "frequency": ("How often is {s} taken?", "What is the dosing frequency of {s}?"),
    "duration": ("For how long is {s} given?", "How long is a course of {s}?"),
}


# ----------------------------------------------------------------------------- the world
@dataclass
class World:
    seed: int
    people: tuple  # most talked-about first
    facts: dict  # person -> {"lives_in": town, "job": ..., "pet": ..., "food": ...}
    conditions: tuple  # most common first
    symptoms: dict  # condition -> its symptoms, in SYMPTOMS order
    drug: dict  # condition -> first-line drug
    regimen: dict  # drug -> {"dose": ..., "frequency": ..., "duration": ...}
    health_share: float = HEALTH_SHARE  # share of general documents that are health texts
    choice: dict = field(default_factory=dict, repr=False, compare=False)  # Options by name


def make_world(seed: int = 0, health_share: float = HEALTH_SHARE) -> World:
    """The fixed world: who lives where, which drug treats what. Deterministic given seed.

    ``health_share`` of the general corpus's documents are health texts (0: stories only)."""
    if (isinstance(health_share, bool) or not isinstance(health_share, (int, float))
            or not 0.0 <= health_share < 1.0):
        raise ValueError(f"health_share={health_share!r} must be a number in [0, 1); pass "
                         f"e.g. health_share={HEALTH_SHARE} (0: stories only).")
    rng = random.Random(seed)
    people = rng.sample(NAMES, len(NAMES))  # a shuffled order = who is talked about most
    facts = {p: {"lives_in": rng.choice(TOWNS), "job": rng.choice(JOBS), "pet": rng.choice(PETS),
                 "food": rng.choice(FOODS)} for p in people}
    conditions, symptoms, drug, regimen = draw_formulary(rng)  # the clinic's facts, after them
    world = World(seed, tuple(people), facts, tuple(conditions), symptoms, drug, regimen,
                  float(health_share))
    _build_choices(world)
    return world


def _build_choices(w: World) -> None:
    """Precompute the static choice points (and check every one is prefix-free)."""
    c = w.choice
    c["person"] = Options(w.people, harmonic_weights(len(w.people)))
    for p in w.people:  # the second person: anyone but the first, same relative weights
        others = [(q, wt) for q, wt in zip(w.people, harmonic_weights(len(w.people))) if q != p]
        c["other", p] = Options([q for q, _ in others], [wt for _, wt in others])
    for name, values in FILLERS.items():
        c[name] = Options(values)
    intros = [compile_template(t) for t in INTROS]
    # The first choice writes a story's intro or a health text's opening: one prefix-free set.
    openings = HEALTH_OPENINGS if w.health_share > 0 else ()
    c["intro"] = Options([o for o, _ in intros] + list(openings),
                         [(1 - w.health_share) / len(intros)] * len(intros)
                         + [w.health_share / len(HEALTH_OPENINGS)] * len(openings),
                         [r for _, r in intros] + [HEALTH] * len(openings))
    build_health_choices(c)
    c["events"] = [compile_template(t) for t in EVENTS]
    c["endings"] = [compile_template(t) for t in ENDINGS]
    # Every sentence the story body may offer at one point comes from this one set.
    validate_prefix_free([_fact_sentence(w, p, r) for p in w.people for r in FACT_FORMS]
                         + [o for o, _ in c["events"] + c["endings"]])
    build_note_choices(w)


def _fact_sentence(w: World, person: str, relation: str) -> str:
    return FACT_FORMS[relation].format(s=person, o=w.facts[person][relation])


# ----------------------------------------------------------------------------- the programs
# A program is written once and run two ways (``engine``): by a Sampler (generate) and by a
# Reader (parse). The domain program, a clinic note, is ``clinic.clinic_note``.
def _general(w: World, io) -> None:
    """A general document: a story, or (share ``w.health_share``) a health text."""
    rest = io.choose("intro", w.choice["intro"])
    if rest == HEALTH:
        health_body(w.choice, io)
    else:
        _story(w, io, rest)


def _story(w: World, io, intro) -> None:
    """Intro (1-2 people), 1-3 facts about them, 3-6 events, one ending sentence."""
    people: list = []
    _fill(w, io, intro, people)
    stated, used, n_events = set(), set(), 0
    while True:
        io.emit(" ")
        kind, item, rest = io.choose("sentence", _sentence_options(w, people, stated, used,
                                                                   n_events))
        if kind == "fact":
            stated.add(item)
        elif kind == "event":
            used.add(item)
            n_events += 1
        _fill(w, io, rest, people)
        if kind == "ending":
            return


def _sentence_mix(n_facts: int, n_events: int):
    """Chance of (a fact, an event, the ending) as the next sentence."""
    if n_events == 0 and n_facts < 3:
        p_fact = (1.0, 0.5, 0.35)[n_facts]
        return p_fact, 1 - p_fact, 0.0
    if n_events < 3:
        return 0.0, 1.0, 0.0
    return (0.0, 0.65, 0.35) if n_events < 6 else (0.0, 0.0, 1.0)


def _sentence_options(w, people, stated, used, n_events) -> Options:
    p_fact, p_event, p_end = _sentence_mix(len(stated), n_events)
    rows = []  # (text, weight, value); value = (kind, item, rest of the sentence)
    facts = [(p, r) for p in people for r in FACT_FORMS if (p, r) not in stated]
    for fact in facts if p_fact else ():
        rows.append((_fact_sentence(w, *fact), p_fact / len(facts), ("fact", fact, ())))
    events = [i for i, (_, rest) in enumerate(w.choice["events"])
              if i not in used and (len(people) == 2 or ("slot", "q") not in rest)]
    for i in events if p_event else ():
        opening, rest = w.choice["events"][i]
        rows.append((opening, p_event / len(events), ("event", i, rest)))
    for i, (opening, rest) in enumerate(w.choice["endings"] if p_end else ()):
        rows.append((opening, p_end / len(ENDINGS), ("ending", i, rest)))
    texts, weights, values = zip(*rows)
    return Options(texts, weights, values, validate=False)  # checked in _build_choices


def _fill(w: World, io, rest, people: list) -> None:
    """Write the rest of a sentence; {p} and {q} keep their person for the whole sentence."""
    bound: dict = {}
    for kind, value in rest:
        if kind == "text":
            io.emit(value)
        elif value in ("a", "b"):
            opts = w.choice["person"] if value == "a" else w.choice["other", people[0]]
            people.append(io.choose("person", opts))
        elif "." in value:  # a fact: no choice, probability 1
            who, relation = value.split(".")
            io.emit(w.facts[bound[who]][relation])
        elif value in bound:
            io.emit(bound[value])
        elif value == "p":
            bound["p"] = _choose_person(w, io, people)
        elif value == "q":
            bound["q"] = next(x for x in people if x != bound["p"])
            io.emit(bound["q"])
        else:
            io.choose(value, w.choice[value])


def _choose_person(w: World, io, people: list) -> str:
    if len(people) == 1:  # nothing to choose
        io.emit(people[0])
        return people[0]
    key = ("pair", *people)
    if key not in w.choice:
        w.choice[key] = Options(people)
    return io.choose("actor", w.choice[key])


_PROGRAMS = {"general": _general, "domain": clinic_note}


# ----------------------------------------------------------------------------- documents
def _generate(world: World, kind: str, n_docs: int, seed) -> list[Doc]:
    return generate(_PROGRAMS[kind], world, n_docs, seed)


def generate_general(world: World, n_docs: int, seed=0) -> list[Doc]:
    """Short stories set in the world."""
    return _generate(world, "general", n_docs, seed)


def generate_domain(world: World, n_docs: int, seed=0) -> list[Doc]:
    """Clinic notes from the world's formulary."""
    return _generate(world, "domain", n_docs, seed)


def parse_text(world: World, text: str, kind: str) -> Doc:
    """Recover a document's choices and exact log-probability from its text alone.

    Raises ValueError if the text could not have been generated (kind "general" or "domain").
    """
    return parse(_PROGRAMS[kind], world, text)


def score_text(world: World, text: str, kind: str) -> float:
    """Natural log-probability of ``text`` under the generator."""
    return parse_text(world, text, kind).logprob


# ----------------------------------------------------------------------------- datasets
def document_floor_nats(texts, kind: str, world_seed: int = 0) -> list[float]:
    """The floor of each document scored whole: ``-ln p(text)`` under the generator, read back
    from the text alone (``score_text``), in nats. What ``evaluate.whole_document_losses`` of a
    perfect model would give, document by document."""
    world = make_world(world_seed)
    return [-score_text(world, text, kind) for text in texts]


def _corpus(kind: str, n_train: int, n_val: int, seed: int, world_seed: int) -> DatasetDict:
    world = make_world(world_seed)
    return DatasetDict({split: docs_dataset(_generate(world, kind, n,
                                                       derive_seed(seed, kind, split)))
                        for split, n in (("train", n_train), ("validation", n_val))})


def general_corpus(n_train: int, n_val: int, seed: int = 0, world_seed: int = 0) -> DatasetDict:
    """Stories: columns text, logprob_bits (-log2 p), n_chars; train and validation differ."""
    return _corpus("general", n_train, n_val, seed, world_seed)


def domain_corpus(n_train: int, n_val: int, seed: int = 0, world_seed: int = 0) -> DatasetDict:
    """Clinic notes, same columns as general_corpus."""
    return _corpus("domain", n_train, n_val, seed, world_seed)


def entropy_bits_per_char(ds) -> float:
    """The floor: total bits of the documents / their total characters."""
    if isinstance(ds, DatasetDict):
        raise TypeError("entropy_bits_per_char takes one split, e.g. ds['validation'].")
    return sum(ds["logprob_bits"]) / sum(ds["n_chars"])


def true_entropy(kind: str = "general", n_docs: int = 10_000, seed: int = 0,
                 world_seed: int = 0) -> float:
    """Bits per character of a fresh sample: an estimate of the corpus's entropy rate."""
    docs = _generate(make_world(world_seed), kind, n_docs, derive_seed(seed, kind, "entropy"))
    return sum(d.bits for d in docs) / sum(len(d.text) for d in docs)


# ----------------------------------------------------------------------------- facts
def world_facts(world: World, kind: str = "world") -> list[dict]:
    """The facts the corpus states, with a cloze prompt: prompt + answer is corpus text."""
    if kind == "world":
        rows = [(p, r, world.facts[p][r], FACT_FORMS[r].split(" {o}")[0].format(s=p))
                for p in world.people for r in FACT_FORMS]
    elif kind == "domain":
        rows = []
        for cond in world.conditions:
            drug = world.drug[cond]
            rows.append((cond, "first_line_drug", drug,
                         DOMAIN_PROMPTS["first_line_drug"].format(s=cond)))
            for r in ("dose", "frequency", "duration"):
                rows.append((drug, r, world.regimen[drug][r],
                             DOMAIN_PROMPTS[r].format(s=drug, **world.regimen[drug])))
    else:
        raise ValueError(f"kind={kind!r} is not a fact kind; use 'world' or 'domain'.")
    # A probe reads best in the setting where the fact was read: a story has begun about the
    # person (the intro names them but does not give the fact); a note's prompt sets its own.
    context = "This is a story about {s}. " if kind == "world" else ""
    return [{"fact_id": f"{kind}:{r}:{s}", "kind": kind, "subject": s, "relation": r,
             "object": o, "context": context.format(s=s), "prompt": prompt, "answer": " " + o}
            for s, r, o, prompt in rows]


def instruction_set(world_seed: int = 0, seed: int = 0, test_fraction: float = 0.25
                    ) -> DatasetDict:
    """Questions and answers about every fact; train and test never share a fact.

    ``answer`` is the bare object ("Oakville"); ``response`` is the full sentence in the words
    the corpus uses ("Mia lived in Oakville."), the form in which a pretrained model stored it.
    """
    world, rng = make_world(world_seed), random.Random(derive_seed(seed, "instructions"))
    rows = {"train": [], "test": []}
    for kind in ("world", "domain"):  # split each kind, so both are in the test set
        facts = world_facts(world, kind)
        rng.shuffle(facts)
        n_test = round(test_fraction * len(facts))
        for i, f in enumerate(facts):
            for q in QUESTIONS[f["relation"]]:
                rows["test" if i < n_test else "train"].append(
                    {"question": q.format(s=f["subject"]), "answer": f["object"],
                     "response": f["prompt"] + f["answer"] + ".",
                     "kind": kind, "relation": f["relation"], "fact_id": f["fact_id"]})
    return DatasetDict({split: Dataset.from_list(r) for split, r in rows.items()})
