"""Trained by tests/test_train.py under torchrun with 1 or 2 CPU processes (gloo)."""

import json
import random
import sys

import torch
from accelerate import Accelerator

from llmup_lib.models import build_model
from llmup_lib.tokenizer import char_tokenizer, pack_blocks
from llmup_lib.train import TrainConfig, eval_loss, train

rng = random.Random(0)
words = "the cat sat on a mat and a dog ran to the park with a red ball".split()
texts = [" ".join(rng.choice(words) for _ in range(40)) + "." for _ in range(120)]
tok = char_tokenizer(texts)
blocks = pack_blocks(texts, tok, 32)
train_b, val_b = blocks[:-16], blocks[-16:]

accelerator = Accelerator(cpu=True)
model = build_model("pico", tok, 32, seed=0)
initial = eval_loss(model, val_b, 8)
cfg = TrainConfig(steps=40, batch_size=8, lr=1e-2, progress=False, seed=0)
result = train(model, train_b, val_b, cfg, accelerator=accelerator)
final = eval_loss(result.model, val_b, 8)
if accelerator.is_main_process:
    json.dump({"world_size": accelerator.num_processes, "initial_val_loss": initial,
               "final_val_loss": final}, open(sys.argv[1], "w"))
