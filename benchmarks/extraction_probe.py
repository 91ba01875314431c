"""Knowledge extraction with and without augmented phrasings (Allen-Zhu & Li, Physics of LMs 3.1).

Two base models are pretrained from scratch on World v2 biographies of the same people with the
same facts: in one every person's facts are always stated in one template and one order
(``augmented_share=0``), in the other in four templates, in any order (``augmented_share=1``).
Each is then instruction-tuned (full fine-tuning, prompt masked) on questions about half of the
people, and asked about the other half: held-out exact match says whether pretraining stored the
facts in a form a question can reach.

    python benchmarks/extraction_probe.py --people 200 --steps 1500 --out extraction.json
    python benchmarks/extraction_probe.py --pronouns --arms 0 --out extraction_pronouns.json

Every fact sentence of world_v2 names its subject, which is itself one of the paper's
augmentations ("fullname"); ``--pronouns`` names single-phrasing people in the intro only, as
the paper's bioS does (augmented people keep the name, so the augmented arm is unchanged).

This is a feasibility probe for notebook 04 (issue: honest comparisons), not part of the test
run. It prints, and writes to ``--out``, per arm: the pretraining loss, the fact probe on
every person (multiple choice over a relation's values), and trained / held-out exact match.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from llmup_lib import world_v2
from llmup_lib.evaluate import fact_accuracy
from llmup_lib.finetune import answer_questions, full_finetune_model, instruction_rows
from llmup_lib.models import build_model
from llmup_lib.tokenizer import load_tokenizer, pack_blocks
from llmup_lib.train import TrainConfig, train


def exact_match(model, tokenizer, rows, limit: int) -> float:
    rows = rows.select(range(min(limit, len(rows))))
    answers = answer_questions(model, tokenizer, rows["question"], 24)
    return sum(a == r for a, r in zip(answers, rows["response"])) / len(rows)


def arm(augmented: float, args, tokenizer) -> dict:
    world = world_v2.make_world_v2(seed=args.seed, n_people=args.people, zipf_exponent=1e-3,
                                   augmented_share=augmented, health_share=0.0, max_events=0,
                                   pronouns=args.pronouns)
    bios = world_v2.corpus("general", n_train=args.docs, n_val=200, seed=args.seed, world=world)
    train_blocks = pack_blocks(bios["train"]["text"], tokenizer, args.context)
    val_blocks = pack_blocks(bios["validation"]["text"], tokenizer, args.context)
    model = build_model(args.size, tokenizer, args.context, seed=args.seed)
    start = time.perf_counter()
    pre = train(model, train_blocks, val_blocks,
                TrainConfig(steps=args.steps, batch_size=16, lr=args.lr, seed=args.seed,
                            eval_every=args.steps, eval_batches=8, progress=False))
    pretrain_s = time.perf_counter() - start
    probe = fact_accuracy(pre.model, tokenizer, world_v2.facts(world))["accuracy"]
    qa = world_v2.instruction_set(world, n_people=args.people, seed=args.seed)
    rows = instruction_rows(tokenizer, qa["train"]["question"], qa["train"]["response"])
    tuned = train(full_finetune_model(pre.model), rows, None,
                  TrainConfig(steps=args.it_steps, batch_size=32, lr=args.it_lr, seed=args.seed,
                              progress=False)).model
    out = {"augmented_share": augmented, "pronouns": args.pronouns,
           "pretrain_val_loss": pre.final_val_loss,
           "pretrain_seconds": round(pretrain_s), "tokens": args.steps * 16 * args.context,
           "exposures_per_person": len(bios["train"]) / args.people,
           "probe_all_people": probe,
           "em_trained": exact_match(tuned, tokenizer, qa["train"], args.eval_rows),
           "em_heldout": exact_match(tuned, tokenizer, qa["test"], args.eval_rows)}
    print(json.dumps(out), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--people", type=int, default=200)
    ap.add_argument("--docs", type=int, default=40_000, help="biographies to pretrain on")
    ap.add_argument("--size", default="small")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--it-steps", type=int, default=150)
    ap.add_argument("--it-lr", type=float, default=1e-3)
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--eval-rows", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--arms", default="0,1", help="augmented shares to compare")
    ap.add_argument("--pronouns", action="store_true",
                    help="single-phrasing people named in the intro only, then 'They' (bioS)")
    ap.add_argument("--out", default="extraction_probe.json")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    tokenizer = load_tokenizer()
    results = [arm(float(a), args, tokenizer) for a in args.arms.split(",")]
    with open(args.out, "w") as fh:
        json.dump({"args": vars(args), "arms": results}, fh, indent=1)


if __name__ == "__main__":
    main()
