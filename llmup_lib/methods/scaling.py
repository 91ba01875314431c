"""Scaling: how much better a bigger model (or more data) is, at what cost, and how to split a
compute budget between size and data.

* **fits** -- ``L(N) = E + A·N^-α`` (``fit_power_law``) and Chinchilla's
  ``L(N, D) = E + A/N^α + B/D^β`` (``fit_chinchilla``), both in log space with a Huber loss
  (robust to a bad point) and standard errors from the covariance or a bootstrap; and the one
  simple fit, ``loglog_fit`` (a straight line in log-log, no floor: the capacity table's excess
  slope, the biography world's predicted exponents);
* **the compute-optimal frontier** -- the best size per budget from an IsoFLOP sweep
  (``isoflop_optimum``), its exponent ``N_opt ∝ C^a`` (``fit_frontier_exponent``), and
  ``N_opt, D_opt`` for a budget from a fitted law (``compute_optimal``);

The models a sweep trains, their parameter counts and FLOPs (``size_grid``, ``parse_shape``,
``build_grid_model``, ``non_embedding_params``, ``training_flops``) are ``llmup_lib.core.family``;
making the rows to fit (recipes, sweeps, their cache and tables, the shipped tables) is
``llmup_lib.experiments.sweep``.

**The optimiser.** The fits minimise a Huber loss of log residuals with
``scipy.optimize.least_squares(loss="huber", f_scale=delta)`` (trust-region reflective), started
from a grid of points as Hoffmann et al. do. It replaced a hand-written Levenberg-Marquardt loop:
SciPy's solver is tested far beyond what this suite could test its own, handles a trial step
that leaves the domain (shrinks the trust region instead of failing), and its ``huber`` loss is
exactly the objective the lesson states; ``tests/test_scaling.py`` checks that it recovers known
parameters and agrees with the old loop on the shipped tables. Standard errors still come from
the plain (unweighted) Jacobian at the optimum, ``σ²·(JᵀJ)⁻¹``, or a bootstrap.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

import numpy as np

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


def _jacobian(residual, theta: np.ndarray, r0: np.ndarray) -> np.ndarray:
    """Forward-difference Jacobian of the *plain* residuals (for the covariance; the one
    ``least_squares`` returns is rescaled by the Huber weights)."""
    J = np.empty((len(r0), len(theta)))
    for j in range(len(theta)):
        h = 1e-6 * max(1.0, abs(theta[j]))
        tp = theta.copy()
        tp[j] += h
        J[:, j] = (residual(tp) - r0) / h
    return J


def _robust_fit(residual, theta0, delta: float, tol: float = 1e-12):
    """Minimise ``Σ huber_δ(r_i)`` from ``theta0`` with SciPy's trust-region least squares.
    Returns ``(theta, objective, jacobian, residuals)``; a start whose residuals are not finite
    gives an infinite objective (and no Jacobian), so multi-start skips it."""
    from scipy.optimize import least_squares

    theta0 = np.asarray(theta0, float)
    with np.errstate(all="ignore"):  # a wild trial step gives inf: the trust region shrinks
        if not np.all(np.isfinite(residual(theta0))):
            return theta0, np.inf, None, None
        # SciPy's "huber" with f_scale=δ is exactly ½r² within δ and δ(|r| − δ/2) beyond
        sol = least_squares(residual, theta0, loss="huber", f_scale=delta, method="trf",
                            ftol=tol, xtol=tol, gtol=tol, max_nfev=2000)
        r = residual(sol.x)
        return sol.x, float(np.sum(_huber(r, delta))), _jacobian(residual, sol.x, r), r


def multi_start(residual, starts, delta: float):
    """The best of ``_robust_fit`` from every start: each start is solved to a loose tolerance
    (1e-5, enough to rank the basins) and only the best is polished to 1e-12, which takes the
    48 of 49 starts that lose off the expensive part."""
    best = None
    for t0 in starts:
        fit = _robust_fit(residual, t0, delta, tol=1e-5)
        if best is None or fit[1] < best[1]:
            best = fit
    return _robust_fit(residual, best[0], delta)


def _r2(y: np.ndarray, yhat: np.ndarray) -> float:
    ss = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((y - yhat) ** 2)) / ss if ss > 0 else float("nan")


def loglog_fit(x, y) -> dict:
    """The simple fit: least squares of ``log y`` on ``log x`` (a straight line in log-log, i.e.
    ``y = e^intercept · x^slope``, no floor): ``slope``, ``intercept`` and ``r2`` (in log).
    For a law with a floor, or robust to a bad point, use ``fit_power_law``."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    slope, intercept = np.polyfit(lx, ly, 1)
    resid = ly - (slope * lx + intercept)
    ss = float(np.sum((ly - ly.mean()) ** 2))
    return {"slope": float(slope), "intercept": float(intercept),
            "r2": 1 - float(np.sum(resid ** 2)) / ss if ss > 0 else float("nan")}


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
        with np.errstate(all="ignore"):  # a wild trial step gives inf: rejected
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
    theta, f, J, r = multi_start(residual, starts, delta)
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

    lo = float(loss.min())
    starts = []
    for frac in (0.3, 0.6, 0.9):
        for alpha in (0.2, 0.5, 1.0):
            for beta in (0.2, 0.5, 1.0):
                E0 = frac * lo
                rest = max(float(np.exp(logl.mean())) - E0, 1e-3)
                starts.append([math.log(E0), math.log(rest / 2), math.log(rest / 2), alpha, beta])
    theta, f, J, r = multi_start(residual, starts, delta)
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


# --------------------------------------------------------------------------- a tuned, seeded family


def tuned_family(rows, floor: float = 0.0) -> list[dict]:
    """One entry per size of a tuned sweep (rows with ``size``, ``lr``, ``seed``), smallest
    first, at its best rate: ``size``, ``params``, ``lr``, ``rates`` (the size's grid),
    ``at_edge`` (the best rate is an end of a grid of 3 or more: it warns), ``seeds``, and per
    seed ``val_loss`` and ``excess`` (the loss above ``floor``).

    The best rate is the lowest mean over the seeds when every rate ran the same seeds (a full
    grid). A two-stage sweep (every rate on one seed, then more seeds at the best one; the
    shipped ``cpu`` table) has already chosen: its best rate is the one with the most seeds, so
    the extra seeds confirm that choice and never move it to a rate with one seed."""
    from ..experiments.runner import rate_stats, warn_edge

    rows = list(rows)
    missing = [r.get("size") for r in rows if "seed" not in r]
    if missing:
        raise ValueError(f"The sweep rows of {missing[0]!r} carry no seed: a tuned family needs "
                         "`experiment sweep --lr-factors ... --seeds ...` rows.")
    out = []
    for size, stats in rate_stats(rows, "size", "val_loss").items():
        most = max(n for _, _, n in stats.values())
        lr = min((lr for lr, st in stats.items() if st[2] == most), key=lambda lr: stats[lr][0])
        rates = sorted(stats)
        warn_edge(size, lr, rates)
        runs = sorted((r for r in rows if r["size"] == size and r["lr"] == lr),
                      key=lambda r: r["seed"])
        out.append({"size": size, "params": runs[0]["params"], "lr": lr, "rates": rates,
                    "at_edge": len(rates) >= 3 and lr in (rates[0], rates[-1]),
                    "seeds": [r["seed"] for r in runs],
                    "val_loss": [r["val_loss"] for r in runs],
                    "excess": [r["val_loss"] - floor for r in runs]})
    return sorted(out, key=lambda e: e["params"])


def predict_held_out(entries, held: int = -1) -> dict:
    """Predict, then check: fit excess = A·N^-a on the sizes below ``entries[held]`` and predict
    its excess. Returns the prediction, the measured mean, the relative error, and the errors of
    two null predictors (the nearest smaller size's excess; the mean of the smaller sizes')."""
    held = held % len(entries)
    if held < 2:
        raise ValueError(f"held={held} leaves {held} smaller size(s); a power law needs two.")
    below = entries[:held]
    fit = loglog_fit([e["params"] for e in below], [statistics.mean(e["excess"]) for e in below])
    target = entries[held]
    measured = statistics.mean(target["excess"])
    prediction = math.exp(fit["intercept"]) * target["params"] ** fit["slope"]

    def err(value):
        return abs(value - measured) / measured

    return {"size": target["size"], "prediction": prediction, "measured": measured,
            "rel_err": err(prediction), "slope": fit["slope"],
            "null_nearest_rel_err": err(statistics.mean(below[-1]["excess"])),
            "null_mean_rel_err": err(statistics.mean(statistics.mean(e["excess"])
                                                      for e in below))}


def skill_over_nulls(prediction: dict, spread: float = 0.0) -> dict:
    """Whether a law's held-out prediction (``predict_held_out``) beats both null predictors by
    more than ``spread`` (the held-out size's relative seed deviation): ``margin`` is the better
    null's error minus the law's, ``skill`` is ``margin > spread``."""
    best_null = min(prediction["null_nearest_rel_err"], prediction["null_mean_rel_err"])
    margin = best_null - prediction["rel_err"]
    return {"margin": margin, "best_null_rel_err": best_null, "spread": spread,
            "skill": bool(margin > spread)}
