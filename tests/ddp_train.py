"""Trained by tests/test_train.py under torchrun with 1 or 2 CPU processes (gloo)."""

import json
import sys

from accelerate import Accelerator

from llmup_lib.core.models import build_model
from llmup_lib.core.train import TrainConfig, eval_loss, train
from tiny_data import tiny_data  # tests/, on the path as this script's folder

_, tok, train_b, val_b = tiny_data()  # the conftest fixtures' data

accelerator = Accelerator(cpu=True)
model = build_model("pico", tok, 32, seed=0)
initial = eval_loss(model, val_b, 8)
cfg = TrainConfig(steps=40, batch_size=8, lr=1e-2, progress=False, seed=0)
result = train(model, train_b, val_b, cfg, accelerator=accelerator)
final = eval_loss(result.model, val_b, 8)
if accelerator.is_main_process:
    json.dump({"world_size": accelerator.num_processes, "initial_val_loss": initial,
               "final_val_loss": final}, open(sys.argv[1], "w"))
