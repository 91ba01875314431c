"""The exercises of notebooks 05–07 (scaling, distillation, which upgrade?): hidden cases,
ground truth, hints and recognised mistakes. Registered by ``bank``.

The ground truth is the package's own implementation where one exists (``distill.forward_kl``,
``ChinchillaLaw.optimal``), so a reference solution that drifted from the package would fail its
own test.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from . import solutions as S
from .grader import Exercise, Mistake, describe


# ----------------------------------------------------------------------------- 05 scaling


def _power_law_cases(rng):
    cases = []
    for i in range(4):
        n = np.geomspace(10 ** rng.uniform(4, 5), 10 ** rng.uniform(7, 8), int(rng.integers(5, 9)))
        A, alpha = rng.uniform(5, 50), rng.uniform(0.1, 0.5)
        floor = 0.0 if i % 2 == 0 else rng.uniform(0.5, 2.0)
        loss = floor + A * n ** -alpha * np.exp(rng.normal(0, 0.05, len(n)))
        cases.append((n, loss, floor))
    return cases


def _linear_space_fit(n, loss, floor=0.0):
    """The usual mistake: least squares on the loss itself, which lets the smallest models'
    large losses dominate the fit."""
    from scipy.optimize import curve_fit

    start = S.fit_power_law(n, loss, floor)
    (A, alpha), _ = curve_fit(lambda x, A, a: floor + A * x ** -a, n, loss, p0=start,
                              maxfev=20000)
    return float(A), float(alpha)


def _law_cases(rng):
    from ..methods.scaling import ChinchillaLaw

    return [(10 ** rng.uniform(15, 24),
             ChinchillaLaw(E=rng.uniform(0.5, 2), A=rng.uniform(100, 600), B=rng.uniform(100, 2500),
                           alpha=rng.uniform(0.25, 0.4), beta=rng.uniform(0.25, 0.4)))
            for _ in range(5)]


def _optimal(key):
    return lambda c, law: float(law.optimal(c)[key])


EX05 = [
    Exercise(
        id="05.fit_power_law", title="power-law fit",
        writes="fit_power_law(n, loss, floor) -> (A, alpha)",
        cases=_power_law_cases, solution=S.fit_power_law, rtol=1e-3,
        hints=("A power law is a straight line in log-log space, once the floor is taken off.",
               "polyfit(log n, log(loss - floor), 1) -> slope, intercept; "
               "A = exp(intercept), alpha = -slope."),
        mistakes=(
            Mistake(_linear_space_fit, "That is a fit in linear space (least squares on the loss "
                    "itself); fit a straight line to the logs instead."),
            Mistake(lambda n, y, e: S.fit_power_law(n, y, 0.0), "You did not subtract the floor: "
                    "fit log(loss − floor), not log(loss)."),
            Mistake(lambda n, y, e: (S.fit_power_law(n, y, e)[0], -S.fit_power_law(n, y, e)[1]),
                    "alpha has the wrong sign: loss = A·N^(−alpha), so alpha is minus the "
                    "slope."),
            Mistake(lambda n, y, e: (math.log(S.fit_power_law(n, y, e)[0]),
                                     S.fit_power_law(n, y, e)[1]),
                    "Your A is log A: exponentiate the intercept."),
        )),
    Exercise(
        id="05.six_nd", title="6ND",
        writes="six_nd(n_params, tokens) -> float",
        cases=lambda rng: [(int(10 ** rng.uniform(5, 9)), int(10 ** rng.uniform(7, 11)))
                           for _ in range(5)],
        solution=S.six_nd,
        hints=("Count FLOPs per weight per token, forward and backward.",
               "C = 6 · N · D: 2 forward, 4 backward."),
        mistakes=(Mistake(lambda n, d: 2 * n * d, "That is the forward pass only (2·N·D); the "
                          "backward pass costs twice as much again."),
                  Mistake(lambda n, d: n * d, "N·D counts weight-token pairs; each costs 6 FLOPs "
                          "in training."))),
    Exercise(
        id="05.compute_optimal_size", title="compute-optimal size",
        writes="compute_optimal_size(flops, law) -> float",
        cases=_law_cases, solution=S.compute_optimal_size, expect=_optimal("n_opt"),
        hints=("Minimise the law's loss along C = 6·N·D; the optimum is a power of the budget.",
               "N_opt = G · (C/6)^(β/(α+β)) with G = (α·A / (β·B))^(1/(α+β))."),
        mistakes=(
            Mistake(lambda c, law: math.sqrt(c / 120), "That is the 20-tokens-per-parameter rule "
                    "of thumb, not this law's optimum; use its α, β, A and B."),
            Mistake(_optimal("d_opt"), "That is the optimal number of tokens D, not parameters N "
                    "(exponents swapped?)."),
            Mistake(lambda c, law: S.compute_optimal_size(6 * c, law), "You used C where the "
                    "formula has C/6 (C = 6·N·D)."),
        )),
]

# ----------------------------------------------------------------------------- 06 distillation


def _kd_cases(rng):
    cases = []
    for _ in range(4):
        b, t, v = int(rng.integers(1, 4)), int(rng.integers(2, 6)), int(rng.integers(5, 20))
        cases.append((2 * torch.randn(b, t, v), 2 * torch.randn(b, t, v),
                      float(rng.choice([2.0, 3.0, 4.0, 0.5]))))  # never 1: T² must show
    return cases


def _kl_with(forward=True, T2=True, soften=True, mean=True):
    def wrong(s, t, T):
        k = T if soften else 1.0
        log_q, log_p = torch.log_softmax(s / k, -1), torch.log_softmax(t / k, -1)
        a, b = (log_p, log_q) if forward else (log_q, log_p)
        per_pos = (a.exp() * (a - b)).sum(-1)
        total = per_pos.mean() if mean else per_pos.sum() / s.shape[0]  # batchmean over B only
        return total * (T * T if T2 else 1.0)
    return wrong


def _distill(name):
    def truth(*args):
        from ..methods import distill

        return getattr(distill, name)(*args)
    return truth


EX06 = [
    Exercise(
        id="06.soften", title="softened distribution",
        writes="soften(logits, temperature) -> tensor like logits",
        cases=lambda rng: [(2 * torch.randn(int(rng.integers(1, 4)), int(rng.integers(4, 12))),
                            float(rng.choice([0.5, 2.0, 3.0, 5.0]))) for _ in range(4)],
        solution=S.soften, expect=_distill("soften"),
        hints=("The temperature flattens the distribution before the softmax.",
               "softmax(logits / T, dim=-1)."),
        mistakes=(Mistake(lambda z, T: torch.softmax(z * T, -1), "You multiplied the logits by "
                          "T; divide them (T > 1 must flatten)."),
                  Mistake(lambda z, T: torch.softmax(z, -1), "The temperature is missing."))),
    Exercise(
        id="06.kd_forward_kl", title="KD loss (forward KL)",
        writes="kd_forward_kl(student_logits, teacher_logits, temperature) -> 0-d tensor",
        cases=_kd_cases, solution=S.kd_forward_kl, expect=_distill("forward_kl"),
        hints=("Soften both, compare the teacher's distribution to the student's, and keep the "
               "gradient's size independent of T.",
               "T² · mean over positions of Σ_v p_T · (log p_T − log q_T), p teacher, "
               "q student."),
        mistakes=(
            Mistake(_kl_with(T2=False), "Off by exactly T² — did you forget the T² factor?"),
            Mistake(_kl_with(forward=False), "That is the reverse KL, KL(q‖p); Hinton's loss "
                    "weighs the log-ratio by the teacher's p."),
            Mistake(_kl_with(soften=False), "The logits are not divided by T before the softmax."),
            Mistake(_kl_with(mean=False), "You summed over positions and divided by the batch "
                    "only (KLDiv's 'batchmean' on 3-d logits); average over every position."),
        )),
    Exercise(
        id="06.reverse_kl", title="reverse KL",
        writes="reverse_kl(student_logits, teacher_logits, temperature) -> 0-d tensor",
        cases=_kd_cases, solution=S.reverse_kl, expect=_distill("reverse_kl"),
        hints=("Same pieces as the forward KL, but the student's own distribution weighs it.",
               "T² · mean over positions of Σ_v q_T · (log q_T − log p_T)."),
        mistakes=(
            Mistake(_kl_with(forward=True), "That is the forward KL, KL(p‖q); the reverse one "
                    "is weighed by the student's q."),
            Mistake(_kl_with(forward=False, T2=False), "Off by exactly T² — did you forget the "
                    "T² factor?"),
        )),
    Exercise(
        id="06.gap_closed", title="gap closed",
        writes="gap_closed(scratch_loss, student_loss, teacher_loss) -> float",
        cases=lambda rng: [tuple(float(x) for x in (s, s - rng.uniform(0, 1) * g, s - g))
                           for s, g in rng.uniform([1, 0.1], [3, 1], size=(5, 2))],
        solution=S.gap_closed, expect=_distill("gap_closed"),
        hints=("How much of the way from scratch to teacher did the student go?",
               "(scratch − student) / (scratch − teacher)."),
        mistakes=(Mistake(lambda s, st, t: (st - t) / (s - t), "That is the gap left, not the "
                          "gap closed (you computed one minus it)."),
                  Mistake(lambda s, st, t: 100 * (s - st) / (s - t), "A fraction, please, not a "
                          "percentage."))),
]

# ----------------------------------------------------------------------------- 07 which upgrade?

OPTIONS = ("prompting", "full fine-tuning", "LoRA", "larger model", "distillation")

# Why each reference decision is made, phrased as a question: a learner who got a scenario of
# that kind wrong reads the question, not the answer.
_NUDGES = {
    "prompting": "a scenario with no training examples, or where a good instruction already "
                 "does the job: what does training buy there?",
    "distillation": "a scenario where the quality is there but the model is too slow to serve: "
                    "which lever keeps that quality in a smaller model?",
    "larger model": "a model weak at everything, with a large compute budget: can adapting it "
                    "to a domain add general capacity?",
    "LoRA": "few examples, tight memory, or general skills to keep: which way of training "
            "forgets less and stores almost no optimizer state?",
    "full fine-tuning": "many examples, memory to spare and forgetting acceptable: is a "
                        "low-rank update still the best use of them?",
}


def _scenarios(rng):
    out = []
    for _ in range(40):
        out.append(({
            "examples": int(rng.choice([0, 50, 300, 2000, 20000])),
            "prompting_ok": bool(rng.random() < 0.15),
            "too_slow_to_serve": bool(rng.random() < 0.2),
            "weak_everywhere": bool(rng.random() < 0.3),
            "compute": str(rng.choice(["small", "large"])),
            "keep_general": bool(rng.random() < 0.35),
            "memory_for_full": bool(rng.random() < 0.65),
        },))
    return out


def _option_problem(answer) -> str | None:
    if answer not in OPTIONS:
        return (f"expected one of {', '.join(repr(o) for o in OPTIONS)}, got "
                f"{answer!r}." if isinstance(answer, str) else
                f"expected one of the option strings, got {describe(answer)}.")
    return None


def scenario_nudge(scenario) -> str:
    """The question that leads to the reference decision for ``scenario`` (no answer in it)."""
    return _NUDGES[S.choose_upgrade(scenario)]


def _pareto_cases(rng):
    cases = []
    for _ in range(5):
        k = int(rng.integers(4, 9))
        cost, loss = rng.uniform(1, 100, k), rng.uniform(0.2, 3, k)
        cases.append(([{"name": f"option{i}", "cost": float(c), "loss": float(v)}
                       for i, (c, v) in enumerate(zip(cost, loss))],))
    return cases


EX07 = [
    Exercise(
        id="07.choose_upgrade", title="which upgrade?",
        writes="choose_upgrade(scenario: dict) -> one of " + ", ".join(OPTIONS),
        cases=_scenarios, solution=S.choose_upgrade, validate=_option_problem,
        hints=("Decide in order: is training needed at all? Is the cost of serving the problem? "
               "Is the gap general or only the domain's? Then: how many examples, how much "
               "memory, and may it forget?",
               "prompting if no examples or prompting suffices; distillation if too slow to "
               "serve; larger model if weak everywhere and compute is large; LoRA if few "
               "examples (< 1000), tight memory or general skills to keep; else full "
               "fine-tuning."),
        explain=lambda args: "Look again at " + scenario_nudge(args[0])),
    Exercise(
        id="07.adamw_state_bytes", title="AdamW state",
        writes="adamw_state_bytes(trainable_params, bytes_per_value) -> int",
        cases=lambda rng: [(int(10 ** rng.uniform(3, 8)), int(rng.choice([2, 4])))
                           for _ in range(5)],
        solution=S.adamw_state_bytes, rtol=0, atol=0,
        hints=("AdamW keeps running statistics for every parameter that trains.",
               "2 moments (m and v) × bytes per value × trainable parameters."),
        mistakes=(Mistake(lambda n, b: b * n, "AdamW keeps two moments per parameter, m and v; "
                          "you counted one."),
                  Mistake(lambda n, b: 4 * b * n, "You counted weights and gradients too; the "
                          "question is the optimizer's state alone."),
                  Mistake(lambda n, b: 16 * b * n, "That is in bits; the answer is in bytes."))),
    Exercise(
        id="07.pareto_front", title="Pareto front",
        writes="pareto_front(options: list of {'name', 'cost', 'loss'}) -> list of names",
        cases=_pareto_cases, solution=S.pareto_front, unordered=True,
        hints=("Keep an option unless another one is at least as cheap *and* at least as good.",
               "o is dominated if some p has p.cost ≤ o.cost and p.loss ≤ o.loss, one "
               "strictly."),
        mistakes=(Mistake(lambda opts: [o["name"] for o in opts], "You kept every option; drop "
                          "those another option beats on both cost and loss."),
                  Mistake(lambda opts: [min(opts, key=lambda o: o["loss"])["name"]], "Only the "
                          "best-loss option: cheaper ones that nothing beats belong too."))),
]
