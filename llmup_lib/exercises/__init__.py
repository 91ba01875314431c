"""Graded exercises: ``check(fn)`` grades a learner's function on hidden cases, ``hint(id, tier)``
helps (``grader``); the exercises themselves are registered by ``bank``, imported here first.

Imports run one way: bank -> bank_training, bank_upgrades -> grader, solutions; values -> grader.
"""

from . import bank  # noqa: F401  (registers every exercise with the grader)
from .grader import check, hint

__all__ = ["check", "hint"]
