"""The exercises of notebooks 00–07, registered with the grader: what ``check(fn)`` grades.

Each exercise (``grader.Exercise``) has hidden cases, a ground truth, hints and recognised
mistakes; each ``Mistake`` is a small wrong implementation (the one learners really write), and
when it reproduces every wrong answer the grader names it. The ground truth is the package's own
implementation where one exists (``distill.forward_kl``, ``ChinchillaLaw.optimal``,
``instructions.instruction_rows``, ``peft``'s LoRA layer), so a reference solution that drifted
from the package would fail its own test.

The exercises live by notebook in ``bank_training`` (00–04) and ``bank_upgrades`` (05–07); the
package ``llmup_lib.exercises`` imports this module, so they are registered before any check.
"""

from __future__ import annotations

from .bank_training import EX00, EX01, EX02, EX03, EX04
from .bank_upgrades import EX05, EX06, EX07
from .grader import register

EXERCISES = register(*EX00, *EX01, *EX02, *EX03, *EX04, *EX05, *EX06, *EX07)
