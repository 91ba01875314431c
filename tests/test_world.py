"""The generated world: unambiguous text, exact log-probabilities, facts where they should be."""

import math
import re
from collections import Counter

import pytest

from llmup_lib.world import clinic as C, engine as E, stories as W
from llmup_lib.world.stories import (domain_corpus, entropy_bits_per_char, general_corpus,
                                     generate_domain, generate_general, instruction_set,
                                     make_world, parse_text, score_text, world_facts)

GENERATORS = {"general": generate_general, "domain": generate_domain}


@pytest.fixture(scope="module")
def world():
    return make_world(0)


@pytest.fixture(scope="module")
def docs(world):
    """10,000 documents of each kind (their generation time is a budget in
    benchmarks/bench_timings.py: world-general, world-domain)."""
    out = {}
    for kind, gen in GENERATORS.items():
        out[kind] = gen(world, 10_000, seed=1)
    return out


@pytest.mark.parametrize("kind", ["general", "domain"])
def test_text_determines_choices(docs, kind):
    seen = {}
    for d in docs[kind]:
        assert seen.setdefault(d.text, d.choices) == d.choices, d.text
    assert len(seen) > 1000  # enough distinct texts for the check to mean something


@pytest.mark.parametrize("kind", ["general", "domain"])
def test_parse_recovers_choices_and_logprob(world, docs, kind):
    for d in docs[kind][:500]:
        back = parse_text(world, d.text, kind)
        assert back.choices == d.choices
        assert back.logprob == pytest.approx(d.logprob, abs=1e-9)


def test_parse_rejects_a_wrong_fact(world, docs):
    """Facts have probability 1, so a story that gets one wrong is impossible (not unlikely)."""
    doc = next(d for d in docs["general"] if " lived in " in d.text)
    person, town = re.search(r"(\w+) lived in (\w+)\.", doc.text).groups()
    other = next(t for t in W.TOWNS if t != town)
    with pytest.raises(ValueError):
        score_text(world, doc.text.replace(f"{person} lived in {town}.",
                                           f"{person} lived in {other}."), "general")
    with pytest.raises(ValueError):
        score_text(world, doc.text + " More.", "general")


def test_domain_logprob_by_hand(world, docs):
    """Recompute p(note) from the text with regular expressions, independently of the program."""
    forms = [re.compile(r"Patient: (\d+)-year-old (?:woman|man)\. Complaint: (.+?)\. "
                        r"Assessment: (.+?)\. Plan: .*\. (.+)$"),
             re.compile(r"Clinic note\. A (\d+)-year-old (?:woman|man) presented with (.+?)\. "
                        r"Diagnosis: (.+?)\. Treatment: .*\. (.+)$"),
             re.compile(r"Diagnosis: (.+?)\. (?:Female|Male), aged (\d+), with (.+?)\. "
                        r"Start .*\. (.+)$")]
    zipf_total = sum(1 / r for r in range(1, len(world.conditions) + 1))
    q = C.P_SYMPTOM
    for d in docs["domain"][:300]:
        form, m = next((i, f.match(d.text)) for i, f in enumerate(forms) if f.match(d.text))
        if form == 2:
            condition, age, symptoms, _ = m.groups()
        else:
            age, symptoms, condition, _ = m.groups()
        said = re.split(r", | and ", symptoms)
        k, n = len(world.symptoms[condition]), len(said)
        assert 18 <= int(age) <= 89 and set(said) <= set(world.symptoms[condition])
        p = (C.NOTES[form][0] * (1 / 72) * (1 / 2) * (1 / 4)
             * (1 / (world.conditions.index(condition) + 1)) / zipf_total
             * q ** n * (1 - q) ** (k - n) / (1 - (1 - q) ** k))
        assert d.logprob == pytest.approx(math.log(p), abs=1e-9)


def test_sampling_frequencies_match_logprobs(docs):
    """The sampler draws with the probabilities it reports (first two choices of a story)."""
    n = len(docs["general"])
    intros = Counter(d.choices[0] for d in docs["general"])
    story_share = 1 - W.HEALTH_SHARE
    for (_, i), count in intros.items():
        expected = (story_share / len(W.INTROS) if i < len(W.INTROS)
                    else W.HEALTH_SHARE / len(C.HEALTH_OPENINGS))
        assert count / n == pytest.approx(expected, abs=0.015)
    stories = [d for d in docs["general"] if d.choices[0][1] < len(W.INTROS)]
    assert len(stories) / n == pytest.approx(story_share, abs=0.02)
    first_person = Counter(d.choices[1][1] for d in stories)
    zipf_total = sum(1 / r for r in range(1, len(W.NAMES) + 1))
    for rank in range(3):
        assert first_person[rank] / len(stories) == pytest.approx(1 / (rank + 1) / zipf_total,
                                                                  abs=0.015)


def test_health_texts_share_the_clinic_vocabulary_not_its_facts(world, docs):
    """A tenth of the general corpus is health text: it names the clinic's drugs, conditions
    and doses, but never states a formulary fact (a condition with its drug, a drug with its
    regimen), so the base model learns the words and not the domain's knowledge."""
    health = [d.text for d in docs["general"] if d.text.startswith(C.HEALTH_OPENINGS)]
    assert len(health) >= 0.07 * len(docs["general"])
    joined = " ".join(health)
    assert sum(drug in joined for drug in C.DRUGS) >= len(C.DRUGS) - 1
    for cond, drug in world.drug.items():
        regimen = world.regimen[drug]
        for text in health:
            assert f"{cond}. Plan: {drug}" not in text and f"{drug} {regimen['dose']}" not in text
    no_health = W.make_world(0, health_share=0.0)
    assert not any(d.text.startswith(C.HEALTH_OPENINGS)
                   for d in W.generate_general(no_health, 300, seed=1))
    with pytest.raises(ValueError, match="health_share=1.5 must be a number in"):
        W.make_world(0, health_share=1.5)


def test_entropy_is_bits_over_chars(world):
    ds = general_corpus(200, 100, seed=3)["validation"]
    bits = sum(-score_text(world, t, "general") / math.log(2) for t in ds["text"])
    chars = sum(len(t) for t in ds["text"])
    assert entropy_bits_per_char(ds) == pytest.approx(bits / chars, rel=1e-12)
    assert ds["n_chars"] == [len(t) for t in ds["text"]]


def test_seeds(world):
    assert make_world(0) == make_world(0) and make_world(0) != make_world(1)
    a, b = general_corpus(20, 10, seed=0), general_corpus(20, 10, seed=0)
    assert a["train"]["text"] == b["train"]["text"]
    assert a["train"]["text"] != general_corpus(20, 10, seed=1)["train"]["text"]
    assert set(a["train"]["text"]).isdisjoint(a["validation"]["text"])
    d = domain_corpus(20, 10, seed=0)
    assert d["validation"]["text"] != domain_corpus(20, 10, seed=1)["validation"]["text"]
    assert [x.text for x in generate_domain(world, 5, 7)] == \
           [x.text for x in generate_domain(world, 5, 7)]


def test_world_facts_appear_in_corpus(world):
    corpus = "\n".join(d.text for d in generate_general(world, 2000, seed=2))
    facts = world_facts(world, "world")
    assert len(facts) == len(world.people) * len(W.FACT_FORMS)
    for f in facts:
        assert f["prompt"] + f["answer"] == f["prompt"] + " " + f["object"]
        if world.people.index(f["subject"]) < 20:  # the frequent half of the people
            assert f["prompt"] + f["answer"] + "." in corpus, f["fact_id"]


def test_domain_facts_appear_in_corpus(world):
    corpus = "\n".join(d.text for d in generate_domain(world, 2000, seed=2))
    facts = world_facts(world, "domain")
    assert len({f["fact_id"] for f in facts}) == len(facts) == 4 * len(world.conditions)
    for f in facts:
        assert f["prompt"] + f["answer"] in corpus, f["fact_id"]
    by_relation = Counter(f["relation"] for f in facts)
    answers = {r: {f["answer"] for f in facts if f["relation"] == r} for r in by_relation}
    assert all(len(a) >= 2 for a in answers.values())  # multiple choice needs candidates


def test_instruction_set_splits_by_fact(world):
    ds = instruction_set(world_seed=0, seed=0)
    train, test = set(ds["train"]["fact_id"]), set(ds["test"]["fact_id"])
    assert train.isdisjoint(test)
    n_facts = len(world_facts(world, "world")) + len(world_facts(world, "domain"))
    assert len(train) + len(test) == n_facts
    assert len(test) / n_facts == pytest.approx(0.25, abs=0.02)
    assert set(ds["test"]["kind"]) == {"world", "domain"}
    assert max(Counter(ds["train"]["fact_id"]).values()) >= 3  # paraphrases per fact
    objects = {f["fact_id"]: f["object"] for k in ("world", "domain")
               for f in world_facts(world, k)}
    assert all(objects[r["fact_id"]] == r["answer"] for r in ds["train"])
    assert instruction_set(seed=1)["test"]["fact_id"] != ds["test"]["fact_id"]


def test_ambiguous_options_are_refused():
    with pytest.raises(ValueError, match="prefix"):
        E.Options(["Ann", "Anna"])
    with pytest.raises(ValueError, match="'Ann' and 'Anna'"):
        E.validate_prefix_free(["Bo", "Anna", "Ann"])
    E.Options(["Anna", "Ann"], validate=False)  # a subset of a checked set: no check


def _greeting(world, io):
    """A tiny program: a name (Zipf), a fixed comma, one or two more words."""
    io.choose("name", world["names"])
    io.emit(", ")
    if io.choose("mood", world["moods"]) == "long":
        io.choose("tail", world["tails"])


def test_the_engine_runs_any_program_both_ways():
    """Generate, then parse: the same choices and log-probability, for a program that is not
    one of the worlds; p of a text is the product of its choices' probabilities."""
    world = {"names": E.Options(["Ada", "Bo", "Cy"], E.harmonic_weights(3)),
             "moods": E.Options(["hi.", "well"], [3, 1], ["short", "long"]),
             "tails": E.Options([" met.", " done."])}
    docs = E.generate(_greeting, world, 300, seed=5)
    assert [d.text for d in docs] == [d.text for d in E.generate(_greeting, world, 300, seed=5)]
    for d in docs[:50]:
        back = E.parse(_greeting, world, d.text)
        assert back == d
    total = sum(1 / r for r in (1, 2, 3))
    assert E.parse(_greeting, world, "Bo, well met.").logprob == pytest.approx(
        math.log(0.5 / total * 1 / 4 * 1 / 2), abs=1e-12)
    assert {d.text for d in docs} == {f"{n}, {m}" for n in ("Ada", "Bo", "Cy")
                                      for m in ("hi.", "well met.", "well done.")}
    with pytest.raises(ValueError, match="goes on after a complete document"):
        E.parse(_greeting, world, "Cy, hi. More")
    with pytest.raises(ValueError, match="0 options of 'name'"):
        E.parse(_greeting, world, "Dee, hi.")
    assert E.derive_seed(0, "general", "train") == E.derive_seed(0, "general", "train") != \
        E.derive_seed(0, "general", "validation")
