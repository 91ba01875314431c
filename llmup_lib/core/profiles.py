"""Named budgets: how big, how long, on what device.

Every notebook starts with ``profile = get_profile()``. The default, ``cpu``, is sized so each
notebook runs cold in under three minutes on two laptop cores (also Binder and CI); ``gpu`` is
for Colab and up. Pick one by argument or with the ``LLMUP_PROFILE`` environment variable.
"""

from __future__ import annotations

import os
import random
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch


@dataclass(frozen=True)
class Profile:
    name: str
    device: str  # "cpu", or "auto" = cuda when available
    base_size: str  # the model-family size used as the base model
    context: int  # tokens per training block
    batch_size: int  # blocks per optimizer step (the global batch)
    base_steps: int  # optimizer steps to pretrain the base model
    lr: float  # peak learning rate of the base recipe
    n_general: int  # general-corpus training documents
    n_domain: int  # domain-corpus training documents
    n_val: int  # validation documents per corpus
    seed: int = 0

    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def to_dict(self) -> dict:
        return asdict(self)


PROFILES = {
    "cpu": Profile(
        name="cpu", device="cpu", base_size="small", context=128, batch_size=16,
        base_steps=400, lr=3e-3, n_general=4000, n_domain=2000, n_val=200,
    ),
    "gpu": Profile(
        name="gpu", device="auto", base_size="medium", context=256, batch_size=64,
        base_steps=3000, lr=2e-3, n_general=40000, n_domain=20000, n_val=1000,
    ),
}

DEFAULT_PROFILE = "cpu"


def get_profile(name: str | None = None, **overrides) -> Profile:
    """The profile called ``name`` (default: ``$LLMUP_PROFILE`` or ``cpu``), with overrides."""
    name = name or os.environ.get("LLMUP_PROFILE") or DEFAULT_PROFILE
    if name not in PROFILES:
        valid = ", ".join(repr(p) for p in PROFILES)
        raise ValueError(f"Unknown profile {name!r}; choose one of {valid} "
                         "(argument or LLMUP_PROFILE).")
    return replace(PROFILES[name], **overrides)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) so a run can be repeated exactly."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
