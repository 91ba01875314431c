"""The base model: pretrained on the general corpus, the starting point of every upgrade.

Notebook 01 trains it from scratch in about a minute and a half. Later notebooks must open cold
within their own budget, so the ``cpu`` profile's checkpoint is shipped in ``llmup_lib/data/base/cpu``
(under 4 MB) and ``python -m llmup_lib build-base`` rebuilds it with this exact recipe; notebook
01 checks that its rebuild matches the shipped one. Notebook 07's scaling option, a larger model
pretrained on more data (``LARGER``), is shipped too (``llmup_lib/data/base/cpu_larger``, float16 weights,
made by ``build-base --larger --half``). Other profiles train once into the cache folder,
``store.cache_dir()`` (cache-or-train), since their checkpoints are too large to ship.
"""

from __future__ import annotations

import copy
import shutil
import warnings
from pathlib import Path

import torch

from .corpora import load_corpus
from .models import build_model, load_model
from .profiles import Profile, get_profile
from .tokenizer import load_tokenizer, pack_blocks
from .train import TrainConfig, TrainResult, eval_loss, train
from ..store import (DATA_DIR, atomic_folder, cache_dir, digest, manifest_damage, read_json,
                     write_json, write_manifest)

SHIPPED = {"cpu"}  # profiles whose base checkpoints live in llmup_lib/data/base/
# Notebook 07's scaling option, "a larger pretrained model": the next family size up, pretrained
# on three times the stories for three times the steps at the family's rate rule (0.384 / width),
# as a larger checkpoint comes with a larger pretraining run. Made by `build-base --larger`.
LARGER = {"cpu": {"base_size": "base", "base_steps": 1200, "n_general": 12000, "lr": 2e-3},
          "gpu": {"base_size": "large", "base_steps": 9000, "n_general": 120000, "lr": 1e-3}}
WORLD_VERSION = "1+health"  # world.py: stories and a tenth of health text (shared vocabulary)
# Profile values that do not change the base model (device: same recipe, another chip).
_NOT_IN_BASE_RECIPE = ("name", "device", "n_domain")


def vocab_digest(tokenizer) -> str:
    """A short hash of a tokenizer's vocabulary (token -> id)."""
    return digest(tokenizer.get_vocab())


def base_recipe_key(profile: Profile, tokenizer=None) -> str:
    """A short hash of everything that makes the base model: the profile's model, data and
    training values, the tokenizer's vocabulary and the world version. Caches are keyed by it,
    not by the profile's name, so ``get_profile("cpu", context=256)`` trains a model of its own
    instead of silently reusing the shipped 128-token one."""
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer()
    values = {k: v for k, v in profile.to_dict().items() if k not in _NOT_IN_BASE_RECIPE}
    return digest({"profile": values, "vocab": vocab_digest(tokenizer), "world": WORLD_VERSION})


def larger_base_profile(profile: Profile) -> Profile:
    """The recipe of notebook 07's larger pretrained model for ``profile``'s name."""
    return get_profile(profile.name, **LARGER[profile.name])


def _same_recipe(a: Profile, b: Profile) -> bool:
    return all(getattr(a, k) == getattr(b, k) for k in b.to_dict() if k not in _NOT_IN_BASE_RECIPE)


def _shipped_name(profile: Profile) -> str | None:
    """The folder in llmup_lib/data/base/ that holds this profile's base model, or None when its recipe
    (overrides included) is not a shipped one: ``<name>`` for the profile's own base,
    ``<name>_larger`` for notebook 07's larger pretrained model."""
    if profile.name not in SHIPPED:
        return None
    if _same_recipe(profile, get_profile(profile.name)):
        return profile.name
    if _same_recipe(profile, larger_base_profile(profile)):
        return f"{profile.name}_larger"
    return None


def _is_shipped(profile: Profile) -> bool:
    """The profile's recipe is one shipped in llmup_lib/data/base/."""
    return _shipped_name(profile) is not None


def base_dir(profile: Profile, tokenizer=None) -> Path:
    """``llmup_lib/data/base/<name>`` (or ``<name>_larger``) for a shipped recipe; otherwise
    ``$LLMUP_CACHE/base/<name>-<recipe key>``."""
    if _is_shipped(profile):
        return DATA_DIR / "base" / _shipped_name(profile)
    return cache_dir() / "base" / f"{profile.name}-{base_recipe_key(profile, tokenizer)}"


def base_recipe(profile: Profile) -> TrainConfig:
    return TrainConfig(steps=profile.base_steps, batch_size=profile.batch_size, lr=profile.lr,
                       seed=profile.seed, eval_every=max(1, profile.base_steps // 10),
                       eval_batches=4)


def general_blocks(profile: Profile, tokenizer):
    """Training and validation blocks of the general corpus, as the base model saw them."""
    corpus = load_corpus("general", n_train=profile.n_general, n_val=profile.n_val,
                         seed=profile.seed)
    return (pack_blocks(corpus["train"]["text"], tokenizer, profile.context),
            pack_blocks(corpus["validation"]["text"], tokenizer, profile.context))


def train_base_model(profile: Profile | None = None, progress: bool = True) -> TrainResult:
    """Pretrain the profile's base model from scratch (the recipe notebook 01 runs)."""
    profile = profile or get_profile()
    tokenizer = load_tokenizer()
    train_blocks, val_blocks = general_blocks(profile, tokenizer)
    model = build_model(profile.base_size, tokenizer, profile.context, seed=profile.seed)
    cfg = base_recipe(profile)
    cfg.progress = progress
    return train(model, train_blocks, val_blocks, cfg)


def save_base_model(result: TrainResult, profile: Profile, path: Path | None = None,
                    half: bool = False) -> Path:
    """Save the model and the validation loss a rebuild must match. ``half`` stores float16
    weights (half the file); the loss recorded is the one of the weights as stored."""
    path = Path(path or base_dir(profile))
    model = copy.deepcopy(result.model).half() if half else result.model
    with atomic_folder(path) as tmp:  # a crash leaves the old model or none, never half of one
        model.save_pretrained(tmp)
        model = model.float()  # in memory as the weights were stored (rounded to float16)
        tokenizer = load_tokenizer()
        _, val_blocks = general_blocks(profile, tokenizer)
        metrics = {"profile": profile.name, "base_size": profile.base_size,
                   "val_loss": eval_loss(model, val_blocks, 32),
                   "steps": profile.base_steps, "recipe_key": base_recipe_key(profile, tokenizer)}
        write_json(tmp / "base_metrics.json", metrics)
        write_manifest(tmp)  # last: a folder with a valid manifest is whole
    return path


def shipped_metrics(profile: Profile | None = None) -> dict:
    profile = profile or get_profile()
    return read_json(base_dir(profile) / "base_metrics.json", what="base model's metrics file")


def load_base_model(profile: Profile | None = None, progress: bool = True):
    """The profile's base model: the shipped or cached checkpoint, trained first if missing."""
    profile = profile or get_profile()
    tokenizer = load_tokenizer()
    path, shipped = base_dir(profile, tokenizer), _is_shipped(profile)
    if shipped and (path / "config.json").exists():
        recorded = shipped_metrics(profile).get("recipe_key")
        if recorded != base_recipe_key(profile, tokenizer):
            raise ValueError(f"The shipped base model in {str(path)!r} was built with another "
                             f"recipe (key {recorded!r}: another tokenizer or world); run "
                             "`python -m llmup_lib build-base` to rebuild it.")
    if not shipped and (path / "config.json").exists():
        # A cached (not shipped) model carries checksums: a corrupt one is retrained, not used.
        problem = manifest_damage(path)
        try:
            if problem is None:
                return load_model(path, dtype=torch.float32).to(profile.torch_device())
        except ValueError:
            problem = "unreadable"
        warnings.warn(f"The cached base model in {str(path)!r} is corrupt ({problem}); "
                      "retraining it.", stacklevel=2)
        shutil.rmtree(path, ignore_errors=True)
    if not (path / "config.json").exists():
        if shipped:
            raise FileNotFoundError(f"The shipped base model is missing from {path}; run "
                                    "`python -m llmup_lib build-base` to rebuild it.")
        save_base_model(train_base_model(profile, progress), profile, path)
    return load_model(path, dtype=torch.float32).to(profile.torch_device())
