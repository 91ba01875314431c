"""Driven by tests/test_resume.py: train the pico model with a checkpoint every 10 steps.

    python tests/resume_train.py CKPT_DIR OUT.pt [distill]

With ``distill`` the run is a distillation instead (``distill()`` with a live ``nano`` teacher,
α = 0.5, T = 2), the same loop through ``train()``'s loss hook.

With ``LLMUP_TEST_PAUSE_AT_STEP=N`` the run stops for good *inside* ``save_checkpoint`` of step
N, right after ``optimizer.pt`` is written and before ``trainer_state.json`` and the manifest,
and writes ``OUT.pt.paused``: the parent then kills it (SIGKILL) at exactly that point, so the
test does not depend on timing. Without it the run trains (resuming if it can) to the end and
saves the final weights, the loss history and the step it resumed from in ``OUT.pt``.
"""

import os
import signal
import sys
from pathlib import Path

import torch

import llmup_lib.core.train as T
from llmup_lib.core.models import build_model
from tiny_data import tiny_data  # tests/, on the path as this script's folder

torch.set_num_threads(1)
ckpt_dir, out = sys.argv[1], Path(sys.argv[2])

_, tok, train_b, val_b = tiny_data()  # the conftest fixtures' data

pause = int(os.environ.get("LLMUP_TEST_PAUSE_AT_STEP", "0"))
if pause:
    real_save = torch.save

    def save_then_stop(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        if Path(f).name == "optimizer.pt" and Path(f).parent.name == f".tmp-step-{pause:06d}":
            Path(f"{out}.paused").write_text(str(os.getpid()))
            while True:  # wait here to be killed
                signal.pause()
    torch.save = save_then_stop

resumed_from = []
real_load = T.load_checkpoint


def recording_load(*args, **kwargs):
    step, history = real_load(*args, **kwargs)
    resumed_from.append(step)
    return step, history


T.load_checkpoint = recording_load
cfg = T.TrainConfig(steps=30, batch_size=8, lr=1e-2, log_every=5, progress=False, seed=1,
                    checkpoint_dir=ckpt_dir, checkpoint_every=10)
if sys.argv[3:] == ["distill"]:
    from llmup_lib.methods.distill import distill

    result = distill(build_model("pico", tok, 32, seed=0), build_model("nano", tok, 32, seed=1),
                     train_b, val_b, cfg, alpha=0.5, temperature=2.0)  # as in test_resume.py
else:
    result = T.train(build_model("pico", tok, 32, seed=0), train_b, val_b, cfg)
torch.save({"state_dict": result.model.state_dict(), "history": result.history,
            "resumed_from": resumed_from[0]}, out)
