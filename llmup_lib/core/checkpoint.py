"""Checkpoints: atomic folders with checksums, and exact resume.

A checkpoint is ``step-NNNNNN/``: the model (``config.json`` and ``model.safetensors`` under the
names of ``model.state_dict()``, so any architecture resumes; a PEFT model's adapter through
``save_pretrained``), ``optimizer.pt``,
``trainer_state.json`` and, written last, ``manifest.json`` with the size and SHA-256 of every
other file. It is written into ``.tmp-step-NNNNNN/`` and renamed only when complete, so a crash
(even SIGKILL) leaves either no new folder or a whole one.

At resume every file is checked against the manifest. A truncated or corrupt checkpoint is
never loaded: the loader warns and falls back to the newest *intact* one (the resumed run is
still exact, because batches are a function of the step and the RNG state is saved), and
raises one clear error when no intact checkpoint is left. A corrupt folder is left in place
(nothing is deleted for you); it is overwritten when training passes that step again.
"""

from __future__ import annotations

import errno
import json
import shutil
import warnings
from pathlib import Path

import torch

from ..store import (ManifestProblem, atomic_folder, inspect_manifest, write_json, write_manifest,
                     write_text)


def _latest(ckpt_dir: Path) -> Path | None:
    pointer = ckpt_dir / "latest"
    return ckpt_dir / pointer.read_text().strip() if pointer.exists() else None


def _step_dirs(ckpt_dir: Path) -> list[Path]:
    """Finished checkpoint folders, newest first (``step-NNNNNN`` sorts by step)."""
    if not ckpt_dir.is_dir():
        return []
    return sorted((p for p in ckpt_dir.glob("step-*") if p.is_dir()), reverse=True)


def save_checkpoint(ckpt_dir, model, optimizer, cfg, step: int, history,
                    loss_recipe: dict | None = None) -> Path:
    """Write ``step-NNNNNN/`` atomically: into a temp folder, checksummed, renamed only once
    complete, then the ``latest`` pointer is replaced. A crash at any moment leaves the previous
    one intact; a failed write (disk full) removes the partial folder and says so."""
    ckpt_dir = Path(ckpt_dir)
    name = f"step-{step:06d}"
    final = ckpt_dir / name
    try:
        with atomic_folder(final) as tmp:  # .tmp-step-NNNNNN/, renamed to step-NNNNNN/ when whole
            _save_model(model, tmp)
            torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
            state = {"step": step, "recipe": cfg.recipe(), "loss_recipe": loss_recipe,
                     "history": history,
                     "model_config": model.config.to_diff_dict(),
                     "rng": torch.get_rng_state().tolist()}
            write_json(tmp / "trainer_state.json", state, indent=None)
            write_manifest(tmp)  # last: a folder with a valid manifest is a whole checkpoint
    except OSError as err:
        shutil.rmtree(ckpt_dir / f".tmp-{name}", ignore_errors=True)
        code = err.errno if err.errno is not None else (err.args[0] if err.args and
                                                       isinstance(err.args[0], int) else None)
        why = "no space left on device" if code == errno.ENOSPC else (err.strerror or str(err))
        previous = _latest(ckpt_dir)
        kept = (f"the previous checkpoint {str(previous)!r} is intact" if previous
                else "no earlier checkpoint exists")
        raise OSError(code, f"Could not write checkpoint {str(final)!r} ({why}); {kept}. Free "
                      "disk space or set checkpoint_dir to a disk with room, then run again to "
                      "resume.") from err
    write_text(ckpt_dir / "latest", name)
    old = sorted(p for p in ckpt_dir.glob("step-*") if p.is_dir())[:-cfg.keep_checkpoints]
    for path in old:
        shutil.rmtree(path, ignore_errors=True)
    return final


def _save_model(model, folder: Path) -> None:
    """The weights under ``model.state_dict()``'s own names, a tied tensor once (under its first
    name, the input embedding, as ``save_pretrained`` keeps it), and ``config.json``; the folder
    still loads with ``from_pretrained``. Not ``save_pretrained``: transformers 5 renames some
    weights as it saves (GPT-NeoX's ``lm_head`` is written as ``embed_out``), and a resume reading
    the file back with ``load_state_dict`` would not find them."""
    if _is_peft(model):
        model.save_pretrained(folder)  # the adapter alone; the frozen base is rebuilt
        return
    from safetensors.torch import save_file

    tensors, seen = {}, set()
    for name, value in model.state_dict().items():
        if _storage(value) not in seen:
            seen.add(_storage(value))
            tensors[name] = value.detach().cpu().contiguous()  # safetensors writes from host memory
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    model.config.save_pretrained(folder)


def _storage(tensor: torch.Tensor) -> tuple:
    return tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape)


def _missing(model, weights: dict) -> list[str]:
    """``model``'s weights that ``weights`` lacks (a tied one only when none of its names is
    there)."""
    present = {_storage(value) for name, value in model.state_dict().items() if name in weights}
    return [name for name, value in model.state_dict().items()
            if name not in weights and _storage(value) not in present]


def _read_checkpoint(path: Path) -> tuple[dict, dict, dict]:
    state = json.loads((path / "trainer_state.json").read_text())
    from safetensors.torch import load_file

    # a PEFT model's save_pretrained writes only its adapter (the frozen base is rebuilt)
    weights_file = path / "model.safetensors"
    if not weights_file.exists() and (path / "adapter_model.safetensors").exists():
        weights_file = path / "adapter_model.safetensors"
    weights = load_file(str(weights_file))
    optim_state = torch.load(path / "optimizer.pt", weights_only=True)
    return state, weights, optim_state


def _is_peft(model) -> bool:
    try:
        from peft import PeftModel
    except ImportError:
        return False
    return isinstance(model, PeftModel)


# Config keys that do not change the model's weights or its function: a resume ignores them.
_NOT_ARCHITECTURE = {"transformers_version", "_name_or_path", "torch_dtype", "dtype", "use_cache",
                     "_attn_implementation_autoset", "output_attentions", "output_hidden_states",
                     "return_dict", "architectures"}


def _refuse_misfit(path: Path, model, weights: dict) -> None:
    """Refuse, before loading anything, weights whose names or shapes do not fit ``model`` (a
    tied tensor is saved once, so its other name may be absent)."""
    if _is_peft(model):
        return  # peft maps adapter names itself; its loader reports what does not fit
    own = model.state_dict()
    missing = _missing(model, weights)
    unexpected = [k for k in weights if k not in own]
    shapes = [k for k in weights if k in own and tuple(weights[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        raise ValueError(f"Checkpoint {str(path)!r} does not fit this model (missing {missing[:3]}"
                         f", unexpected {unexpected[:3]}, other shapes {shapes[:3]}); build the "
                         "same model to resume, or use a new checkpoint_dir.")


def load_checkpoint(ckpt_dir, model, optimizer, cfg,
                    loss_recipe: dict | None = None) -> tuple[int, list]:
    """Restore the newest intact checkpoint in ``ckpt_dir`` into ``model``/``optimizer``; returns
    ``(step, history)``, or ``(0, [])`` when there is none. Corrupt ones are skipped with a
    warning (see above); refuses a different recipe, loss recipe or model."""
    ckpt_dir = Path(ckpt_dir)
    skipped = []
    for path in _step_dirs(ckpt_dir):
        problem = None
        try:
            inspect_manifest(path)
        except ManifestProblem as err:
            if err.kind == "missing":  # written before checksums: load, but say so
                warnings.warn(f"Checkpoint {str(path)!r} has no checksums (written by an older "
                              "llmup), so it is loaded unverified.", stacklevel=3)
            else:
                problem = err.detail
        if problem is None:
            try:
                state, weights, optim_state = _read_checkpoint(path)
            except Exception as err:
                problem = f"unreadable {type(err).__name__}"
        if problem is not None:
            skipped.append((path, problem))
            continue
        break
    else:
        if not skipped:
            return 0, []
        path, problem = skipped[0]
        raise ValueError(f"Checkpoint {str(path)!r} is unreadable ({problem}) and no earlier "
                         f"intact checkpoint is in {str(ckpt_dir)!r}; delete that folder to "
                         "start over, or pass a new checkpoint_dir.")
    if skipped:
        bad = ", ".join(f"{str(p)!r} ({why})" for p, why in skipped)
        warnings.warn(f"Skipping corrupt checkpoint {bad}; resuming from the previous intact "
                      f"one, {str(path)!r}. The corrupt folder is kept and will be overwritten "
                      "when training passes its step again.", stacklevel=3)
    for key, saved in state["recipe"].items():
        now = cfg.recipe()[key]
        if saved != now:
            raise ValueError(f"Checkpoint {str(path)!r} was trained with {key}={saved!r}, not "
                             f"{now!r}; use the same recipe to resume, or a new checkpoint_dir.")
    saved_loss = state.get("loss_recipe")  # absent in checkpoints of plain train() runs
    if saved_loss != loss_recipe:
        plain = "next-token cross-entropy"
        raise ValueError(f"Checkpoint {str(path)!r} was trained with the loss "
                         f"{saved_loss or plain}, not {loss_recipe or plain}; use the same loss "
                         "to resume, or a new checkpoint_dir.")
    now_config = model.config.to_diff_dict()
    named_first = ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size",
                   "intermediate_size")  # the usual differences, named first; then every key
    for key in [*named_first, *sorted(set(state["model_config"]) | set(now_config))]:
        if key in _NOT_ARCHITECTURE:
            continue
        if state["model_config"].get(key) != now_config.get(key):
            raise ValueError(f"Checkpoint {str(path)!r} holds a model with {key}="
                             f"{state['model_config'].get(key)}, not {now_config.get(key)}; "
                             "build the same model to resume, or use a new checkpoint_dir.")
    _refuse_misfit(path, model, weights)  # before anything is loaded: a refusal changes nothing
    if _is_peft(model):  # peft maps the adapter's names itself and reports what did not fit
        from peft import set_peft_model_state_dict

        unexpected = set_peft_model_state_dict(model, weights).unexpected_keys
        if unexpected:
            raise ValueError(f"Checkpoint {str(path)!r} does not fit this model (unexpected "
                             f"{unexpected[:3]}); use a new checkpoint_dir.")
    else:  # names and shapes were checked by _refuse_misfit, tied tensors included
        model.load_state_dict(weights, strict=False)
    optimizer.load_state_dict(optim_state)
    torch.set_rng_state(torch.tensor(state["rng"], dtype=torch.uint8))
    return state["step"], state["history"]
