"""Notebook 06's students: the task the notebook runs and ``tune --task distill`` sweeps.

A small transfer set (``N_TRANSFER`` of the teacher's training blocks), the teacher's logits for
it computed once (``TeacherCache``), and one student per method (``DISTILL_SETTINGS``), trained
for ``STUDENT_STEPS`` steps by ``distill()`` at a learning rate and a batch order (``seed``).
The notebook and the tuning runner both train through ``train_student``, so a notebook run at
a sweep's rate and seed is that sweep's row: same student, recipe, data and settings.
"""

from __future__ import annotations

import time

import torch

from ..core.train import TrainConfig, TrainResult, eval_loss
from ..methods.distill import TeacherCache, distill, half_depth_student

STUDENT, STUDENT_STEPS, N_TRANSFER = "nano", 200, 96
# scratch / kd: the nano student without and with the teacher; kd-half / kd-half-init: half the
# teacher's layers at its width (DistilBERT's shape), from random weights or from the teacher's
# every other layer (DistilBERT's initialisation), both by logit KD; t4-with-t2 / t4-without-t2:
# notebook 06's T² experiment, the nano student at alpha 0.9 and T = 4 with and without the
# factor. Each method's distill() settings (the defaults: alpha 1, T 1, with T²):
DISTILL_SETTINGS = {"scratch": {"alpha": 0.0}, "kd": {}, "kd-half": {}, "kd-half-init": {},
                    "t4-with-t2": {"alpha": 0.9, "temperature": 4.0},
                    "t4-without-t2": {"alpha": 0.9, "temperature": 4.0, "t_squared": False}}
DISTILL_METHODS = tuple(DISTILL_SETTINGS)
# The T² experiment's seeds draw the student's initial weights as well as its batch order (a
# difference between two arms must survive both); the other methods keep one initialisation,
# the profile's seed, so their seeds vary the batch order only, as the shipped table's rows do.
SEEDED_INIT = ("t4-with-t2", "t4-without-t2")


def validate_method(method) -> str:
    if method not in DISTILL_METHODS:  # a tuple: an unhashable value is refused too
        raise ValueError(f"Unknown distillation method {method!r}; use one of "
                         f"{', '.join(DISTILL_METHODS)}.")
    return method


# ----------------------------------------------------------------------------- the data
def transfer_set(train_blocks: torch.Tensor, seed: int, n_blocks: int | None = None):
    """Notebook 06's transfer set: ``n_blocks`` (``N_TRANSFER``) of the teacher's training
    blocks, drawn by ``seed``."""
    n_blocks = N_TRANSFER if n_blocks is None else n_blocks
    order = torch.randperm(len(train_blocks), generator=torch.Generator().manual_seed(seed))
    return train_blocks[order[:n_blocks]]


def student_data(teacher, train_blocks, val_blocks, profile, tokenizer,
                 n_transfer: int | None = None) -> dict:
    """What every student run needs, from a loaded teacher and the general corpus's blocks: the
    teacher, the transfer set (``n_transfer`` blocks, default ``N_TRANSFER``, drawn by the
    profile's seed), its ``TeacherCache`` and the validation blocks."""
    transfer = transfer_set(train_blocks, profile.seed, n_transfer)
    return {"teacher": teacher, "transfer": transfer, "val": val_blocks,
            "cache": TeacherCache(teacher, transfer, progress=False), "tokenizer": tokenizer}


def distill_tuning_data(profile, tokenizer) -> dict:
    """``student_data`` for the profile's base model as the teacher, loaded once for a sweep,
    with the teacher's validation loss (``teacher_loss``) for the table."""
    from ..core.base import general_blocks, load_base_model

    teacher = load_base_model(profile, progress=False)
    train_blocks, val_blocks = general_blocks(profile, tokenizer)
    data = student_data(teacher, train_blocks, val_blocks, profile, tokenizer)
    data["teacher_loss"] = eval_loss(teacher, val_blocks, 16)
    return data


# ----------------------------------------------------------------------------- the students
def distill_student(method: str, data: dict, profile, init_seed: int | None = None):
    """A fresh student for ``method``, initialised by ``init_seed`` (default: the profile's
    seed, the same for every batch order, as in notebook 06)."""
    from ..core.models import build_model

    seed = profile.seed if init_seed is None else init_seed
    if not validate_method(method).startswith("kd-half"):
        model = build_model(STUDENT, data["tokenizer"], profile.context, seed=seed)
        return model.to(profile.torch_device())
    return half_depth_student(data["teacher"], from_teacher=method == "kd-half-init", seed=seed)


def student_config(profile, lr: float, seed: int, eval_every: int | None = None) -> TrainConfig:
    """Every student's recipe: ``STUDENT_STEPS`` steps of the profile's batch at peak rate
    ``lr``, batch order ``seed``, the validation loss on 16 batches every ``eval_every`` steps
    (default: once, at the end; evaluating more often does not change the training)."""
    return TrainConfig(steps=STUDENT_STEPS, batch_size=profile.batch_size, lr=lr, seed=seed,
                       eval_every=STUDENT_STEPS if eval_every is None else eval_every,
                       eval_batches=16, progress=False)


def train_student(method: str, lr: float, seed: int, data: dict, profile,
                  eval_every: int | None = None, **settings) -> TrainResult:
    """Distil a fresh ``method`` student on the transfer set from the cached teacher, with
    ``student_config``'s recipe and the method's ``DISTILL_SETTINGS``; ``settings`` override
    them (e.g. ``temperature=2.0``, ``divergence="reverse"``). ``seed`` sets the batch order, and
for the ``SEEDED_INIT`` methods the initial weights too."""
    settings = {"alpha": 1.0, "temperature": 1.0, **DISTILL_SETTINGS[validate_method(method)],
                **settings}
    student = distill_student(method, data, profile, seed if method in SEEDED_INIT else None)
    return distill(student, data["cache"], data["transfer"], data["val"],
                   student_config(profile, lr, seed, eval_every), **settings)


def distill_tune_run(method: str, lr: float, seed: int, data: dict, profile) -> dict:
    """Train one notebook-06 student (``method``, rate, batch-order ``seed``) and score it."""
    start = time.perf_counter()
    result = train_student(method, lr, seed, data, profile)
    return {"method": method, "lr": lr, "seed": seed, "steps": STUDENT_STEPS,
            "val_loss": result.final_val_loss,
            "train_seconds": round(time.perf_counter() - start, 1)}
