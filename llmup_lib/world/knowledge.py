"""What knowing the biography world's facts is worth, and the scaling it predicts.

The facts of the biography world (``biographies``) are drawn uniformly, so each one is worth
exactly ``ln |values|`` nats to a model that does not know it, and person k is a story's subject
with the Zipf chance ``p_k``. From the world alone, before any training:

* ``entropy_parts``: the true entropy (free choices only) and the knowledge bits on top of it;
* ``excess_if_known``: the loss above the floor of a model that knows the K most frequent people;
* ``predicted_exponents``: the loss-vs-size and loss-vs-data slopes that follow (the "quanta"
  view: Michaud et al. 2023; Hutter 2021);
* ``stories_to_learn`` and ``min_exposures``: the training stories that let a fact be seen m
  times.
"""

from __future__ import annotations

import math
import random

import numpy as np

from .biographies import RELATIONS, VALUES, BiographyWorld, sample_document, validate_number
from .engine import derive_seed


def knowledge_nats_per_story(w: BiographyWorld) -> float:
    """What a story costs a model that knows everything but its subject's facts: one uniform
    guess per relation, ``Σ_r ln |values_r|`` nats."""
    return sum(math.log(len(VALUES[r])) for r in RELATIONS)



def entropy_parts(w: BiographyWorld, n_docs: int = 20_000, seed: int = 0) -> dict:
    """The floor and what knowledge adds to it, in bits per character, from a fresh sample.

    ``free_bits_per_char`` is the true entropy (facts cost nothing to a model that knows them);
    ``knowledge_bits_per_char`` is what a model that knows no fact pays on top of it; their sum
    is the loss of a perfect model of everything except the facts.
    """
    validate_number("n_docs", n_docs, 1, integer=True, fix="pass e.g. n_docs=20000.")
    rng = random.Random(derive_seed(seed, "v2", "entropy"))
    bits = chars = stories = 0.0
    for _ in range(n_docs):
        text, logprob, rank = sample_document(w, "general", rng)
        bits -= logprob / math.log(2)
        chars += len(text)
        stories += rank > 0
    knowledge = stories * knowledge_nats_per_story(w) / math.log(2)
    return {"free_bits_per_char": bits / chars, "knowledge_bits_per_char": knowledge / chars,
            "chars_per_doc": chars / n_docs, "story_share": stories / n_docs,
            "knowledge_bits_total": len(w.people) * knowledge_nats_per_story(w) / math.log(2)}



def tail_mass(weights, k):
    """``Σ_{rank>k} p_rank`` for rank weights ``p`` (rank 1 first), linear between whole ``k``:
    the share of stories about people past the ``k`` most frequent."""
    weights = np.asarray(weights, dtype=float)
    tail = np.concatenate([np.cumsum(weights[::-1])[::-1], [0.0]])  # tail[k] = Σ_{rank>k}
    k = np.clip(np.asarray(k, dtype=float), 0, len(weights))
    return np.interp(k, np.arange(len(tail)), tail)


def excess_if_known(w: BiographyWorld, k, chars_per_story: float | None = None):
    """Expected nats per *story* (or per character, given ``chars_per_story``: total characters
    / stories) above the floor for a model that knows the facts of the ``k`` most frequent
    people and none of the rest: ``Σ_{rank>k} p_rank · Σ_r ln |values_r|``."""
    per_story = tail_mass(w.weights, k) * knowledge_nats_per_story(w)
    return per_story if chars_per_story is None else per_story / chars_per_story


def predicted_exponents(w: BiographyWorld, n_params, bits_per_param: float,
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
    validate_number("bits_per_param", bits_per_param, 0.0, open_low=True,
                    fix="pass the capacity measured by the knowledge probe, e.g. 1.0.")
    validate_number("min_exposures", min_exposures, 0.0, open_low=True,
                    fix="pass e.g. min_exposures=20.")
    from ..methods.scaling import loglog_fit  # the suite's one simple log-log fit

    n_params, stories = np.asarray(n_params, float), np.asarray(stories, float)
    bits_per_person = knowledge_nats_per_story(w) / math.log(2)
    k_size = n_params * bits_per_param / bits_per_person
    k_data = np.array([(s * w.weights >= min_exposures).sum() for s in stories], float)
    ex_size, ex_data = excess_if_known(w, k_size), excess_if_known(w, k_data)
    a = w.zipf_exponent
    out = {"alpha_asymptotic": a - 1, "beta_asymptotic": (a - 1) / a,
           "k_size": k_size, "k_data": k_data, "excess_size": ex_size, "excess_data": ex_data}
    out["alpha"] = -loglog_fit(n_params, ex_size)["slope"] if (ex_size > 0).all() else math.nan
    out["beta"] = -loglog_fit(stories, ex_data)["slope"] if (ex_data > 0).all() else math.nan
    return out



def min_exposures(w: BiographyWorld, n_stories: float) -> float:
    """How often the least-mentioned person is the subject of ``n_stories`` training stories,
    in expectation."""
    return float(n_stories * w.weights[-1])



def stories_to_learn(w: BiographyWorld, k: int, min_exposures: float) -> float:
    """Training stories needed for the ``k`` most frequent people to be seen ``min_exposures``
    times each (in expectation): ``min_exposures / p_k``. With ``k = len(w.people)`` this is
    the budget at which every fact of the world is learnable."""
    validate_number("k", k, 1, len(w.people), integer=True,
                    fix=f"pass a rank from 1 to {len(w.people)}.")
    return float(min_exposures / w.weights[k - 1])
