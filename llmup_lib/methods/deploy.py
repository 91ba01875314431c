"""What deployment cares about: a model's size on disk, int8 dynamic quantization (a smaller
copy for the CPU), and batched generation throughput (a server's view; ``evaluate`` measures
one sequence at a time)."""

from __future__ import annotations

import io

import torch

from ..core.evaluate import generation_times


def file_size_mb(model) -> float:
    """Size of the model's weights serialized with ``torch.save`` (shared tensors once), in MB."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes / 1e6


def quantize_int8(model):
    """A copy of ``model`` whose linear layers hold int8 weights (PyTorch dynamic quantization:
    activations are quantized on the fly, per batch). CPU only."""
    import copy
    import warnings

    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated in favour of torchao
        return quantize_dynamic(copy.deepcopy(model).cpu().eval(), {torch.nn.Linear},
                                dtype=torch.qint8)


@torch.no_grad()
def generation_throughput(model, tokenizer, batch_size: int = 32, new_tokens: int = 64,
                          repeats: int = 3) -> dict:
    """Greedy decoding of ``batch_size`` sequences at once (a server's view): tokens/s over all
    sequences, and ms per decoding step. ``evaluate.generation_speed`` is batch 1.

    The fastest of ``repeats`` runs is reported (after one warm-up), as ``timeit`` advises: on a
    shared machine the slower runs measure the other processes, not the model."""
    times = generation_times(model, tokenizer, batch_size, new_tokens, repeats)
    best = min(times)
    return {"tokens_per_second": batch_size * new_tokens / best,
            "ms_per_step": 1000 * best / new_tokens}
