"""The exercise grader: a learner writes a function, ``check(fn)`` runs it on hidden cases.

The cases are drawn from a seed that lives here, in the package, never in the notebook, so the
expected answers cannot be read off the page; the grader prints one line — correct, or "not yet"
with the kind of mistake it looks like and the first hint — and never the expected value.
``hint(id, tier)`` gives more: tier 1 a nudge, tier 2 the formula, tier 3 the reference solution
(from ``llmup_lib.exercises.solutions``). ``fill_solutions`` pastes the solutions into a notebook,
for a teacher's run.

This module is the machinery and imports no exercise: the exercises themselves (cases,
references, the mistakes each one recognises) are defined in ``bank_training`` and
``bank_upgrades`` and put into the registry here by ``bank`` (``register``), which the package
``llmup_lib.exercises`` imports first, so ``check`` always finds them. The dependency runs one
way: bank -> grader.
"""

from __future__ import annotations

import inspect
import numbers
import zlib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

# Mixed into every exercise's case seed. Changing it changes every hidden case.
_SALT = 0x11_16_2026


@dataclass(frozen=True)
class Mistake:
    """A typical wrong answer: ``fn`` computes it (same signature as the reference)."""
    fn: Callable
    message: str


@dataclass(frozen=True)
class Exercise:
    id: str                      # "06.kd_forward_kl": notebook number, then the function's name
    title: str                   # what the one-line verdict calls it
    writes: str                  # what the learner writes (for the docs and the type message)
    cases: Callable[[np.random.Generator], list[tuple]]  # hidden inputs, from a generator
    solution: Callable           # the reference in llmup_lib.exercises.solutions
    hints: tuple[str, str]       # tier 1 (a nudge) and tier 2 (the formula)
    expect: Callable | None = None  # the ground truth when it is not the solution (peft, distill)
    mistakes: tuple[Mistake, ...] = ()
    rtol: float = 1e-4
    atol: float = 1e-6
    validate: Callable[[Any], str | None] | None = None  # extra type check -> one sentence
    unordered: bool = False      # a list answer whose order does not matter
    explain: Callable[[tuple], str] | None = None  # a nudge for a failed case no mistake explains

    @property
    def notebook(self) -> str:
        return self.id.split(".")[0]

    @property
    def name(self) -> str:
        return self.id.split(".", 1)[1]

    def truth(self, *args):
        return (self.expect or self.solution)(*args)


# ----------------------------------------------------------------------------- the registry

_REGISTRY: dict[str, Exercise] = {}


def register(*items: Exercise) -> dict[str, Exercise]:
    """Add exercises to the registry that ``check`` and ``hint`` look them up in; returns them
    by id. Registering an id again replaces it (a reloaded bank module)."""
    added = {ex.id: ex for ex in items}
    _REGISTRY.update(added)
    return added


def exercises() -> dict[str, Exercise]:
    """Every registered exercise, by id (the package's ``bank`` registers them on import)."""
    return _REGISTRY


def get_exercise(exercise_id: str) -> Exercise:
    bank = exercises()
    if exercise_id not in bank:
        raise ValueError(f"No exercise {exercise_id!r}; the ids are {', '.join(sorted(bank))}.")
    return bank[exercise_id]


def _find_by_name(name: str) -> Exercise | None:
    return next((ex for ex in exercises().values() if ex.name == name), None)


def hidden_cases(exercise_id: str, seed: int | None = None) -> list[tuple]:
    """The cases ``check`` uses: drawn from the exercise's id and the package's salt (or
    ``seed``), so two runs agree and nothing in a notebook gives them away."""
    ex = get_exercise(exercise_id)
    base = zlib.crc32(exercise_id.encode())
    rng = np.random.default_rng([base, _SALT if seed is None else int(seed)])
    with torch.random.fork_rng(devices=[]):  # cases drawn with torch leave the user's RNG alone
        torch.manual_seed(int(rng.integers(2**31)))
        return ex.cases(rng)


# ----------------------------------------------------------------------------- comparing


def _is_number(x) -> bool:
    return isinstance(x, numbers.Number) and not isinstance(x, bool)


def _is_scalar(x) -> bool:
    if isinstance(x, (torch.Tensor, np.ndarray)):
        return x.ndim == 0 or x.size == 1 if isinstance(x, np.ndarray) else x.numel() == 1
    return _is_number(x)


def describe(x) -> str:
    """What ``x`` is, in the words of a type message: "a tensor of shape (4, 10)", "a float"."""
    if isinstance(x, torch.Tensor):
        return "a 0-d tensor" if x.ndim == 0 else f"a tensor of shape {tuple(x.shape)}"
    if isinstance(x, np.ndarray):
        return "a 0-d array" if x.ndim == 0 else f"an array of shape {x.shape}"
    if x is None:
        return "None (did the function forget to return?)"
    if isinstance(x, bool):
        return "a bool"
    if isinstance(x, numbers.Integral):
        return "an int"
    if isinstance(x, numbers.Real):
        return "a float"
    if isinstance(x, str):
        return "a string"
    if isinstance(x, (tuple, list)):
        return f"a {type(x).__name__} of {len(x)} item{'s' * (len(x) != 1)}"
    return f"a {type(x).__name__}"


def _as_array(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=float)


def _shape_problem(got, want) -> str | None:
    """One sentence when ``got`` is not even the right kind of thing; None when it is."""
    if _is_scalar(want) and not isinstance(want, (torch.Tensor, np.ndarray)) or \
            isinstance(want, (torch.Tensor, np.ndarray)) and np.ndim(_as_array(want)) == 0:
        if not _is_scalar(got):
            return f"expected a single number (a float or a 0-d tensor), got {describe(got)}."
        return None
    if isinstance(want, (torch.Tensor, np.ndarray)):
        shape = tuple(want.shape)
        kind = "a tensor" if isinstance(want, torch.Tensor) else "an array"
        if not isinstance(got, (torch.Tensor, np.ndarray)) or tuple(got.shape) != shape:
            return f"expected {kind} of shape {shape}, got {describe(got)}."
        return None
    if isinstance(want, tuple):
        if not isinstance(got, (tuple, list)) or len(got) != len(want):
            return f"expected a tuple of {len(want)} items, got {describe(got)}."
        for i, (g, w) in enumerate(zip(got, want)):
            problem = _shape_problem(g, w)
            if problem:
                return f"item {i} of the tuple: {problem}"
        return None
    if isinstance(want, list) and want and isinstance(want[0], str):
        return None if isinstance(got, (list, tuple)) else \
            f"expected a list of strings, got {describe(got)}."
    if isinstance(want, list):
        if isinstance(got, (torch.Tensor, np.ndarray)):
            got = got.tolist()
        if not isinstance(got, (list, tuple)) or len(got) != len(want):
            return f"expected a list of {len(want)} items, got {describe(got)}."
        return None
    if isinstance(want, str) and not isinstance(got, str):
        return f"expected a string, got {describe(got)}."
    return None


def _same(got, want, ex: Exercise) -> bool:
    """``got`` equals ``want`` within the exercise's tolerance (never raises)."""
    try:
        if isinstance(want, tuple):
            return len(got) == len(want) and all(_same(g, w, ex) for g, w in zip(got, want))
        if isinstance(want, str):
            return got == want
        if isinstance(want, list) and want and isinstance(want[0], str):
            got = list(got)
            return sorted(got) == sorted(want) if ex.unordered else got == want
        g, w = _as_array(got), _as_array(want)
        if w.ndim == 0 and g.size == 1:  # a one-element tensor is accepted as a number
            g = g.reshape(())
        return g.shape == w.shape and bool(np.allclose(g, w, rtol=ex.rtol, atol=ex.atol))
    except Exception:  # a learner's odd return value is "not the same", not a crash
        return False


def _fresh(arg):
    """A copy of a mutable input, so a learner's in-place edit cannot change the next check."""
    if isinstance(arg, torch.Tensor):
        return arg.clone()
    if isinstance(arg, np.ndarray):
        return arg.copy()
    if isinstance(arg, list):
        return [_fresh(a) for a in arg]
    if isinstance(arg, dict):
        return {k: _fresh(v) for k, v in arg.items()}
    return arg


def _one_line(error: Exception, limit: int = 120) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


# ----------------------------------------------------------------------------- grading


def _say(ex: Exercise, ok: bool, message: str) -> bool:
    print(f"{ex.title}: " + ("correct! " if ok else "not yet: ") + message)
    return ok


def _diagnose(ex: Exercise, failures: list[tuple[tuple, Any, Any]]) -> str:
    """The message of the first known mistake that reproduces every wrong answer."""
    for mistake in ex.mistakes:
        try:
            if all(_same(got, mistake.fn(*_fresh(list(args))), ex) for args, got, _ in failures):
                return mistake.message + " "
        except Exception:  # a mistake that cannot even run on this case does not match it
            continue
    try:
        if all(_same(got, -_as_array(want), ex) for _, got, want in failures):
            return "Your answers have the right size but the wrong sign. "
    except (TypeError, ValueError):  # not numbers: no sign to flip
        pass
    return ex.explain(failures[0][0]) + " " if ex.explain else ""


def grade(exercise_id: str, answer, seed: int | None = None) -> bool:
    """Run ``answer`` (the learner's function) on the exercise's hidden cases and print one
    line: correct, or not yet with a diagnosis and the tier-1 hint. Returns whether it passed."""
    ex = get_exercise(exercise_id)
    if not callable(answer):
        return _say(ex, False, f"expected a function ({ex.writes}), got {describe(answer)}.")
    cases = hidden_cases(exercise_id, seed)
    failures = []
    for args in cases:
        want = ex.truth(*_fresh(list(args)))
        try:
            got = answer(*_fresh(list(args)))
        except NotImplementedError:  # the exercise cell as the notebook ships it
            return _say(ex, False, "write your code in the exercise cell, run it, then run "
                        "this cell again.")  # one line of at most 120 characters
        except Exception as error:  # the learner's bug, reported in one line, not a traceback
            return _say(ex, False, f"your function raised {type(error).__name__} "
                        f"({_one_line(error)}) on a hidden case. Hint: {ex.hints[0]}")
        problem = _shape_problem(got, want) or (ex.validate(got) if ex.validate else None)
        if problem:  # a known mistake can change the shape (a missing EOS): name it if so
            known = _diagnose(ex, [(args, got, want)]) if ex.mistakes else ""
            return _say(ex, False, known + f"Hint: {ex.hints[0]}" if known else problem)
        if not _same(got, want, ex):
            failures.append((args, got, want))
    if not failures:
        return _say(ex, True, f"(all {len(cases)} hidden cases)")
    return _say(ex, False, f"{len(failures)} of {len(cases)} hidden cases differ. "
                f"{_diagnose(ex, failures)}Hint: {ex.hints[0]}")


def check(answer, exercise_id: str | None = None, seed: int | None = None) -> bool:
    """Grade a learner's function; the exercise is found by the function's name
    (``check(bits_per_char)``) unless ``exercise_id`` names it."""
    if exercise_id is None:
        ex = _find_by_name(getattr(answer, "__name__", ""))
        if ex is None:
            names = ", ".join(sorted(e.name for e in exercises().values()))
            print(f"check: no exercise is called {getattr(answer, '__name__', answer)!r}; name "
                  f"your function as the exercise asks ({names}) or pass exercise_id.")
            return False
        exercise_id = ex.id
    return grade(exercise_id, answer, seed)


def hint(exercise_id: str, tier: int = 1) -> str:
    """Print (and return) a hint: 1 a nudge, 2 the formula, 3 the reference solution."""
    ex = get_exercise(exercise_id)
    if tier not in (1, 2, 3):
        raise ValueError(f"tier={tier!r} must be 1 (a nudge), 2 (the formula) or 3 (the solution).")
    text = ex.hints[tier - 1] if tier < 3 else solution_source(exercise_id)
    print(text)
    return text


# ----------------------------------------------------------------------------- teacher mode

# What a filled-in cell imports so a solution runs in a notebook that never imported it.
_IMPORTS = {"math.": "import math", "np.": "import numpy as np", "torch.": "import torch",
            "F.": "import torch.nn.functional as F"}
YOUR_CODE_HERE = "# YOUR CODE HERE"


def solution_source(exercise_id: str) -> str:
    """The reference solution's source, with the imports it needs."""
    source = inspect.getsource(get_exercise(exercise_id).solution)
    imports = [line for key, line in _IMPORTS.items() if key in source]
    return "\n".join(imports + [""] * bool(imports) + [source.rstrip()])


def fill_solutions(notebook_path):
    """The notebook at ``notebook_path`` (an ``nbformat`` node, not written back) with every
    cell tagged ``exercise`` that still holds ``# YOUR CODE HERE`` replaced by the reference
    solution of its ``exercise_id`` (cell metadata). For a teacher's run of the whole suite."""
    import nbformat

    nb = nbformat.read(str(notebook_path), as_version=4)
    for index, cell in enumerate(nb.cells):
        if "exercise" not in cell.metadata.get("tags", []) or YOUR_CODE_HERE not in cell.source:
            continue
        exercise_id = cell.metadata.get("exercise_id")
        if exercise_id is None:
            raise ValueError(f"Cell {index} of {notebook_path} is tagged 'exercise' but has no "
                             "'exercise_id' in its metadata; add one such as '01.bits_per_char'.")
        cell.source = solution_source(exercise_id)
        cell.outputs, cell.execution_count = [], None
    return nb
