"""The biography world: unambiguous text and exact log-probabilities at thousands of people, the
Zipf tail, facts in four phrasings, a shared vocabulary, lean generation and the predicted
exponents (``knowledge``)."""

import math
import re
from collections import Counter

import numpy as np
import pytest

from llmup_lib.world import biographies as W, knowledge as K


@pytest.fixture(scope="module")
def world():
    return W.make_biography_world(seed=0, n_people=2000, zipf_exponent=1.3)


@pytest.fixture(scope="module")
def docs(world):
    return {kind: W.generate(world, kind, 3000, seed=1) for kind in ("general", "domain")}


@pytest.mark.parametrize("kind", ["general", "domain"])
def test_parse_recovers_choices_and_logprob(world, docs, kind):
    for d in docs[kind][:400]:
        back = W.parse_text(world, d.text, kind)
        assert back.choices == d.choices
        assert back.logprob == pytest.approx(d.logprob, abs=1e-9)


def test_text_determines_choices(docs):
    seen = {}
    for d in docs["general"]:
        assert seen.setdefault(d.text, d.choices) == d.choices
    assert len(seen) > 2000


def test_parse_rejects_a_wrong_fact(world, docs):
    doc = next(d for d in docs["general"] if " lived in " in d.text)
    person, town = re.search(r"(\w+ \w+) lived in ([\w ]+)\.", doc.text).groups()
    other = next(t for t in W.VALUES["lives_in"] if t != town)
    with pytest.raises(ValueError):
        W.parse_text(world, doc.text.replace(f"{person} lived in {town}.",
                                             f"{person} lived in {other}."))


@pytest.mark.slow  # 7.2 s on 2 shared cores (2026-12-04)
def test_subjects_follow_the_zipf_law(world):
    """Story subjects' ranks are drawn with p_k ∝ k^-a: the empirical share of rank 1 and the
    log-log slope over the head match the law."""
    ds = W.corpus("general", 30_000, 1, world=world)["train"]
    ranks = np.array(ds["person_rank"])
    stories = ranks[ranks > 0]
    assert len(stories) / len(ranks) == pytest.approx(0.9, abs=0.01)  # health_share 0.1
    counts = Counter(stories.tolist())
    assert counts[1] / len(stories) == pytest.approx(world.weights[0], rel=0.05)
    k = np.arange(1, 31)
    slope = np.polyfit(np.log(k), np.log([counts[i] for i in k]), 1)[0]
    assert slope == pytest.approx(-1.3, abs=0.15)


def test_augmented_people_get_four_phrasings_in_any_order(world, docs):
    """Augmented people's facts come in >= 4 templates and several orders; the others' in one."""
    forms = {True: Counter(), False: Counter()}
    orders = {True: Counter(), False: Counter()}
    for d in docs["general"]:
        names = [n for n, _ in d.choices]
        if "person" not in names:
            continue
        person = world.people[d.choices[names.index("person")][1]]
        aug = person in world.augmented
        found = []  # (position in the text, relation, template)
        for r, templates in W.TEMPLATES.items():
            for t, tpl in enumerate(templates):
                at = d.text.find(tpl.format(s=person, o=world.facts[person][r]))
                if at >= 0:
                    found.append((at, r, t))
        assert len({r for _, r, _ in found}) == 4, d.text
        for _, r, t in found:
            forms[aug][r, t] += 1
        orders[aug][tuple(r for _, r, _ in sorted(found))] += 1
    for r in W.RELATIONS:
        assert sum(1 for t in range(4) if forms[True][r, t]) == 4
        assert [t for t in range(4) if forms[False][r, t]] == [0]
    assert len(orders[True]) >= 20 and len(orders[False]) == 1  # 4! = 24 orders
    assert len(world.augmented) / len(world.people) == pytest.approx(0.5, abs=0.001)


@pytest.mark.slow  # 6.2 s on 2 shared cores (2026-12-04)
def test_health_text_states_no_formulary_fact(world):
    """The clinic's facts (condition -> drug, drug -> its regimen) are not in the general
    corpus: no sentence names a condition with a drug or a drug with a dose, frequency or
    duration, and a condition shares a text with its own drug no more often than with another."""
    ds = W.corpus("general", 20_000, 1, world=world)["train"]
    clinic = world.clinic
    health = [t for t, r in zip(ds["text"], ds["person_rank"]) if r == 0]
    assert len(health) > 1000
    regimen_words = {v for reg in clinic.regimen.values() for v in reg.values()}
    for text in health:
        for sentence in text.split(". "):
            has_drug = any(d in sentence for d in clinic.regimen)
            assert not (has_drug and any(c in sentence for c in clinic.conditions)), sentence
            assert not (has_drug and any(v in sentence for v in regimen_words)), sentence
    own = other = 0
    conditions = list(clinic.conditions)
    for text in health:
        for i, cond in enumerate(conditions):
            if cond in text:
                own += clinic.drug[cond] in text
                other += clinic.drug[conditions[i - 1]] in text
    assert own <= 1.5 * other + 10, (own, other)


@pytest.mark.slow  # 7.9 s on 2 shared cores (2026-12-04)
def test_domain_tokens_occur_in_pretraining(world):
    """One shared vocabulary: >= 99 % of the clinic notes' tokens (a BPE trained on both
    registers) occur in the tokenised pretraining corpus."""
    from llmup_lib.core.tokenizer import train_bpe

    pool = list(W.corpus("general", 8000, 1, world=world)["train"]["text"])
    notes = list(W.corpus("domain", 1000, 1, world=world)["train"]["text"])
    tok = train_bpe(pool + notes, 1024)
    seen = {t for ids in tok(pool, add_special_tokens=False)["input_ids"] for t in ids}
    stream = [t for ids in tok(notes, add_special_tokens=False)["input_ids"] for t in ids]
    assert sum(t in seen for t in stream) / len(stream) >= 0.99


def test_entropy_parts_add_up(world, docs):
    parts = K.entropy_parts(world, 5000)
    sample = docs["general"]
    bits = sum(d.bits for d in sample) / sum(len(d.text) for d in sample)
    assert parts["free_bits_per_char"] == pytest.approx(bits, rel=0.05)
    per_story = K.knowledge_nats_per_story(world)
    assert per_story == pytest.approx(sum(math.log(len(v)) for v in W.VALUES.values()))
    expected = parts["story_share"] * per_story / math.log(2) / parts["chars_per_doc"]
    assert parts["knowledge_bits_per_char"] == pytest.approx(expected)
    assert parts["knowledge_bits_total"] == pytest.approx(2000 * per_story / math.log(2))


def test_excess_if_known_is_the_tail_sum(world):
    per_story = K.knowledge_nats_per_story(world)
    assert K.excess_if_known(world, 0) == pytest.approx(per_story)
    assert K.excess_if_known(world, 2000) == pytest.approx(0.0, abs=1e-12)
    assert K.excess_if_known(world, 10) == pytest.approx(world.weights[10:].sum() * per_story)
    ex = K.excess_if_known(world, [1, 10, 100, 1000])
    assert np.all(np.diff(ex) < 0)


def test_predicted_exponents_match_the_zipf_law_far_from_the_end():
    """Deep in the tail (K << inventory), the predicted slopes are a - 1 and (a - 1)/a."""
    w = W.make_biography_world(n_people=2900, zipf_exponent=1.5)
    pred = K.predicted_exponents(w, n_params=[200, 2000], bits_per_param=1.0,
                                 stories=[1e3, 1e4], min_exposures=5)
    assert pred["alpha"] == pytest.approx(0.5, abs=0.06)
    assert pred["beta"] == pytest.approx(1 / 3, abs=0.06)
    assert pred["alpha_asymptotic"] == 0.5


def test_prediction_check_can_fail():
    """A flat world (Zipf exponent near 0) predicts no power law in the head: the slope is far
    from the 1.5-world's 0.5, so a check on the predicted alpha tells worlds apart."""
    flat = W.make_biography_world(n_people=2900, zipf_exponent=0.05)
    pred = K.predicted_exponents(flat, n_params=[200, 2000], bits_per_param=1.0,
                                 stories=[1e3, 1e4], min_exposures=5)
    assert abs(pred["alpha"] - 0.5) > 0.3


@pytest.mark.slow  # 29 s on 2 shared cores (2026-12-04)
def test_generation_is_lean_and_fast(world):
    """Ten million tokens' worth of documents (~2.5 M characters per 10^5 docs) in <= 300 MB
    extra (the time, <= 30 s, is a budget in benchmarks/bench_timings.py: world-v2)."""
    from llmup_lib.core.memory import peak_memory_mb

    before = peak_memory_mb()
    ds = W.corpus("general", 130_000, 1, world=world)["train"]  # ~ 10 M BPE tokens
    chars = sum(ds["n_chars"])
    assert chars / 3.9 >= 9e6  # measured 3.9 characters per token with a 1024-token BPE
    assert peak_memory_mb() - before <= 300


def test_same_seed_same_world_and_corpus():
    a, b = (W.make_biography_world(seed=3, n_people=500),
            W.make_biography_world(seed=3, n_people=500))
    assert a.facts == b.facts and a.people == b.people and a.augmented == b.augmented
    ca = W.corpus("general", 50, 5, seed=1, world=a)
    cb = W.corpus("general", 50, 5, seed=1, world=b)
    assert ca["train"]["text"] == cb["train"]["text"]
    assert ca["train"]["text"] != ca["validation"]["text"][:50]


def test_bare_biographies(world):
    """max_events=0: a story is its intro, the four facts and an ending, nothing else."""
    bios = W.make_biography_world(n_people=300, max_events=0, health_share=0.0)
    for d in W.generate(bios, "general", 200, seed=4):
        assert d.text.count(". ") == 5, d.text  # intro, four facts, ending
        assert W.parse_text(bios, d.text).logprob == pytest.approx(d.logprob, abs=1e-9)


def test_facts_are_corpus_text(world, docs):
    rows = W.facts(world, ranks=[1, 2])
    assert len(rows) == 8
    person = world.people[0]
    text = next(d.text for d in docs["general"] if d.text.startswith(rows[0]["context"]))
    for f in rows[:4]:
        assert f["context"] == f"This is a story about {person}. "
        if person not in world.augmented:
            assert f["prompt"] + f["answer"] + "." in text


def test_stories_to_learn_every_fact(world):
    """The least-mentioned person needs min_exposures / p_n stories; the head needs far fewer."""
    n = len(world.people)
    assert K.stories_to_learn(world, n, 50) == pytest.approx(50 / world.weights[-1])
    assert K.stories_to_learn(world, 1, 50) < K.stories_to_learn(world, n, 50) / 1000
    assert K.min_exposures(world, K.stories_to_learn(world, n, 50)) == pytest.approx(50)


def test_instruction_set_splits_by_person(world):
    ds = W.instruction_set(world, n_people=100, test_fraction=0.5)
    train_people, test_people = set(ds["train"]["subject"]), set(ds["test"]["subject"])
    assert not train_people & test_people
    assert len(train_people) == len(test_people) == 50
    assert len(ds["test"]) == 50 * 4 * 2  # four relations, two questions each
    row = ds["test"][0]
    assert world.facts[row["subject"]][row["relation"]] == row["answer"]
    assert row["response"].endswith(row["answer"] + ".")
    assert 0 < sum(ds["test"]["augmented"]) < len(ds["test"])


def test_pronouns_name_single_phrasing_people_in_the_intro_only():
    """bioS's style (Allen-Zhu & Li 3.1): a single-phrasing person is named once, then 'They';
    augmented people keep the name in every sentence; texts still parse to their exact
    log-probability, and the facts (hence the knowledge bits) are the same as without."""
    w = W.make_biography_world(seed=3, n_people=60, zipf_exponent=1.2, augmented_share=0.5,
                               max_events=0, pronouns=True)
    plain = W.make_biography_world(seed=3, n_people=60, zipf_exponent=1.2, augmented_share=0.5,
                                   max_events=0)
    assert w.facts == plain.facts and w.augmented == plain.augmented
    docs = W.generate(w, "general", 300, seed=1)
    seen = {True: 0, False: 0}
    for d in docs:
        assert W.parse_text(w, d.text).logprob == pytest.approx(d.logprob, abs=1e-9)
        if not d.text.startswith(W.INTROS[0].split("{s}")[0]):
            continue
        person = next(p for p in w.people if d.text.startswith(W.INTROS[0].format(s=p)))
        augmented = person in w.augmented
        fact_sentences = d.text[len(W.INTROS[0].format(s=person)):].split(". ")[:4]
        assert all((person in f) == augmented for f in fact_sentences), d.text
        assert ("They lived in " + w.facts[person]["lives_in"] in d.text) != augmented
        seen[augmented] += 1
    assert min(seen.values()) > 10
    # the probe in a person's own phrasing is a prefix of that person's biographies (bioS's
    # completion); the default probe names the person in every prompt
    own = {(f["subject"], f["relation"]): f for f in W.facts(w, own_phrasing=True)}
    named = {(f["subject"], f["relation"]): f for f in W.facts(w)}
    checked = 0
    for d in docs:
        person = next((p for p in w.people if d.text.startswith(W.INTROS[0].format(s=p))), None)
        if person is None:
            continue
        for r in W.RELATIONS:
            f = own[person, r]
            assert person in named[person, r]["prompt"]
            if person in w.augmented:  # any order and phrasing: asked by name, as by default
                assert f == named[person, r]
                continue
            assert d.text.startswith(f["context"] + f["prompt"] + f["answer"]), (d.text, f)
            assert f["prompt"].startswith("Their" if r == "food" else "They")
            checked += 1
    assert checked > 40
    with pytest.raises(ValueError, match="pronouns='yes' must be True or False"):
        W.make_biography_world(pronouns="yes")


def test_tail_mass_is_the_share_past_the_k_most_frequent():
    p = [0.5, 0.3, 0.2]
    assert K.tail_mass(p, 0) == pytest.approx(1.0) and K.tail_mass(p, 3) == pytest.approx(0.0)
    assert K.tail_mass(p, 1) == pytest.approx(0.5) and K.tail_mass(p, 1.5) == pytest.approx(0.35)
    assert K.tail_mass(p, [-1, 9]) == pytest.approx([1.0, 0.0])  # clipped to the inventory
