"""ipywidgets explorers. Each wraps a plain function that tests (and readers) can call directly."""

from __future__ import annotations

import sys
import textwrap
from importlib import metadata

from ..core.evaluate import generate


def ipywidgets_version() -> str | None:
    """The ipywidgets this kernel uses: the one already imported (a kernel not restarted after
    an upgrade keeps the old one), else the installed one; None when it is not installed."""
    loaded = getattr(sys.modules.get("ipywidgets"), "__version__", None)
    if loaded:
        return str(loaded)
    try:
        return metadata.version("ipywidgets")
    except metadata.PackageNotFoundError:
        return None


def validate_ipywidgets(version: str | None = None) -> None:
    """Refuse ipywidgets < 8 (Colab ships 7.x): JupyterLab 4 cannot render the older widgets."""
    version = ipywidgets_version() if version is None else version
    if version is not None and int(version.split(".")[0]) < 8:
        raise ImportError(
            f"llmup_lib.teaching.widgets needs ipywidgets 8 or newer (JupyterLab 4 renders no older "
            f"widgets), but this kernel has ipywidgets {version}; run "
            f"`pip install -U 'ipywidgets>=8'` and restart the kernel.")


validate_ipywidgets()


def explorer(show, **controls):
    """``ipywidgets.interactive(show, **controls)`` with a static fallback: ``show`` runs once at
    the controls' defaults first, into the cell's ordinary output, so a notebook rendered without
    a live kernel (on the web, in git) shows a result where the widget would be."""
    import ipywidgets as w

    defaults = {name: control.value for name, control in controls.items()}
    print(textwrap.fill("at the defaults (" + ", ".join(f"{k}={v!r}" for k, v in defaults.items())
                        + "); with a live kernel, change them below:", 100))
    show(**defaults)
    return w.interactive(show, **controls)


def sample_text(model, tokenizer, prompt: str, temperature: float, seed: int = 0,
                max_new_tokens: int = 40) -> str:
    """The plain-function path of ``sampling_explorer``: one sample at ``temperature``."""
    return prompt + generate(model, tokenizer, prompt, max_new_tokens, temperature=temperature,
                             top_k=None, seed=seed)


def sampling_explorer(model, tokenizer, prompt: str = "Once upon a time"):
    """Type a prompt, drag the temperature, and watch the continuation change."""
    import ipywidgets as w

    def show(prompt, temperature, seed):
        print(textwrap.fill(sample_text(model, tokenizer, prompt, temperature, seed), 100))

    return explorer(show, prompt=w.Text(value=prompt),
                    temperature=w.FloatSlider(value=0.8, min=0.1, max=2.0, step=0.1),
                    seed=w.IntSlider(value=0, min=0, max=9))


def lora_explorer(model, trainable_tokens=None):
    """Pick rank, alpha and targets; see trainable parameters and optimizer memory update."""
    import ipywidgets as w

    from ..methods.lora import ALL_LINEAR, lora_cost
    from ..methods.finetune import trainable_parameters

    full = trainable_parameters(model)["total"]  # what full fine-tuning would train
    choices = {"all linear layers": ALL_LINEAR, "attention q, v": ("q_proj", "v_proj"),
               "attention q, k, v, o": ("q_proj", "k_proj", "v_proj", "o_proj"),
               "MLP only": ("gate_proj", "up_proj", "down_proj")}

    def show(rank, alpha, targets):
        cost = lora_cost(model, rank, alpha, choices[targets], trainable_tokens)
        print(f"trainable: {cost['trainable']:,} of {cost['total']:,} ({cost['percent']:.2f}%)")
        print(f"AdamW state: {cost['adamw_measured_bytes'] / 2**10:,.0f} KiB measured "
              f"(full fine-tuning: {8 * full / 2**10:,.0f} KiB)")
        print(f"scale alpha/r = {alpha / rank:g}")

    return explorer(show, rank=w.IntSlider(value=4, min=1, max=64),
                    alpha=w.FloatSlider(value=8, min=1, max=128, step=1),
                    targets=w.Dropdown(options=list(choices)))
