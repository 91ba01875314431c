"""Scaling: how much better a bigger model (or more data) is, at what cost, and how to split a
compute budget between size and data.

* **size grids** -- the family of models a sweep trains (``size_grid``, ``build_grid_model``);
* **compute accounting** -- ``C ≈ 6·N·D`` and the full count with the LM head and attention
  (``training_flops``);
* **fits** -- ``L(N) = E + A·N^-α`` (``fit_power_law``) and Chinchilla's
  ``L(N, D) = E + A/N^α + B/D^β`` (``fit_chinchilla``), both in log space with a Huber loss
  (robust to a bad point) and standard errors from the covariance or a bootstrap;
* **the compute-optimal frontier** -- the best size per budget from an IsoFLOP sweep
  (``isoflop_optimum``), its exponent ``N_opt ∝ C^a`` (``fit_frontier_exponent``), and
  ``N_opt, D_opt`` for a budget from a fitted law (``compute_optimal``);
* **sweeps** -- train a grid of (size, tokens) points with one recipe and save the rows as a
  CSV/JSON table (``run_sweep``, ``save_table``, ``load_table``; ``python -m llmup_lib sweep``).

Everything here is plain NumPy (no SciPy): a Levenberg-Marquardt loop on a few parameters is a
dozen lines, and showing it is part of the lesson.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .models import FAMILY, _swiglu_hidden

# --------------------------------------------------------------------------- reference laws


@dataclass(frozen=True)
class ChinchillaLaw:
    """``L(N, D) = E + A/N^alpha + B/D^beta`` (nats/token; N parameters, D tokens)."""
    E: float
    A: float
    B: float
    alpha: float
    beta: float
    source: str = ""

    def loss(self, n, d):
        n, d = np.asarray(n, float), np.asarray(d, float)
        return self.E + self.A / n**self.alpha + self.B / d**self.beta

    def optimal(self, flops, flops_per_param_token: float = 6.0) -> dict:
        """Closed-form compute-optimal split of ``C = k·N·D`` (Hoffmann et al., eq. 4)."""
        flops = np.asarray(flops, float)
        a, b = self.beta / (self.alpha + self.beta), self.alpha / (self.alpha + self.beta)
        G = (self.alpha * self.A / (self.beta * self.B)) ** (1 / (self.alpha + self.beta))
        n = G * (flops / flops_per_param_token) ** a
        d = (flops / flops_per_param_token) ** b / G
        return {"n_opt": n, "d_opt": d, "tokens_per_param": d / n, "loss": self.loss(n, d),
                "a": a, "b": b}


# Hoffmann et al. 2022 ("Chinchilla"), approach 3, and the Epoch AI replication of that fit
# (Besiroglu et al. 2024, "Chinchilla Scaling: A replication attempt"). Trained on MassiveText
# with a 32k-token vocabulary, so their E is *not* comparable with our world's floor.
REFERENCES = {
    "chinchilla": ChinchillaLaw(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28,
                                source="Hoffmann et al. 2022, approach 3"),
    "epoch": ChinchillaLaw(E=1.82, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658,
                           source="Besiroglu et al. 2024 (Epoch AI replication)"),
}
CHINCHILLA_TOKENS_PER_PARAM = 20.0  # the rule of thumb read off Hoffmann et al.'s frontier

# --------------------------------------------------------------------------- size grid

# The scaling family: (layers, width, heads), named "LxW". Six sizes spanning 32x in
# non-embedding parameters, all with two or more layers: copying a name from earlier in the
# story takes two attention layers (an induction head), and a model that has not learned it
# sits on a plateau near 0.85 nats/token whatever its size. 2x16 is left out for that reason:
# at FAMILY_TOKENS it is still leaving the plateau (measured 0.675 against 0.551 for 2x24).
SCALING_GRID = ("2x24", "2x32", "2x40", "2x48", "3x64", "4x96")
# Tokens per family member on the cpu profile: 2000 steps x 16 x 128. At 400 steps (the base
# model's recipe) most sizes were still on the plateau above, so loss against size was a step,
# not a power law (R² 0.87); at 2000 steps every size in the grid has left it (measured).
FAMILY_TOKENS = 2000 * 16 * 128


def size_grid(names=None) -> dict:
    """``{name: (layers, width, heads)}`` of the scaling family (or the given names, which may
    be any ``SCALING_GRID`` or ``models.FAMILY`` size, or a ``"LxW"`` shape like ``"3x80"``)."""
    if names is None:
        names = SCALING_GRID
    if isinstance(names, str):
        names = [n for n in names.split(",") if n]
    out = {}
    for name in names:
        out[name] = parse_shape(name)
    return out


def parse_shape(name: str) -> tuple[int, int, int]:
    """``(layers, width, heads)`` of a grid name, a family name, or ``"LxW"`` (head dim 16-32)."""
    if name in FAMILY:
        return FAMILY[name]
    try:
        layers, width = (int(x) for x in name.lower().split("x"))
    except ValueError:
        raise ValueError(f"Unknown size {name!r}; use one of {', '.join(FAMILY)} or a shape "
                         "like '3x80' (layers x width).") from None
    if layers <= 0 or width <= 0 or width % 8:
        raise ValueError(f"Shape {name!r} needs positive layers and a width divisible by 8.")
    heads = max(1, width // 32) if width >= 64 else max(1, width // 16)
    return layers, width, heads


def shape_overrides(shape) -> dict:
    """``LlamaConfig`` overrides that turn any family config into ``(layers, width, heads)``."""
    layers, width, heads = shape
    return dict(num_hidden_layers=layers, hidden_size=width, num_attention_heads=heads,
                num_key_value_heads=heads, intermediate_size=_swiglu_hidden(width))


def build_grid_model(name: str, tokenizer, context: int, seed: int = 0):
    """A fresh Llama-style model of grid size ``name`` (see ``size_grid``)."""
    from .models import build_model

    return build_model("pico", tokenizer, context, seed=seed, **shape_overrides(parse_shape(name)))


def non_embedding_params(shape, vocab_size: int | None = None) -> int:
    """Non-embedding parameters of ``(layers, width, heads)`` from the shape alone: per layer
    4·d² attention + 3·d·f SwiGLU + 2·d norm gains, plus the final norm (``models.count_params``
    gives the same number from a built model)."""
    layers, d, _ = shape
    f = _swiglu_hidden(d)
    return layers * (4 * d * d + 3 * d * f + 2 * d) + d


# --------------------------------------------------------------------------- compute


def training_flops(config, n_tokens: float, context: int | None = None) -> dict:
    """Training FLOPs for ``n_tokens`` tokens, two ways.

    ``six_nd``: the famous ``6·N·D`` with ``N`` the non-embedding parameters (Kaplan et al.);
    ``weights``: ``6·N_matmul·D`` with every matmul weight, the (tied) LM head included;
    ``attention``: ``12·L·T·d·D``, the score and weighted-sum matmuls, forward and backward;
    ``total``: weights + attention. At our sizes the LM head and attention are a large share,
    so ``6·N·D`` undercounts; in big models both shrink to a few percent.
    """
    from .models import flops_per_token

    if n_tokens <= 0:
        raise ValueError(f"n_tokens={n_tokens} must be positive.")
    per_token = flops_per_token(config, context)
    d, L = config.hidden_size, config.num_hidden_layers
    n = non_embedding_params((L, d, config.num_attention_heads))
    return {"six_nd": 6 * n * n_tokens, "weights": per_token["weights"] * n_tokens,
            "attention": per_token["attention"] * n_tokens,
            "total": per_token["total"] * n_tokens, "n_params": n}


def inference_flops_per_token(config, context: int | None = None) -> float:
    """Forward FLOPs per generated token: ``2·N_matmul`` plus attention over the context."""
    from .models import flops_per_token

    per_token = flops_per_token(config, context)
    return per_token["weights"] / 3 + per_token["attention"] / 3


# --------------------------------------------------------------------------- fitting


def _check_points(n_params: int, **arrays) -> list[np.ndarray]:
    out = []
    lengths = {len(np.atleast_1d(v)) for v in arrays.values()}
    if len(lengths) != 1:
        raise ValueError("The inputs have different lengths: "
                         + ", ".join(f"{k}={len(np.atleast_1d(v))}" for k, v in arrays.items())
                         + "; pass one value per run.")
    for name, values in arrays.items():
        v = np.asarray(values, dtype=float).ravel()
        bad = [x for x in v if not (math.isfinite(x) and x > 0)]
        if bad:
            raise ValueError(f"{name} must be positive and finite, got {bad[0]!r}; drop that run "
                             "or fix its value (sizes in parameters, data in tokens, losses in "
                             "nats).")
        out.append(v)
    if len(out[0]) <= n_params:
        raise ValueError(f"{len(out[0])} points cannot determine {n_params} parameters; pass at "
                         f"least {n_params + 1} runs (more is better).")
    return out


def _huber(r: np.ndarray, delta: float) -> np.ndarray:
    return np.where(np.abs(r) <= delta, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta))


def _lm(residual, theta0, delta: float, iters: int = 200):
    """Levenberg-Marquardt with Huber IRLS weights, numerical Jacobian. Returns
    ``(theta, objective, jacobian, residuals)``."""
    theta = np.asarray(theta0, float)
    lam = 1e-3

    def objective(t):
        r = residual(t)
        return float(np.sum(_huber(r, delta))) if np.all(np.isfinite(r)) else np.inf

    def jac(t, r0):
        J = np.empty((len(r0), len(t)))
        for j in range(len(t)):
            h = 1e-6 * max(1.0, abs(t[j]))
            tp = t.copy()
            tp[j] += h
            J[:, j] = (residual(tp) - r0) / h
        return J

    f = objective(theta)
    for _ in range(iters):
        r = residual(theta)
        J = jac(theta, r)
        w = np.where(np.abs(r) <= delta, 1.0, delta / np.maximum(np.abs(r), 1e-300))
        JW = J * w[:, None]
        g = JW.T @ r
        H = JW.T @ J
        improved = False
        for _ in range(20):
            try:
                step = np.linalg.solve(H + lam * np.diag(np.diag(H) + 1e-12), -g)
            except np.linalg.LinAlgError:
                lam *= 4
                continue
            f_new = objective(theta + step)
            if f_new < f:
                theta, lam, improved = theta + step, lam / 3, True
                break
            lam *= 4
        if not improved or abs(f - f_new) < 1e-14 * max(f, 1e-30):
            if improved:
                f = f_new
            break
        f = f_new
    r = residual(theta)
    return theta, f, jac(theta, r), r


def _r2(y: np.ndarray, yhat: np.ndarray) -> float:
    ss = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((y - yhat) ** 2)) / ss if ss > 0 else float("nan")


@dataclass
class PowerLawFit:
    """``L(N) = E + A·N^-alpha`` with standard errors; ``predict(n)`` evaluates it."""
    E: float
    A: float
    alpha: float
    E_err: float
    A_err: float
    alpha_err: float
    r2_log: float  # R² of log L against log L̂ over the fitted points
    n: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    weights: list = field(default_factory=list)  # Huber weights: < 1 marks a down-weighted point
    bootstrap: list = field(default_factory=list)  # (E, A, alpha) per resample, if asked

    def predict(self, n):
        n = np.asarray(n, float)
        out = self.E + self.A * n ** -self.alpha
        return float(out) if out.ndim == 0 else out

    def __str__(self) -> str:
        return (f"L(N) = {self.E:.3f}(±{self.E_err:.3f}) + {self.A:.3g}·N^-{self.alpha:.3f}"
                f"(±{self.alpha_err:.3f})   R²(log) = {self.r2_log:.4f}")


def _power_law_core(n, loss, delta, start=None):
    logn, logl = np.log(n), np.log(loss)
    n0 = math.exp(float(np.mean(logn)))  # fit A at the geometric-mean size: better conditioned

    def unpack(t):  # E and A positive through exp; alpha free
        return float(np.exp(t[0])), float(np.exp(t[1])), t[2]

    def residual(t):
        with np.errstate(all="ignore"):  # a wild trial step gives inf, which _lm rejects
            E, a, alpha = unpack(t)
            return np.log(E + a * (n / n0) ** -alpha) - logl

    lo = float(loss.min())
    starts = []
    for frac in (0.05, 0.2, 0.4, 0.6, 0.8, 0.9, 0.97):  # multi-start, as Hoffmann et al. do
        for alpha in (0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.2):
            E0 = frac * lo
            a0 = max(float(np.exp(np.mean(logl))) - E0, 1e-6)
            starts.append([math.log(E0), math.log(a0), alpha])
    if start is not None:  # a known good start (the bootstrap starts from the full fit)
        E0, A0, alpha0 = start
        starts = [[math.log(E0), math.log(A0 / n0**alpha0), alpha0]]
    best = None
    for t0 in starts:
        theta, f, J, r = _lm(residual, t0, delta)
        if best is None or f < best[1]:
            best = (theta, f, J, r)
    theta, f, J, r = best
    E, a, alpha = unpack(theta)
    return E, a * n0**alpha, alpha, theta, J, r, n0


def _drop_one_outlier(n, loss, delta) -> np.ndarray:
    """Which points to keep: all, unless leaving one out makes the others fit 4x better (RMS in
    log) and that point misses the others' law by more than 5 %: a diverged run, not noise.
    Needs 6+ points, so that 5 remain to fit 3 parameters."""
    keep = np.ones(len(n), bool)
    if len(n) < 6:
        return keep
    *_, r_full, _ = _power_law_core(n, loss, delta)
    rms_full = float(np.sqrt(np.mean(r_full**2)))
    best = None
    for i in range(len(n)):
        mask = keep.copy()
        mask[i] = False
        E, A, alpha, _, _, r, _ = _power_law_core(n[mask], loss[mask], delta)
        rms = float(np.sqrt(np.mean(r**2)))
        miss = abs(math.log((E + A * n[i] ** -alpha) / loss[i]))
        if rms * 4 < rms_full and miss > max(0.05, 3 * rms) and (best is None or rms < best[0]):
            best = (rms, i)
    if best is not None:
        keep[best[1]] = False
    return keep


def fit_power_law(n, loss, bootstrap: int = 0, seed: int = 0, delta: float = 0.05
                  ) -> PowerLawFit:
    """Fit ``L(N) = E + A·N^-alpha`` by minimising a Huber loss of ``log L − log L̂``.

    Log space weighs every size alike (a 1 % miss counts the same at any loss); the Huber loss
    (quadratic within ``delta`` = 5 % in log, linear beyond; Hoffmann et al. use 1e-3) limits
    one bad run's pull, and with 6+ points a run that the others' law misses by > 5 % while they
    fit each other 4x better is left out (its ``weights`` entry is 0). Standard errors come from
    the covariance ``σ²·(JᵀJ)⁻¹`` at the optimum or, with ``bootstrap=k``, from ``k`` fits on
    resampled points. ``r2_log`` is over all points, a left-out one included.
    """
    n, loss = _check_points(3, sizes=n, losses=loss)
    keep = _drop_one_outlier(n, loss, delta)
    E, A, alpha, theta, J, r, n0 = _power_law_core(n[keep], loss[keep], delta)
    # covariance of (log E, log A', alpha) -> standard errors of E, A, alpha (delta method)
    dof = max(int(keep.sum()) - 3, 1)
    sigma2 = float(np.sum(r**2)) / dof
    try:
        cov = sigma2 * np.linalg.pinv(J.T @ J)
        se = np.sqrt(np.maximum(np.diag(cov), 0))
        E_err = E * se[0]
        alpha_err = se[2]
        # A = A' n0^alpha: d log A = d log A' + log n0 · d alpha
        var_logA = cov[1, 1] + math.log(n0) ** 2 * cov[2, 2] + 2 * math.log(n0) * cov[1, 2]
        A_err = A * math.sqrt(max(var_logA, 0))
    except np.linalg.LinAlgError:
        E_err = A_err = alpha_err = float("nan")
    fit = PowerLawFit(E=E, A=A, alpha=alpha, E_err=E_err, A_err=A_err, alpha_err=alpha_err,
                      r2_log=0.0, n=n.tolist(), loss=loss.tolist())
    r_all = np.log(fit.predict(n)) - np.log(loss)
    fit.weights = np.where(~keep, 0.0, np.where(np.abs(r_all) <= delta, 1.0,
                                                delta / np.maximum(np.abs(r_all), 1e-300))).tolist()
    fit.r2_log = _r2(np.log(loss), np.log(fit.predict(n)))
    if bootstrap:
        rng = np.random.default_rng(seed)
        draws = []
        for _ in range(bootstrap):
            idx = rng.integers(0, len(n), len(n))
            if len(set(idx.tolist())) < 4:  # too few distinct sizes to determine 3 parameters
                continue
            Eb, Ab, ab, *_ = _power_law_core(n[idx], loss[idx], delta, start=(E, A, alpha))
            draws.append((Eb, Ab, ab))
        fit.bootstrap = draws
        if len(draws) >= 3:
            arr = np.array(draws)
            fit.E_err, fit.alpha_err = float(arr[:, 0].std()), float(arr[:, 2].std())
            fit.A_err = float(arr[:, 1].std())
    return fit


@dataclass
class ChinchillaFit:
    """``L(N, D) = E + A/N^alpha + B/D^beta`` fitted to runs, with standard errors."""
    E: float
    A: float
    B: float
    alpha: float
    beta: float
    errors: dict
    r2_log: float

    def law(self) -> ChinchillaLaw:
        return ChinchillaLaw(self.E, self.A, self.B, self.alpha, self.beta, source="fitted")

    def predict(self, n, d):
        out = self.law().loss(n, d)
        return float(out) if np.ndim(out) == 0 else out

    def __str__(self) -> str:
        e = self.errors
        return (f"L(N,D) = {self.E:.3f}(±{e['E']:.3f}) + {self.A:.3g}/N^{self.alpha:.3f}"
                f"(±{e['alpha']:.3f}) + {self.B:.3g}/D^{self.beta:.3f}(±{e['beta']:.3f})"
                f"   R²(log) = {self.r2_log:.4f}")


def fit_chinchilla(n, d, loss, delta: float = 1e-3) -> ChinchillaFit:
    """Fit Chinchilla's ``L(N, D)`` (approach 3) in log space with a Huber loss (``delta`` 1e-3,
    as Hoffmann et al.), multi-start.

    Parametrised as ``E = e^e, A = e^a, B = e^b`` so all stay positive, with N and D scaled by
    their geometric means for conditioning. Needs runs that vary N *and* D (e.g. a family at a
    fixed D plus IsoFLOP runs); with D fixed, ``B/D^beta`` is indistinguishable from ``E``.
    """
    n, d, loss = _check_points(5, sizes=n, tokens=d, losses=loss)
    if len(set(np.round(np.log(d), 6))) < 2 or len(set(np.round(np.log(n), 6))) < 2:
        raise ValueError("fit_chinchilla needs runs at several sizes *and* several token counts; "
                         "with one of them fixed, use fit_power_law instead.")
    n0, d0 = math.exp(float(np.mean(np.log(n)))), math.exp(float(np.mean(np.log(d))))
    logl = np.log(loss)

    def residual(t):
        with np.errstate(all="ignore"):
            E, A, B = np.exp(t[:3])
            return np.log(E + A * (n / n0) ** -t[3] + B * (d / d0) ** -t[4]) - logl

    best = None
    lo = float(loss.min())
    for frac in (0.3, 0.6, 0.9):
        for alpha in (0.2, 0.5, 1.0):
            for beta in (0.2, 0.5, 1.0):
                E0 = frac * lo
                rest = max(float(np.exp(logl.mean())) - E0, 1e-3)
                t0 = [math.log(E0), math.log(rest / 2), math.log(rest / 2), alpha, beta]
                theta, f, J, r = _lm(residual, t0, delta)
                if best is None or f < best[1]:
                    best = (theta, f, J, r)
    theta, f, J, r = best
    E, A1, B1 = np.exp(theta[:3])
    alpha, beta = theta[3], theta[4]
    A, B = A1 * n0**alpha, B1 * d0**beta
    dof = max(len(n) - 5, 1)
    cov = float(np.sum(r**2)) / dof * np.linalg.pinv(J.T @ J)
    se = np.sqrt(np.maximum(np.diag(cov), 0))
    errors = {"E": float(E * se[0]), "A": float(A * se[1]), "B": float(B * se[2]),
              "alpha": float(se[3]), "beta": float(se[4])}
    fit = ChinchillaFit(float(E), float(A), float(B), float(alpha), float(beta), errors, 0.0)
    fit.r2_log = _r2(logl, np.log(fit.predict(n, d)))
    return fit


# --------------------------------------------------------------------------- frontier


def isoflop_optimum(sizes, losses) -> dict:
    """The loss-optimal size at one compute budget: a parabola in ``log N`` through the runs
    (Hoffmann et al.'s approach 2). Returns ``n_opt``, ``loss_opt``, the parabola's
    coefficients, and ``interior`` (False when the minimum lies outside the sizes tried, which
    means the sweep should extend that way)."""
    if len(np.atleast_1d(sizes)) < 3:
        raise ValueError(f"{len(np.atleast_1d(sizes))} runs cannot place a parabola's minimum; "
                         "pass at least 3 sizes at this budget, around the best one.")
    # three points determine the parabola exactly; more are fitted by least squares
    n, loss = _check_points(2, sizes=sizes, losses=losses)
    x = np.log(n)
    c2, c1, c0 = np.polyfit(x, loss, 2)
    if c2 <= 0:  # no minimum: the best run is the best we know
        i = int(np.argmin(loss))
        return {"n_opt": float(n[i]), "loss_opt": float(loss[i]), "coef": [c2, c1, c0],
                "interior": False}
    x_opt = -c1 / (2 * c2)
    interior = bool(x.min() <= x_opt <= x.max())
    x_opt = float(np.clip(x_opt, x.min() - 1.0, x.max() + 1.0))
    return {"n_opt": float(math.exp(x_opt)), "loss_opt": float(np.polyval([c2, c1, c0], x_opt)),
            "coef": [float(c2), float(c1), float(c0)], "interior": interior}


def fit_frontier_exponent(budgets, n_opt) -> dict:
    """``N_opt = k·C^a`` by least squares in log-log: returns ``a``, ``k`` and ``a_err``."""
    c, n = _check_points(1, budgets=budgets, optimal_sizes=n_opt)
    X = np.vstack([np.log(c), np.ones_like(c)]).T
    coef, *_ = np.linalg.lstsq(X, np.log(n), rcond=None)
    a, logk = float(coef[0]), float(coef[1])
    resid = np.log(n) - X @ coef
    dof = len(c) - 2
    if dof > 0:
        cov = float(resid @ resid) / dof * np.linalg.inv(X.T @ X)
        a_err = float(math.sqrt(cov[0, 0]))
    else:
        a_err = float("nan")
    return {"a": a, "k": math.exp(logk), "a_err": a_err}


def compute_optimal(flops, fit, flops_per_param_token: float = 6.0) -> dict:
    """``N_opt``, ``D_opt`` and tokens per parameter for a budget ``C = k·N·D``.

    ``fit`` is a ``ChinchillaFit`` or ``ChinchillaLaw`` (closed form), or a frontier from
    ``fit_frontier_exponent`` (``N_opt = k·C^a``, ``D_opt = C / (6·N_opt)``).
    """
    c = np.asarray(flops, float)
    if np.any(~np.isfinite(c)) or np.any(c <= 0):
        raise ValueError(f"flops must be positive, got {flops!r}; pass a compute budget in FLOPs.")
    if isinstance(fit, ChinchillaFit):
        fit = fit.law()
    if isinstance(fit, ChinchillaLaw):
        out = fit.optimal(c, flops_per_param_token)
    elif isinstance(fit, dict) and {"a", "k"} <= set(fit):
        n = fit["k"] * c ** fit["a"]
        d = c / (flops_per_param_token * n)
        out = {"n_opt": n, "d_opt": d, "tokens_per_param": d / n}
    else:
        raise TypeError(f"compute_optimal needs a ChinchillaFit, ChinchillaLaw or a frontier dict "
                        f"from fit_frontier_exponent, not {type(fit).__name__}.")
    return {k: (float(v) if np.ndim(v) == 0 else v) for k, v in out.items()}


def budget_explorer_text(flops: float, fit, frontier: dict | None = None) -> str:
    """The plain-function path of the notebook's budget widget: for ``flops``, the optimal size
    and data and the predicted loss under ``fit`` (and the IsoFLOP frontier, if given)."""
    opt = compute_optimal(flops, fit)
    lines = [f"budget C = {flops:.2e} FLOPs (C = 6·N·D)",
             f"  fitted L(N,D): N_opt = {opt['n_opt']:,.0f} params, D_opt = {opt['d_opt']:,.0f} "
             f"tokens ({opt['tokens_per_param']:.1f} tokens/param), predicted loss "
             f"{opt['loss']:.3f} nats/token"]
    if frontier is not None:
        fr = compute_optimal(flops, frontier)
        lines.append(f"  IsoFLOP frontier: N_opt = {fr['n_opt']:,.0f}, D_opt = "
                     f"{fr['d_opt']:,.0f} ({fr['tokens_per_param']:.1f} tokens/param)")
    return "\n".join(lines)


# --------------------------------------------------------------------------- sweeps


@dataclass
class SweepRecipe:
    """One recipe for every size: only the learning rate changes, ``lr = min(lr_max,
    lr_ref·d_ref/d)``
    (Adam's update size is per weight, so wider layers need proportionally smaller steps, the
    μP rule for hidden matrices), anchored on the profile's base model recipe."""
    context: int = 128
    batch_size: int = 16
    lr_ref: float = 3e-3
    width_ref: int = 128
    lr_max: float = 1.2e-2  # tiny widths: 1/d would give 2.4e-2, which trains worse (measured)
    warmup_fraction: float = 0.05
    eval_blocks: int = 128
    seed: int = 0

    def lr(self, width: int) -> float:
        return min(self.lr_max, self.lr_ref * self.width_ref / width)

    @classmethod
    def from_profile(cls, profile, **overrides) -> "SweepRecipe":
        base_width = FAMILY[profile.base_size][1]
        kw = dict(context=profile.context, batch_size=profile.batch_size, lr_ref=profile.lr,
                  width_ref=base_width, seed=profile.seed)
        kw.update(overrides)
        return cls(**kw)


def _cache_root() -> Path:
    return Path(os.environ.get("LLMUP_CACHE", Path.home() / ".cache" / "llmup")) / "scaling"


def sweep_table_path(name: str) -> Path:
    """Where a notebook keeps a sweep's table: ``$LLMUP_CACHE/scaling/NAME`` (default cache
    ``~/.cache/llmup``), beside the cached runs, for later notebooks to reuse."""
    return _cache_root() / name


def shipped_table(name: str, profile: str = "cpu") -> Path:
    """A sweep table shipped with the package, ``data/scaling/{profile}_{name}.json``: runs too
    long for a notebook's budget, made by the ``python -m llmup_lib sweep`` command in
    ``data/scaling/README.md`` and checked against a live rerun in notebook 05."""
    from .tokenizer import DATA_DIR

    path = DATA_DIR / "scaling" / f"{profile}_{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"No shipped sweep table {path.name!r}; make it with the command "
                                "in data/scaling/README.md, or run the sweep in the notebook.")
    return path


def _docs_for(tokens: float) -> int:
    # ~87 tokens per story in the suite's BPE (371 chars x 0.235 tokens/char); 10 % spare
    return int(math.ceil(tokens / 80 * 1.1)) + 100


def sweep_data(recipe: SweepRecipe, max_tokens: float, n_val: int = 200):
    """Training and validation blocks of the general corpus, enough documents that no run of
    up to ``max_tokens`` sees a document twice (scaling laws assume fresh data)."""
    from .corpora import load_corpus
    from .tokenizer import load_tokenizer, pack_blocks

    tokenizer = load_tokenizer()
    corpus = load_corpus("general", n_train=_docs_for(max_tokens), n_val=n_val, seed=recipe.seed)
    train = pack_blocks(corpus["train"]["text"], tokenizer, recipe.context)
    val = pack_blocks(corpus["validation"]["text"], tokenizer, recipe.context)
    return tokenizer, train, val[:recipe.eval_blocks], corpus


def plan_isoflop(budgets, names, recipe: SweepRecipe, min_steps: int = 20,
                 max_steps: int | None = None) -> list[dict]:
    """Sweep points for an IsoFLOP experiment: at each budget ``C`` every size gets
    ``D = C / (6·N)`` tokens (rounded to whole steps); sizes given fewer than ``min_steps``
    or more than ``max_steps`` steps are skipped. Returns ``[{"size", "tokens", "budget"}]``."""
    tokens_per_step = recipe.context * recipe.batch_size
    points = []
    for c in budgets:
        if not (c > 0):
            raise ValueError(f"budget {c!r} must be a positive number of FLOPs.")
        for name in names:
            n = non_embedding_params(parse_shape(name))
            steps = round(c / (6 * n) / tokens_per_step)
            if steps >= min_steps and (max_steps is None or steps <= max_steps):
                points.append({"size": name, "tokens": steps * tokens_per_step, "budget": c})
    return points


def _row_key(point: dict, recipe: SweepRecipe, shape, n_blocks: int) -> str:
    # n_blocks: the batches are permutations of the training pool, so its size is in the key
    blob = json.dumps([asdict(recipe), list(shape), point["tokens"], n_blocks, 3],
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _row_digest(row: dict) -> str:
    return hashlib.sha256(json.dumps(row, sort_keys=True).encode()).hexdigest()


def _read_cached_row(path: Path) -> dict | None:
    """A cached sweep row, or None when there is none. A truncated or corrupt entry (unparsable,
    or its SHA-256 does not match) is reported with a warning and retrained, never used."""
    if not path.exists():
        return None
    try:
        entry = json.loads(path.read_text())
        if isinstance(entry, dict) and set(entry) == {"row", "sha256"}:
            if _row_digest(entry["row"]) != entry["sha256"]:
                raise ValueError("checksum mismatch")
            return entry["row"]
        if isinstance(entry, dict) and "val_loss" in entry:  # written before checksums
            return entry
        raise ValueError("not a sweep row")
    except (ValueError, UnicodeDecodeError) as err:
        warnings.warn(f"Cached sweep row {str(path)!r} is corrupt ({err}); retraining it.",
                      stacklevel=3)
        return None


def run_sweep(points, recipe: SweepRecipe | None = None, data=None, cache: bool = True,
              progress: bool = False, log=print) -> list[dict]:
    """Train one model per point (``{"size": name, "tokens": D, ...}``) with ``recipe`` and
    return one row per run: shape, parameters, lr, steps, tokens, FLOPs (both counts), the
    validation loss, wall time, throughput and memory.

    Rows are cached in ``$LLMUP_CACHE/scaling`` (default ``~/.cache/llmup``) by recipe, shape
    and tokens, so rerunning a sweep (or a later notebook) costs nothing; ``cache=False``
    retrains. Under ``accelerate launch`` each run is data-parallel over the processes (the
    recipe's batch is global) and only the main process writes the cache.
    """
    import torch
    from accelerate import Accelerator

    from .evaluate import peak_memory_mb
    from .models import count_params
    from .train import TrainConfig, eval_loss, train

    recipe = recipe or SweepRecipe()
    points = [dict(p) for p in points]
    for p in points:
        if "tokens" not in p or not p["tokens"] > 0:
            raise ValueError(f"sweep point {p!r} needs a positive 'tokens' count.")
        parse_shape(p["size"])
    tokens_per_step = recipe.context * recipe.batch_size
    max_tokens = max(p["tokens"] for p in points)
    if data is None:
        data = sweep_data(recipe, max_tokens)
    tokenizer, train_blocks, val_blocks = data[:3]
    accelerator = Accelerator()
    root = _cache_root()
    rows = []
    for p in points:
        shape = parse_shape(p["size"])
        key = _row_key(p, recipe, shape, len(train_blocks))
        path = root / f"{key}.json"
        row = _read_cached_row(path) if cache else None
        if row is not None:
            row.update({k: v for k, v in p.items() if k not in row})
            rows.append(row)
            continue
        steps = max(1, round(p["tokens"] / tokens_per_step))
        model = build_grid_model(p["size"], tokenizer, recipe.context, seed=recipe.seed)
        counts = count_params(model)
        lr = recipe.lr(shape[1])
        cfg = TrainConfig(steps=steps, batch_size=recipe.batch_size, lr=lr,
                          warmup_steps=max(1, round(recipe.warmup_fraction * steps)),
                          seed=recipe.seed, progress=progress, log_every=max(1, steps // 20))
        t0 = time.perf_counter()
        result = train(model, train_blocks, None, cfg, accelerator=accelerator)
        wall = time.perf_counter() - t0
        model = result.model
        val = eval_loss(model, val_blocks, recipe.batch_size)
        flops = training_flops(model.config, steps * tokens_per_step, recipe.context)
        row = {**p, "layers": shape[0], "width": shape[1], "heads": shape[2],
               "params": counts["non_embedding"], "params_total": counts["total"],
               "lr": lr, "steps": steps, "tokens": steps * tokens_per_step,
               "flops_6nd": flops["six_nd"], "flops_total": flops["total"],
               "flops_attention": flops["attention"], "val_loss": val,
               "final_train_loss": result.history[-1]["train_loss"],
               "train_seconds": result.seconds, "wall_seconds": wall,
               "tokens_per_second": result.tokens_per_second,
               "state_mb": counts["total"] * 16 / 2**20,  # fp32 weights, grads, Adam m and v
               "peak_rss_mb": peak_memory_mb(),
               "device": str(accelerator.device), "processes": accelerator.num_processes,
               "curve_tokens": [h["tokens"] for h in result.history if "train_loss" in h],
               "curve_loss": [h["train_loss"] for h in result.history if "train_loss" in h]}
        rows.append(row)
        if cache and accelerator.is_main_process:
            root.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"row": row, "sha256": _row_digest(row)}))
            os.replace(tmp, path)
        if log and accelerator.is_main_process:
            log(f"{p['size']:>7} N={row['params']:>9,} D={row['tokens']:>9,} lr={lr:.2g}: "
                f"val loss {val:.4f}")
        del model, result
        torch.manual_seed(recipe.seed)
    return rows


def save_table(rows: list[dict], path) -> Path:
    """Write sweep rows as CSV (``.csv``, scalar columns only) or JSON (anything else, with the
    training curves)."""
    path = Path(path)
    if not rows:
        raise ValueError("No rows to save; run a sweep first.")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        keys = list(dict.fromkeys(k for r in rows for k, v in r.items()
                                  if not isinstance(v, (list, tuple, dict))))
        with path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    else:
        path.write_text(json.dumps(rows, indent=1) + "\n")
    return path


def load_table(path) -> list[dict]:
    """Read rows written by ``save_table`` (numbers come back as numbers)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No sweep table at {str(path)!r}; run "
                                "`python -m llmup_lib sweep --out PATH` first.")
    if path.suffix != ".csv":
        return json.loads(path.read_text())
    with path.open(newline="") as fh:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def _number(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


# --------------------------------------------------------------------------- exercise checks


def _report(name: str, ok: bool, hint: str) -> bool:
    print(f"{name}: " + ("correct!" if ok else f"not yet: {hint}"))
    return ok


def check_six_nd(row: dict, your_flops: float) -> bool:
    """Exercise: the 6·N·D training FLOPs of one sweep row."""
    truth = 6 * row["params"] * row["tokens"]
    return _report("6ND", math.isclose(your_flops, truth, rel_tol=1e-3),
                   f"expected about {truth:.3e}; 6 x non-embedding parameters x training tokens.")


def check_tokens_per_param(flops: float, your_ratio: float) -> bool:
    """Exercise: Chinchilla's optimal tokens per parameter at a budget (its reference law)."""
    truth = compute_optimal(flops, REFERENCES["chinchilla"])["tokens_per_param"]
    return _report("tokens per parameter", math.isclose(your_ratio, truth, rel_tol=1e-2),
                   f"expected about {truth:.1f}; use compute_optimal(C, REFERENCES['chinchilla']).")
