"""The choice engine: documents written by random choices, read back, scored exactly.

A world (``stories``, ``clinic``, ``biographies``) describes its documents as a *program*: a
function ``program(world, io)`` that writes fixed text with ``io.emit(text)`` and makes every
random decision with ``io.choose(name, options)``. The engine runs the same program two ways:

* forward, by a ``Sampler``: each choice is drawn and writes its option's text (``generate``);
* backward, by a ``Reader``: each choice is read off a given text (``parse``).

What the engine guarantees, as long as every ``Options`` offered at one choice point is
*prefix-free* (no option's text is the start of another's; ``Options`` checks this unless told
the set is a checked subset):

* **Unambiguous.** At each choice at most one option matches the text at the reader's position,
  so a text is read back into exactly one choice sequence: different choice sequences never
  write the same text.
* **Exact log-probability.** p(text) = p(choice sequence) = the product of the chosen options'
  weights over their set's total; every ``Doc`` carries that natural log-probability, the same
  number whether the document was generated or parsed.
* **Reproducible.** ``generate`` draws one ``random.random()`` per choice from
  ``random.Random(seed)``, in program order; ``derive_seed`` gives a stable seed per (seed,
  corpus, split) that does not depend on Python's hash randomisation.

Anything written with ``emit`` has probability 1: a fact that the world fixes costs a model that
knows it nothing, which is why a corpus has a known true entropy.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import math
import random
import re
from dataclasses import dataclass
from typing import Callable

import numpy as np
from datasets import Dataset


# ----------------------------------------------------------------------------- choice points
def validate_prefix_free(texts) -> None:
    """Raise ValueError if one text is a prefix of another (the engine's one requirement).

    In sorted order a prefix sits right before some string that extends it."""
    ordered = sorted(texts)
    for a, b in zip(ordered, ordered[1:]):
        if b.startswith(a):
            raise ValueError(f"ambiguous options {a!r} and {b!r}: one is a prefix of the other")


class Options:
    """One choice point: the texts it can write (prefix-free), their weights and meanings.

    ``weights`` need not sum to 1 (default: uniform); ``values`` are what ``choose`` returns
    (default: the texts). ``validate=False`` skips the prefix-free check, for option sets built
    on the fly as subsets of a set checked once."""

    __slots__ = ("texts", "weights", "values", "cum", "total")

    def __init__(self, texts, weights=None, values=None, validate=True):
        self.texts = tuple(texts)
        self.weights = tuple(weights) if weights is not None else (1.0,) * len(self.texts)
        self.values = tuple(values) if values is not None else self.texts
        self.cum = list(itertools.accumulate(self.weights))
        self.total = self.cum[-1]
        if validate:
            validate_prefix_free(self.texts)


@dataclass(frozen=True)
class Doc:
    """A document: its text, the natural log of p(text) and the choices that wrote it."""

    text: str
    logprob: float  # natural log of p(text) under the generator
    choices: tuple = ()  # (choice point, option index) pairs

    @property
    def bits(self) -> float:
        return -self.logprob / math.log(2)


class Sampler:
    """Runs a program forward: draws each choice and writes its text."""

    def __init__(self, rng: random.Random):
        self.rng, self.parts, self.logprob, self.choices = rng, [], 0.0, []

    def emit(self, text: str) -> None:
        self.parts.append(text)

    def choose(self, name: str, opts: Options):
        i = bisect.bisect_right(opts.cum, self.rng.random() * opts.total)
        i = min(i, len(opts.texts) - 1)  # guards a float round-up at the very top
        self.parts.append(opts.texts[i])
        self.logprob += math.log(opts.weights[i] / opts.total)
        self.choices.append((name, i))
        return opts.values[i]

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def doc(self) -> Doc:
        return Doc(self.text, self.logprob, tuple(self.choices))


class Reader:
    """Runs the same program against a given text: reads each choice back from the text."""

    def __init__(self, text: str):
        self.text, self.pos, self.logprob, self.choices = text, 0, 0.0, []

    def emit(self, text: str) -> None:
        if not self.text.startswith(text, self.pos):
            raise ValueError(f"expected {text!r} at character {self.pos} of {self.text[:60]!r}...")
        self.pos += len(text)

    def choose(self, name: str, opts: Options):
        hits = [i for i, t in enumerate(opts.texts) if self.text.startswith(t, self.pos)]
        if len(hits) != 1:  # 0: not from this world; 2+: impossible if prefix-free
            raise ValueError(f"{len(hits)} options of {name!r} match at character {self.pos} "
                             f"of {self.text[:60]!r}...")
        i = hits[0]
        self.pos += len(opts.texts[i])
        self.logprob += math.log(opts.weights[i] / opts.total)
        self.choices.append((name, i))
        return opts.values[i]

    def doc(self) -> Doc:
        return Doc(self.text, self.logprob, tuple(self.choices))


# ----------------------------------------------------------------------------- Zipf weights
def harmonic_weights(n: int) -> list[float]:
    """Weight 1/rank (Zipf with exponent 1, not normalised): a few subjects are talked about a
    lot, most rarely (like real text)."""
    return [1.0 / (rank + 1) for rank in range(n)]


def zipf_weights(n: int, exponent: float) -> np.ndarray:
    """``p_k ∝ k^-exponent`` for k = 1..n, summing to 1."""
    ranks = np.arange(1, n + 1, dtype=float)
    w = ranks ** -float(exponent)
    return w / w.sum()


# ----------------------------------------------------------------------------- templates
def compile_template(template: str):
    """'In the morning, {p} walked.' -> ('In the morning, ', (('slot', 'p'), ('text', ' walked.')))

    The opening words are what the sentence choice writes; the rest is filled in slot by slot.
    """
    parts = re.split(r"\{([^}]*)\}", template)  # literal, slot, literal, slot, ..., literal
    rest = [("slot" if i % 2 else "text", part) for i, part in enumerate(parts) if i and part]
    return parts[0], tuple(rest)


# ----------------------------------------------------------------------------- the driver
Program = Callable  # program(world, io): writes one document through io.emit / io.choose


def run(program: Program, world, rng: random.Random) -> Sampler:
    """Generate one document; the sampler holds its parts, log-probability and choices."""
    io = Sampler(rng)
    program(world, io)
    return io


def generate(program: Program, world, n_docs: int, seed) -> list[Doc]:
    """``n_docs`` documents from one ``random.Random(seed)``, each with its exact log-prob."""
    rng = random.Random(seed)
    return [run(program, world, rng).doc() for _ in range(n_docs)]


def parse(program: Program, world, text: str) -> Doc:
    """Read ``text`` back into its choices and exact log-probability; ValueError if the program
    could not have written it (or the text goes on after a complete document)."""
    io = Reader(text)
    program(world, io)
    if io.pos != len(text):
        raise ValueError(f"text goes on after a complete document at character {io.pos}")
    return io.doc()


# ----------------------------------------------------------------------------- datasets
def derive_seed(*parts) -> int:
    """A stable seed per (seed, corpus, split): Python's hash() changes between runs."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "big")


def docs_dataset(docs: list[Doc]) -> Dataset:
    """Columns text, logprob_bits (-log2 p) and n_chars, one row per document."""
    return Dataset.from_dict({"text": [d.text for d in docs],
                              "logprob_bits": [d.bits for d in docs],
                              "n_chars": [len(d.text) for d in docs]})
