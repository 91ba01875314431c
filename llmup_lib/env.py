"""The environment check of notebook 00: what is installed, and what this machine has."""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version

PACKAGES = ["torch", "transformers", "tokenizers", "datasets", "accelerate", "peft",
            "matplotlib", "ipywidgets"]


def environment_report() -> dict:
    import torch

    from .core.profiles import get_profile

    report = {"python": platform.python_version(), "platform": platform.platform(terse=True)}
    for name in PACKAGES:
        try:
            report[name] = version(name)
        except PackageNotFoundError:
            report[name] = "MISSING: pip install -r requirements.txt"
    report["cpu cores"] = os.cpu_count()
    report["torch threads"] = torch.get_num_threads()
    report["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    report["profile"] = get_profile().name
    return report
