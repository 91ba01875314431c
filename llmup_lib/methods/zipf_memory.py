"""Scaling you can predict: a Zipf associative memory whose scaling exponents follow from theory.

After Cabannes, Dohmatob & Bietti (2023), "Scaling laws for associative memories" (arXiv
2310.02984). Contexts ``x ∈ {0..N-1}`` occur with Zipf frequencies ``p(x) ∝ (x+1)^-a``
(``a > 1``); each has a fixed next-token distribution ``q(·|x)`` over ``V`` tokens, peaked on one
random token. The model is ``p_W(·|x) = softmax(W e_x)``: fixed random embeddings ``e_x ∈ R^n``
(``n`` is the width) and a learned read-out ``W`` (``V × n``), trained by one pass of SGD over a
stream of ``T`` samples. Its *excess* loss is the cross-entropy minus the true conditional
entropy, ``Σ_x p(x) KL(q(·|x) ‖ p_W(·|x))``, computed exactly over every context (no sampling).

**The predicted exponents** (``N → ∞``; a heuristic for this cross-entropy setting: the paper
proves the same rates for the 0-1 error of a stored deterministic map):

* *the model binds* (``T`` large): ``n`` generic embeddings span ``R^n``, so a linear read-out
  sets the logits of about ``n`` contexts freely. The best use stores the ``n`` most frequent and
  leaves every other context an O(1) KL, so the excess is about the unstored mass,
  ``Σ_{x>n} p(x) ∝ n^-(a-1)``: **model exponent a − 1**.
* *the data binds* (``n`` large): a context unseen in ``T`` draws costs O(1), one seen ``k``
  times about ``1/k``. The unseen mass ``Σ_x p(x)(1-p(x))^T ≈ ∫ p e^{-T p} dx ∝ T^-(1-1/a)``
  (the contexts with ``p(x) ≳ 1/T`` are ``x ≲ T^{1/a}``), and the seen ones cost
  ``Σ_seen p(x)/(T p(x)) = #seen/T ∝ T^{1/a - 1}``, the same order: **data exponent 1 − 1/a**.
* *compute-optimal*: one sample touches the ``V·n`` weights of ``W``, so with ``V`` fixed the
  compute is ``C ∝ n·T``. The loss ``≈ A n^-(a-1) + B T^-(1-1/a)`` at fixed ``C`` is smallest
  where the two terms are of one order, ``n^{a-1} ∝ T^{(a-1)/a}``, i.e. ``T ∝ n^a``; then
  ``C ∝ n^{1+a}``, so **the IsoFLOP optimum n* ∝ C^{1/(1+a)}** and **L* ∝ n*^-(a-1) ∝
  C^{-(a-1)/(1+a)}** (``predicted_exponents``).

**Finite N.** With ``N`` contexts the unstored tail is ``∝ n^-(a-1) − N^-(a-1)`` and the unseen
mass flattens once ``T^{1/a}`` nears ``N``; both bend the log-log curves, most for ``a`` near 1.
``finite_n_exponents`` gives the slopes an ideal learner shows at the world's own ``N`` over the
same grids, so a measured slope is read against both numbers (the table records them).

**The optimiser.** Plain SGD on the exact gradient of the mean cross-entropy, the rate decayed
linearly to 0 over the pass. SGD, not Adam, because the theory counts how often each context is
*seen*: an SGD update to context ``x`` is proportional to its count, while Adam's per-coordinate
normalisation, shared by all contexts through ``W``, re-weights the rare ones by the frequent
ones' gradient scale. The decay removes the noise floor a constant rate leaves (a floor ``∝ lr``
would hide the data exponent at large ``T``). Batches are small (8): a rare context, seen once
or twice, wants a large step, but in a large batch the head context (``p(0) ≈ 0.38`` at
``a = 1.5``) appears many times and that step throws its logits far past their optimum; in the
prototype, batch 64 made the tuned excess jump from cell to cell.

**The experiment** (``python -m llmup_lib experiment zipf``, ``run_table``): for each Zipf
exponent of a ``ZipfRecipe``, three axes of cells -- widths at a large token budget (the model
binds), token budgets at a large width (the data binds), and an IsoFLOP grid (``C = n·T``, the
widths whose ``T = C/n`` lies in a range) -- each cell trained at every rate of its axis's grid
over the seeds, its rate tuned on the mean excess (``at_edge`` flags an optimum at an end of the
grid), and ``measured_exponents`` reads the slopes off the table. All rates of a cell train side
by side on one stream (``train_heads``), so a cell costs about one run, not one per rate.

**How the limits compose** (``composition``): the additive (Chinchilla) form
``A n^-alpha + B T^-beta`` and a power mean ``((A n^-alpha)^p + (B T^-beta)^p)^(1/p)`` (``p = 1``
is the sum, large ``p`` a max), each fitted on the cheap corner of the table (``n·T <= 2^18``)
and scored on the cells at least 30 times dearer that the fit never saw.

The default grid (``RECIPE``: 164 cells over four Zipf exponents, 3 seeds, 7 to 11 rates per
cell) took 494 s on 2 cores (``--workers 2``, 2026-12-05); the table is
``llmup_lib/data/zipf/cpu.json`` and its README gives the measured exponents.
"""

from __future__ import annotations

import json
import math
import numbers
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..experiments.runner import Kind, is_seed, load, new_table, run_points, validate_workers
from ..store import DATA_DIR as _SHIPPED
from .scaling import fit_frontier_exponent, isoflop_optimum, loglog_fit

# --------------------------------------------------------------------------- checks


def validate_zipf_exponent(a) -> float:
    """``a`` as a float, or one sentence: the frequencies ``(x+1)^-a`` need ``a > 1``."""
    if isinstance(a, bool) or not isinstance(a, numbers.Real) or not math.isfinite(a) or a <= 1:
        raise ValueError(f"The Zipf exponent a={a!r} must be a finite number > 1 (for a <= 1 "
                         "the frequencies cannot be normalised as N grows); pass e.g. a=1.5.")
    return float(a)


def validate_count(name: str, value, example: int) -> int:
    """``value`` as an int, or one sentence: a width, a token budget, a size is a whole number
    ``>= 1`` (``True``, ``2.5`` and ``4.0`` are refused, not rounded)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive whole number; pass e.g. "
                         f"{name}={example}.")
    return int(value)


def validate_grid(name: str, values, example: tuple) -> tuple[int, ...]:
    """A grid of whole numbers, sorted, without repeats; a slope needs 3 or more of them."""
    values = _as_list(name, values)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"{name}={values!r} holds {v!r}, not a positive whole number; pass "
                             f"e.g. {name}={example}.")
    grid = tuple(sorted({int(v) for v in values}))
    if len(grid) < 3:
        raise ValueError(f"{name}={values!r} holds {len(grid)} distinct value(s), too few "
                         f"for a slope; pass 3 or more, e.g. {name}={example}.")
    return grid


def validate_rates(name: str, rates) -> tuple[float, ...]:
    """A learning-rate grid, sorted: 3 or more distinct positive finite rates (with fewer, an
    optimum at an end cannot be told from one inside)."""
    rates = _as_list(name, rates)
    bad = [r for r in rates if isinstance(r, bool) or not isinstance(r, numbers.Real)
           or not math.isfinite(r) or r <= 0]
    grid = tuple(sorted({float(r) for r in rates})) if not bad else ()
    if bad or len(grid) < 3:
        raise ValueError(f"{name}={rates!r} must hold 3 or more distinct positive finite "
                         f"rates; pass e.g. {name}=(1, 4, 16).")
    return grid


def validate_eps(eps) -> float:
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not 0 < eps < 1:
        raise ValueError(f"The noise eps={eps!r} must lie strictly between 0 and 1; pass e.g. "
                         "eps=0.05.")
    return float(eps)


def _as_list(name: str, values) -> list:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ValueError(f"{name}={values!r} must be a list of numbers; pass e.g. "
                         f"{name}=(8, 16, 32).")
    return list(values)


# --------------------------------------------------------------------------- theory


def predicted_exponents(a: float) -> dict[str, float]:
    """The theory's exponents, all positive (see the module docstring): excess ∝ width^-model,
    ∝ tokens^-data; at the IsoFLOP optimum width ∝ C^isoflop_width, excess ∝ C^-isoflop_loss."""
    a = validate_zipf_exponent(a)
    return {"model": a - 1, "data": 1 - 1 / a, "isoflop_width": 1 / (1 + a),
            "isoflop_loss": (a - 1) / (1 + a)}


def finite_n_exponents(world: ZipfWorld, widths, tokens) -> dict[str, float]:
    """The slopes an *ideal* learner shows at this world's finite ``N`` (the predictions as
    ``N → ∞``): over ``widths``, of the unstored tail ``Σ_{x≥n} p(x)``; over ``tokens``, of the
    unseen mass ``Σ_x p(x)(1-p(x))^T``; both exact."""
    w = np.asarray(validate_grid("widths", widths, (8, 16, 32)))
    t = np.asarray(validate_grid("tokens", tokens, (1024, 2048, 4096)), float)
    tail = np.cumsum(world.p[::-1])[::-1]  # tail[k] = Σ_{x≥k} p(x)
    unstored = tail[np.minimum(w, world.n_contexts - 1)]
    unseen = [float(np.sum(world.p * np.exp(T * np.log1p(-world.p)))) for T in t]
    return {"model": -loglog_fit(w, unstored)["slope"], "data": -loglog_fit(t, unseen)["slope"]}


# --------------------------------------------------------------------------- the world


@dataclass(frozen=True)
class ZipfWorld:
    """Zipf context frequencies ``p`` (N,) and next-token conditionals ``q`` (N, V).

    ``q(·|x) = (1-eps)·δ_{y*(x)} + eps/V``: peaked on a random token, with full support (so a
    model *can* output it exactly) and the same entropy for every context, known in closed form.
    """

    a: float
    p: np.ndarray
    q: np.ndarray
    conditional_entropy: float

    @property
    def n_contexts(self) -> int:
        return int(self.p.shape[0])

    @property
    def vocab(self) -> int:
        return int(self.q.shape[1])


def peaked_entropy(vocab: int, eps: float) -> float:
    """Entropy (nats) of ``(1-eps)·δ + eps/V``."""
    top, rest = 1 - eps + eps / vocab, eps / vocab
    return float(-top * math.log(top) - (vocab - 1) * rest * math.log(rest))


def make_world(a: float, n_contexts: int, vocab: int, seed: int = 0,
               eps: float = 0.05) -> ZipfWorld:
    """Zipf frequencies and peaked conditionals, the peak a random token per context."""
    a = validate_zipf_exponent(a)
    n_contexts = validate_count("n_contexts", n_contexts, 32768)
    vocab = validate_count("vocab", vocab, 16)
    eps = validate_eps(eps)
    p = np.arange(1, n_contexts + 1, dtype=np.float64) ** -a
    p /= p.sum()
    peak = np.random.default_rng(seed).integers(0, vocab, n_contexts)
    q = np.full((n_contexts, vocab), eps / vocab)
    q[np.arange(n_contexts), peak] += 1 - eps
    return ZipfWorld(a=a, p=p, q=q, conditional_entropy=peaked_entropy(vocab, eps))


# --------------------------------------------------------------------------- data and model


def sample_stream(world: ZipfWorld, tokens: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``tokens`` samples ``(x, y)``, ``x ~ p`` and ``y ~ q(·|x)``, by inverse CDF.

    Nested: the stream of ``T`` tokens is a prefix of a longer one with the same seed, because
    each of ``x`` and ``y`` comes from its own generator that draws one double per sample."""
    tokens = validate_count("tokens", tokens, 4096)
    u_x = np.random.default_rng([seed, 0]).random(tokens)
    u_y = np.random.default_rng([seed, 1]).random(tokens)
    cdf_p = np.cumsum(world.p)
    x = np.minimum(np.searchsorted(cdf_p, u_x * cdf_p[-1], "right"), world.n_contexts - 1)
    cdf_q = np.cumsum(world.q, axis=1)
    y = np.empty(tokens, dtype=np.int64)
    chunk = 1 << 16  # a tokens × V table of comparisons at once could be large
    for s in range(0, tokens, chunk):
        rows = cdf_q[x[s:s + chunk]]
        y[s:s + chunk] = (u_y[s:s + chunk, None] * rows[:, -1:] > rows).sum(1)
    return x, np.minimum(y, world.vocab - 1)


def make_embeddings(n_contexts: int, width: int, seed: int = 0):
    """Fixed Gaussian embeddings (torch float32), entries N(0, 1/n) so ``|e_x| ≈ 1`` at every
    width; their own generator, apart from the stream's."""
    import torch

    n_contexts = validate_count("n_contexts", n_contexts, 32768)
    width = validate_count("width", width, 64)
    g = torch.Generator().manual_seed(10_000 + seed)
    return torch.randn(n_contexts, width, generator=g) / math.sqrt(width)


OPTIMIZERS = ("sgd-linear-decay", "sgd-constant")


def train_heads(embeddings, x, y, vocab: int, rates, batch_size: int = 8,
                optimizer: str = "sgd-linear-decay"):
    """One pass of SGD over the stream ``(x, y)`` at each of ``rates``, side by side: returns
    ``W`` (R, V, n), ``W[r]`` the read-out trained at ``rates[r]``.

    Every rate sees the same stream, so training them together is R separate runs at the cost
    of one loop. The gradient of a linear softmax's mean cross-entropy is written out,
    ``(softmax − onehot)ᵀ E / B``: no autograd, a step is two small batched matmuls."""
    import torch

    if optimizer not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {optimizer!r}; use one of {', '.join(OPTIMIZERS)}.")
    batch_size = validate_count("batch_size", batch_size, 8)
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    lr = torch.tensor([float(r) for r in rates], dtype=embeddings.dtype).view(-1, 1, 1)
    W = torch.zeros(len(lr), vocab, embeddings.shape[1], dtype=embeddings.dtype)
    steps = math.ceil(len(x) / batch_size)
    for i in range(steps):
        xb, yb = x[i * batch_size:(i + 1) * batch_size], y[i * batch_size:(i + 1) * batch_size]
        e = embeddings[xb]  # (B, n)
        g = torch.softmax(torch.matmul(e, W.transpose(1, 2)), dim=2)  # (R, B, V)
        g[:, torch.arange(len(yb)), yb] -= 1
        decay = 1 - i / steps if optimizer == "sgd-linear-decay" else 1.0
        W -= (lr * (decay / len(yb))) * torch.matmul(g.transpose(1, 2), e)
    return W


def train_memory(world: ZipfWorld, width: int, tokens: int, lr: float, seed: int = 0,
                 batch_size: int = 8, optimizer: str = "sgd-linear-decay"):
    """One run: ``(W, embeddings)`` after one pass over the seed's stream at rate ``lr``."""
    emb = make_embeddings(world.n_contexts, width, seed)
    x, y = sample_stream(world, tokens, seed)
    return train_heads(emb, x, y, world.vocab, [lr], batch_size, optimizer)[0], emb


_SLICE = 1 << 22  # embedding entries cast to float64 at once (32 MB)


def excess_losses(world: ZipfWorld, embeddings, heads) -> np.ndarray:
    """The exact excess of each read-out in ``heads`` (R, V, n), in float64, the contexts taken
    a slice at a time (a float64 copy of every embedding at once could take gigabytes)."""
    import torch

    heads = torch.as_tensor(heads, dtype=torch.float64)
    embeddings = torch.as_tensor(embeddings)
    rows = max(1, _SLICE // embeddings.shape[1])
    cross = np.zeros(heads.shape[0])
    for s in range(0, world.n_contexts, rows):
        e = embeddings[s:s + rows].to(torch.float64)
        log_probs = torch.log_softmax(torch.matmul(e, heads.transpose(1, 2)), dim=2).numpy()
        cross -= np.einsum("x,xv,rxv->r", world.p[s:s + rows], world.q[s:s + rows], log_probs)
    return cross - world.conditional_entropy


def excess_loss(world: ZipfWorld, embeddings, W) -> float:
    """``Σ_x p(x) KL(q(·|x) ‖ softmax(W e_x))`` for one read-out ``W`` (V, n), exact."""
    import torch

    return float(excess_losses(world, embeddings, torch.as_tensor(W)[None])[0])


def excess_from_log_probs(world: ZipfWorld, log_probs) -> float:
    """The exact excess of any model's log-probabilities (N, V): cross-entropy − entropy."""
    cross = -float(np.sum(world.p[:, None] * world.q * np.asarray(log_probs)))
    return cross - world.conditional_entropy


# --------------------------------------------------------------------------- one cell


def cell_excesses(world: ZipfWorld, width: int, tokens: int, rates, seed: int = 0,
                  batch_size: int = 8, optimizer: str = "sgd-linear-decay") -> list[float]:
    """One seed of one cell: the excess after a pass at each rate (embeddings and stream drawn
    once, shared by the rates)."""
    emb = make_embeddings(world.n_contexts, width, seed)
    x, y = sample_stream(world, tokens, seed)
    heads = train_heads(emb, x, y, world.vocab, rates, batch_size, optimizer)
    return [float(e) for e in excess_losses(world, emb, heads)]


def pick_rate(rates, excesses_by_seed) -> dict:
    """The rate with the lowest mean excess over the seeds (each seed draws its own embeddings
    and stream; one seed jitters from cell to cell). ``at_edge``: that rate is the first or last
    of the grid, so the optimum may lie beyond it -- unless the excess is flat across rates,
    as in cells where the width binds."""
    rates = validate_rates("rates", rates)
    mean = np.mean(np.asarray(excesses_by_seed, float), axis=0)
    best = int(np.nanargmin(mean))  # a diverged rate (NaN) is never the best
    return {"lr": rates[best], "excess": float(mean[best]), "at_edge": best in (0, len(rates) - 1),
            "excess_by_rate": [float(m) for m in mean],
            "excess_by_seed": [float(s[best]) for s in excesses_by_seed]}


def tune_lr(world: ZipfWorld, width: int, tokens: int, rates=(1.0, 4.0, 16.0), seeds=(0,),
            batch_size: int = 8) -> dict:
    """One cell, in this process: every rate over every seed, then ``pick_rate``."""
    rates = validate_rates("rates", rates)
    return pick_rate(rates, [cell_excesses(world, width, tokens, rates, s, batch_size)
                             for s in seeds])


def measure_exponent(xs, excesses) -> dict:
    """The log-log slope of excess against width or tokens, as a positive ``exponent``, with
    ``r2``; a curve that does not fall gives an exponent near 0 (or below) and a low r2."""
    fit = loglog_fit(xs, excesses)
    return {"exponent": -fit["slope"], "r2": fit["r2"]}


# --------------------------------------------------------------------------- the experiment


def widths_at_budget(recipe: ZipfRecipe, budget: int) -> list[int]:
    """The IsoFLOP widths at ``budget``: those whose ``T = budget // width`` lies in the range."""
    low, high = recipe.isoflop_tokens
    return [n for n in recipe.isoflop_widths if low <= budget // n <= high]


@dataclass(frozen=True)
class ZipfRecipe:
    """Everything that makes the ``zipf`` table, but the seeds (each row lists its own).

    The grids are checked, sorted and de-duplicated on construction, so a recipe that exists
    can run; ``isoflop_tokens`` is the (min, max) token budget of an IsoFLOP cell."""

    exponents: tuple = (1.2, 1.5, 1.8, 2.1)
    n_contexts: int = 1 << 15
    vocab: int = 16
    eps: float = 0.05  # the noise in q: the peak holds 1 - eps + eps/V
    world_seed: int = 0  # the peaks of q; the seeds of a run draw embeddings and streams
    batch_size: int = 8
    optimizer: str = "sgd-linear-decay"
    # the model binds: widths at a budget large enough that the data part is small
    widths: tuple = (4, 8, 16, 32, 64)
    widths_tokens: int = 1 << 18
    widths_rates: tuple = (0.0625, 0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
    # the data binds: budgets at a width that stores most contexts a pass can see
    tokens: tuple = (1024, 2048, 4096, 8192, 16384, 32768)
    tokens_width: int = 4096
    tokens_rates: tuple = (2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)
    # IsoFLOP: C = width x tokens; at each budget, the widths whose tokens lie in the range
    isoflop_budgets: tuple = (1 << 16, 1 << 18, 1 << 20, 1 << 22)
    isoflop_widths: tuple = (8, 16, 32, 64, 128, 256, 512, 1024, 2048)
    isoflop_tokens: tuple = (256, 1 << 17)
    isoflop_rates: tuple = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)

    def __post_init__(self):
        def put(name, value):  # normalise a field of this frozen instance
            object.__setattr__(self, name, value)

        validate_eps(self.eps)
        exps = _as_list("exponents", self.exponents)
        if not exps:
            raise ValueError("exponents=() is empty; pass one Zipf exponent or more, e.g. "
                             "exponents=(1.5,).")
        put("exponents", tuple(sorted({validate_zipf_exponent(a) for a in exps})))
        for name, example in (("n_contexts", 32768), ("vocab", 16), ("batch_size", 8),
                              ("widths_tokens", 262144), ("tokens_width", 4096)):
            validate_count(name, getattr(self, name), example)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"Unknown optimizer {self.optimizer!r}; use one of "
                             f"{', '.join(OPTIMIZERS)}.")
        put("widths", validate_grid("widths", self.widths, (4, 8, 16, 32)))
        put("tokens", validate_grid("tokens", self.tokens, (1024, 2048, 4096)))
        put("isoflop_budgets", validate_grid("isoflop_budgets", self.isoflop_budgets,
                                             (65536, 262144, 1048576, 4194304)))
        put("isoflop_widths", validate_grid("isoflop_widths", self.isoflop_widths, (8, 16, 32)))
        for name in ("widths_rates", "tokens_rates", "isoflop_rates"):
            put(name, validate_rates(name, getattr(self, name)))
        low, high = (validate_count("isoflop_tokens", t, 256) for t in self.isoflop_tokens)
        put("isoflop_tokens", (low, high))
        for budget in self.isoflop_budgets:
            if len(widths_at_budget(self, budget)) < 3:
                raise ValueError(f"The IsoFLOP budget {budget} gets fewer than 3 of the widths "
                                 f"{list(self.isoflop_widths)} with tokens in [{low}, {high}], "
                                 "too few to place its optimum; pass wider isoflop_widths or "
                                 "isoflop_tokens, or drop the budget.")


RECIPE = ZipfRecipe()
# seconds, not hours: the experiment's every path (three axes, three exponents), for tests and
# a smoke run (`experiment zipf --quick`)
QUICK = ZipfRecipe(n_contexts=512, vocab=4, widths=(2, 4, 8), widths_tokens=1024,
                   widths_rates=(0.5, 2.0, 8.0), tokens=(64, 128, 256), tokens_width=64,
                   tokens_rates=(2.0, 8.0, 32.0), isoflop_budgets=(256, 512, 1024, 2048),
                   isoflop_widths=(2, 4, 8, 16, 32), isoflop_tokens=(16, 512),
                   isoflop_rates=(1.0, 4.0, 16.0))
AXES = ("widths", "tokens", "isoflop")
ZIPF = Kind("zipf", "Zipf memory", row_key=("a", "axis", "width", "tokens"),
            order=("a", "axis", "tokens", "width"))
DATA_DIR = _SHIPPED / "zipf"


def cells(recipe: ZipfRecipe) -> list[tuple]:
    """Every ``(a, axis, width, tokens, compute)`` of the recipe (``compute``: the IsoFLOP
    budget, or width x tokens), the slowest first so that workers finish together: a cell's
    time is its steps, each about ``1 + width/512`` times a narrow step (timed on 2 cores)."""
    out = []
    for a in recipe.exponents:
        out += [(a, "widths", n, recipe.widths_tokens, n * recipe.widths_tokens)
                for n in recipe.widths]
        out += [(a, "tokens", recipe.tokens_width, t, recipe.tokens_width * t)
                for t in recipe.tokens]
        out += [(a, "isoflop", n, c // n, c) for c in recipe.isoflop_budgets
                for n in widths_at_budget(recipe, c)]
    return sorted(out, key=lambda cell: -cell[3] * (1 + cell[2] / 512))


def rates_of(recipe: ZipfRecipe, axis: str) -> tuple[float, ...]:
    return getattr(recipe, f"{axis}_rates")


def run_cell(a: float, axis: str, width: int, tokens: int, seed: int,
             recipe: ZipfRecipe) -> dict:
    """One point of the table: one seed of one cell, at every rate of its axis."""
    start = time.perf_counter()
    world = make_world(a, recipe.n_contexts, recipe.vocab, recipe.world_seed, recipe.eps)
    excesses = cell_excesses(world, width, tokens, rates_of(recipe, axis), seed,
                             recipe.batch_size, recipe.optimizer)
    return {"excesses": excesses, "seconds": time.perf_counter() - start}


def validate_seeds(seeds) -> tuple[int, ...]:
    seeds = _as_list("seeds", seeds)
    if not seeds or len(set(seeds)) != len(seeds) or not all(is_seed(s) for s in seeds):
        raise ValueError(f"seeds={seeds!r} must be distinct whole numbers >= 0, at least one; "
                         "pass e.g. --seeds 0,1,2.")
    return tuple(int(s) for s in seeds)


def recipe_dict(recipe: ZipfRecipe) -> dict:
    """The recipe as its table stores it: JSON has no tuples, so a loaded table's grids are
    lists, and a recipe compared with it must be too (or every table would be refused)."""
    return json.loads(json.dumps(asdict(recipe)))


def theory(recipe: ZipfRecipe) -> list[dict]:
    """Per exponent, the predicted exponents and an ideal learner's slopes at the recipe's
    ``N`` over its width and token grids."""
    out = []
    for a in recipe.exponents:
        world = make_world(a, recipe.n_contexts, recipe.vocab, recipe.world_seed, recipe.eps)
        ideal = finite_n_exponents(world, recipe.widths, recipe.tokens)
        out.append({"a": a, **predicted_exponents(a), "finite_n_model": ideal["model"],
                    "finite_n_data": ideal["data"]})
    return out


def run_table(recipe: ZipfRecipe = RECIPE, seeds=(0, 1, 2), workers: int = 1,
              log=print) -> dict:
    """Every cell of ``recipe`` over ``seeds``, a rate tuned per cell: one row per cell.
    ``workers`` > 1 runs that many seeds-of-cells at once, each in a process of its own
    (``runner.run_points``); ``log`` gets a line per finished point."""
    seeds = validate_seeds(seeds)
    validate_workers(workers)
    todo = [(*cell[:4], seed, recipe) for cell in cells(recipe) for seed in seeds]
    compute = {cell[:4]: cell[4] for cell in cells(recipe)}
    done = (lambda i, r: log(f"{todo[i][:5]}: {r['seconds']:.1f} s")) if log else None
    if workers == 1:
        results = run_points(todo, run_cell, done=done)
    else:
        results = run_points(todo, None, run_cell, workers, done=done)
    by_cell: dict = {}
    for args, result in zip(todo, results):
        by_cell.setdefault(args[:4], []).append(result)
    rows = []
    for (a, axis, width, tokens), runs in by_cell.items():
        pick = pick_rate(rates_of(recipe, axis), [r["excesses"] for r in runs])
        rows.append({"a": a, "axis": axis, "width": width, "tokens": tokens,
                     "compute": compute[(a, axis, width, tokens)], "seeds": list(seeds),
                     "rates": list(rates_of(recipe, axis)), **pick,
                     "seconds": round(sum(r["seconds"] for r in runs), 2)})
    rows.sort(key=lambda r: tuple(r[k] for k in ZIPF.order))
    return new_table(ZIPF, recipe_dict(recipe), rows, theory=theory(recipe))


def table_path(profile: str = "cpu") -> Path:
    return DATA_DIR / f"{profile}.json"


def load_table(path=None, recipe: ZipfRecipe = RECIPE) -> dict:
    """The table at ``path`` (default: the shipped one), refused when made under another
    recipe: one sentence naming the path, what differs and the command that remakes it."""
    remake = ZIPF.command("--quick" if recipe == QUICK else "")
    return load(ZIPF, path or table_path(), recipe_dict(recipe), remake=remake)


# --------------------------------------------------------------------------- reading the table


def measured_exponents(table: dict) -> list[dict]:
    """Per exponent ``a``: the measured slopes beside the predicted ones (``theory``).

    ``model`` and ``data``: the log-log slopes of the tuned excess over the widths and token
    budgets, with their ``r2``; ``isoflop_width``: the exponent of the optimal width (a parabola
    in log width at each budget, ``scaling.isoflop_optimum``) against the budget;
    ``isoflop_loss``: the slope of each budget's lowest excess; ``interior``: per budget, whether
    its optimum lies inside its widths; ``edge_cells``: cells whose rate is at an end of the
    grid."""
    out = []
    for th in table["theory"]:
        rows = [r for r in table["rows"] if r["a"] == th["a"]]
        model = _slope([r for r in rows if r["axis"] == "widths"], "width")
        data = _slope([r for r in rows if r["axis"] == "tokens"], "tokens")
        budgets = sorted({r["compute"] for r in rows if r["axis"] == "isoflop"})
        optima, best = [], []
        for c in budgets:
            at_c = sorted((r for r in rows if r["axis"] == "isoflop" and r["compute"] == c),
                          key=lambda r: r["width"])
            optima.append(isoflop_optimum([r["width"] for r in at_c], [r["excess"] for r in at_c]))
            best.append(min(r["excess"] for r in at_c))
        out.append({
            "a": th["a"], "model": model["exponent"], "model_r2": model["r2"],
            "data": data["exponent"], "data_r2": data["r2"],
            "isoflop_width": fit_frontier_exponent(budgets, [o["n_opt"] for o in optima])["a"],
            "isoflop_loss": -loglog_fit(budgets, best)["slope"],
            "interior": [o["interior"] for o in optima],
            "edge_cells": sum(r["at_edge"] for r in rows),
            "predicted": {k: th[k] for k in ("model", "data", "isoflop_width", "isoflop_loss")},
            "finite_n": {"model": th["finite_n_model"], "data": th["finite_n_data"]}})
    return out


EXPONENT_KEYS = ("model", "data", "isoflop_width", "isoflop_loss")


def exponent_errors(measured) -> list[dict]:
    """Per Zipf exponent (``measured_exponents``): each measured exponent's relative error
    against the prediction from ``a`` alone (``rel_err``), the worst of the four (``worst``),
    and the model and data slopes' errors against an ideal learner at the world's finite ``N``
    (``rel_err_finite_n``)."""
    out = []
    for m in measured:
        rel = {k: m[k] / m["predicted"][k] - 1 for k in EXPONENT_KEYS}
        out.append({"a": m["a"], "rel_err": rel, "worst": max(abs(v) for v in rel.values()),
                    "rel_err_finite_n": {k: m[k] / m["finite_n"][k] - 1
                                         for k in ("model", "data")}})
    return out


def _slope(rows, key: str) -> dict:
    rows = sorted(rows, key=lambda r: r[key])
    return measure_exponent([r[key] for r in rows], [r["excess"] for r in rows])


# --------------------------------------------------------------------------- how the limits compose

FORMS = ("additive", "power mean")
CORNER_COMPUTE = 1 << 18  # the cheap corner: cells with width x tokens up to this
HELD_OUT_FACTOR = 30  # held-out cells cost at least this many times the corner's dearest


def composed_excess(params: dict, width, tokens) -> np.ndarray:
    """The excess a composition law predicts: the model term ``A n^-alpha`` and the data term
    ``B T^-beta`` joined by a power mean ``(m^p + d^p)^(1/p)``; ``p = 1`` is Chinchilla's sum
    (``"additive"``), a large ``p`` is the larger of the two (a max)."""
    log_m = params["log_A"] - params["alpha"] * np.log(np.asarray(width, float))
    log_d = params["log_B"] - params["beta"] * np.log(np.asarray(tokens, float))
    p = params["p"]
    return np.exp(np.logaddexp(p * log_m, p * log_d) / p)


def fit_composition(widths, tokens, excesses, form: str) -> dict:
    """Fit ``form`` (``FORMS``) to cells in log space (least squares on log excess, so each
    cell weighs by its relative error), from a grid of starts: ``log_A, alpha, log_B, beta``
    and, for the power mean, ``p`` (fitted as ``log p``; the additive form fixes ``p = 1``)."""
    if form not in FORMS:
        raise ValueError(f"Unknown composition form {form!r}; use one of {', '.join(FORMS)}.")
    from .scaling import multi_start

    n, t, y = (np.asarray(v, float) for v in (widths, tokens, excesses))
    if len(y) < 5 or np.any(y <= 0):
        raise ValueError(f"fit_composition needs at least 5 cells with excess > 0, got {len(y)};"
                         " widen the corner.")
    keys = ("log_A", "alpha", "log_B", "beta") + (("log_p",) if form == "power mean" else ())

    def unpack(theta):
        params = {k: float(v) for k, v in zip(keys, theta)}
        params["p"] = float(np.exp(params.pop("log_p"))) if "log_p" in params else 1.0
        return params

    def residual(theta):
        return np.log(composed_excess(unpack(theta), n, t)) - np.log(y)

    scale = float(np.log(np.max(y)))
    starts = [[scale + al * np.log(n.min()), al, scale + be * np.log(t.min()), be]
              + ([lp] if form == "power mean" else [])
              for al in (0.2, 0.5, 1.0) for be in (0.2, 0.5, 1.0)
              for lp in ((0.0, 1.0, 2.0) if form == "power mean" else (None,))]
    theta = multi_start(residual, starts, delta=10.0)[0]  # delta large: plain least squares
    params = unpack(theta)
    params["rms_rel_err"] = rms_rel_err(composed_excess(params, n, t), y)
    return params


def rms_rel_err(predicted, measured) -> float:
    """sqrt(mean((predicted / measured - 1)^2))."""
    predicted, measured = np.asarray(predicted, float), np.asarray(measured, float)
    return float(np.sqrt(np.mean((predicted / measured - 1.0) ** 2)))


def composition_cells(rows, corner: int = CORNER_COMPUTE, factor: float = HELD_OUT_FACTOR):
    """Split one exponent's cells (each ``(width, tokens)`` once) into the cheap corner
    (``compute <= corner``) and the held-out cells (``compute >= factor x`` the corner's
    dearest cell)."""
    cells = {}
    for r in rows:
        cells.setdefault((r["width"], r["tokens"]), r)
    fit = [r for r in cells.values() if r["width"] * r["tokens"] <= corner]
    if not fit:
        raise ValueError(f"No cell costs at most corner={corner}; raise the corner.")
    dearest = max(r["width"] * r["tokens"] for r in fit)
    held = [r for r in cells.values() if r["width"] * r["tokens"] >= factor * dearest]
    if not held:
        raise ValueError(f"No cell costs {factor}x the corner's dearest ({dearest}); lower "
                         "factor or the corner.")
    return fit, held


def composition(table: dict, corner: int = CORNER_COMPUTE,
                factor: float = HELD_OUT_FACTOR) -> list[dict]:
    """Per Zipf exponent: both forms fitted on the cheap corner, then scored on the held-out
    cells ``factor``x or more dearer. ``extrapolation`` is the cheapest held-out cell's compute
    over the corner's dearest; ``best``: the form with the lower held-out rms relative error."""
    out = []
    for a in sorted({r["a"] for r in table["rows"]}):
        fit_rows, held = composition_cells([r for r in table["rows"] if r["a"] == a],
                                           corner, factor)
        entry = {"a": a, "fit_cells": len(fit_rows), "held_out_cells": len(held),
                 "extrapolation": min(r["width"] * r["tokens"] for r in held)
                 / max(r["width"] * r["tokens"] for r in fit_rows), "forms": {}}
        for form in FORMS:
            params = fit_composition([r["width"] for r in fit_rows],
                                     [r["tokens"] for r in fit_rows],
                                     [r["excess"] for r in fit_rows], form)
            predicted = composed_excess(params, [r["width"] for r in held],
                                        [r["tokens"] for r in held])
            params["held_out_rms_rel_err"] = rms_rel_err(predicted, [r["excess"] for r in held])
            entry["forms"][form] = params
        entry["best"] = min(FORMS, key=lambda f: entry["forms"][f]["held_out_rms_rel_err"])
        out.append(entry)
    return out


def explorer_text(a: float, factor: float = 10.0) -> str:
    """What the theory predicts at Zipf exponent ``a`` when the width, the tokens or the
    compute grow ``factor`` times (the plain function behind notebook 05's widget)."""
    e = predicted_exponents(a)
    if not (isinstance(factor, numbers.Real) and factor > 0):
        raise ValueError(f"factor={factor!r} must be a number > 0, e.g. 10.")
    return "\n".join([
        f"a = {a:.2f}: excess ∝ width^-{e['model']:.3f} (width binds), "
        f"∝ tokens^-{e['data']:.3f} (data binds)",
        f"  {factor:g}x the width, data plentiful:  excess x {factor ** -e['model']:.3f}",
        f"  {factor:g}x the tokens, width plentiful: excess x {factor ** -e['data']:.3f}",
        f"  {factor:g}x the compute, spent optimally: width x {factor ** e['isoflop_width']:.2f}, "
        f"tokens x {factor ** (1 - e['isoflop_width']):.2f}, excess x "
        f"{factor ** -e['isoflop_loss']:.3f}"])
