"""Feasibility probe for the biography world (``llmup_lib.world.biographies``): is there a
capacity-limited regime at CPU scale?

Trains a few sizes on a pool of biographies and measures, for each: validation loss, the true
floor and the excess over it (nats/token), and a knowledge probe by frequency rank (how many
facts each model knows, as bits: ``max(0, log2 |values| + log2 q(true value))`` summed over
facts, q normalised over all values of the relation). Prints a table and writes JSON.

    python benchmarks/world_v2_probe.py --people 1000 --zipf 1.3 --tokens 2e6 \
        --sizes 2x32,2x64,4x128 --out probe.json

Run with OMP_NUM_THREADS=1 beside other work; numbers are for one core.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=1000)
    ap.add_argument("--zipf", type=float, default=1.3)
    ap.add_argument("--augmented", type=float, default=0.5)
    ap.add_argument("--events", type=int, default=2, help="max events per story (0: bios)")
    ap.add_argument("--tokens", type=str, default="2e6", help="comma-separated budgets")
    ap.add_argument("--sizes", default="2x32,2x64,4x128")
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--probe-people", type=int, default=200)
    ap.add_argument("--lr", type=float, default=None, help="one peak rate for every size "
                    "(default: the sweep's width rule)")
    ap.add_argument("--out", default="world_v2_probe.json")
    args = ap.parse_args()

    from llmup_lib.world import biographies as bio, knowledge
    from llmup_lib.core.evaluate import sequence_logprobs
    from llmup_lib.core.family import build_grid_model, parse_shape
    from llmup_lib.experiments.sweep import SweepRecipe
    from llmup_lib.core.tokenizer import pack_blocks, train_bpe
    from llmup_lib.core.train import TrainConfig, eval_loss, train

    t0 = time.perf_counter()
    world = bio.make_biography_world(n_people=args.people, zipf_exponent=args.zipf,
                                     augmented_share=args.augmented, max_events=args.events)
    budgets = [float(x) for x in args.tokens.split(",")]
    parts = knowledge.entropy_parts(world, 5000)
    tokens_per_doc_guess = parts["chars_per_doc"] / 3.5
    n_docs = int(max(budgets) / tokens_per_doc_guess * 1.15) + 500
    pool = bio.corpus("general", n_docs, 400, world=world)
    notes = bio.corpus("domain", 2000, 10, world=world)["train"]["text"]
    tok = train_bpe(list(pool["train"]["text"][:20000]) + list(notes), args.vocab)
    train_blocks = pack_blocks(list(pool["train"]["text"]), tok, args.context)
    val_blocks = pack_blocks(list(pool["validation"]["text"]), tok, args.context)[:128]
    val = pool["validation"]
    val_tokens = sum(len(x) + 1 for x in tok(list(val["text"]), add_special_tokens=False)["input_ids"])
    floor = sum(val["logprob_bits"]) * math.log(2) / val_tokens  # nats/token (EOS free: known)
    chars_per_token = sum(val["n_chars"]) / val_tokens
    stories = sum(1 for r in pool["train"]["person_rank"] if r > 0)
    pool_tokens = train_blocks.numel()
    note_ids = set(t for x in tok(list(notes), add_special_tokens=False)["input_ids"] for t in x)
    seen = set(train_blocks.flatten().tolist())
    note_stream = [t for x in tok(list(notes), add_special_tokens=False)["input_ids"] for t in x]
    coverage = sum(t in seen for t in note_stream) / len(note_stream)
    print(f"world: {args.people} people, zipf {args.zipf}; floor {floor:.4f} nats/token; "
          f"{chars_per_token:.2f} chars/token; pool {pool_tokens:,} tokens, {stories:,} stories; "
          f"domain token coverage {coverage:.4f} ({len(note_ids)} ids); "
          f"prepared in {time.perf_counter() - t0:.0f} s", flush=True)

    probe_ranks = np.unique(np.geomspace(1, args.people, args.probe_people).round().astype(int))
    facts = bio.facts(world, probe_ranks)
    recipe = SweepRecipe(context=args.context, batch_size=args.batch)
    rows = []
    for budget in budgets:
        steps = int(budget // (args.context * args.batch))
        for size in args.sizes.split(","):
            shape = parse_shape(size)
            model = build_grid_model(size, tok, args.context, seed=0)
            n_non_emb = sum(p.numel() for n, p in model.named_parameters() if "embed" not in n)
            lr = args.lr or recipe.lr(shape[1])
            cfg = TrainConfig(steps=steps, batch_size=args.batch, lr=lr,
                              warmup_steps=max(1, steps // 20), seed=0, progress=False,
                              log_every=max(1, steps // 5))
            t1 = time.perf_counter()
            model = train(model, train_blocks, None, cfg).model
            secs = time.perf_counter() - t1
            loss = eval_loss(model, val_blocks, 32)
            bits, known = _probe(model, tok, facts, bio, sequence_logprobs)
            row = {"size": size, "params": n_non_emb, "lr": lr, "tokens": steps * args.context * args.batch,
                   "val_loss": loss, "floor": floor, "excess": loss - floor, "seconds": secs,
                   "probe_ranks": probe_ranks.tolist(), "probe_bits": bits, "probe_known": known,
                   "stories_seen": stories * min(1.0, steps * args.context * args.batch
                                                 / pool_tokens)}
            rows.append(row)
            est_bits = _bits_estimate(probe_ranks, bits, args.people)
            first_unknown = next((int(k) for k, b in zip(probe_ranks, known) if b < 0.5), None)
            print(f"{size:>6} N={n_non_emb:>8,} D={row['tokens']:>9,}: loss {loss:.4f} excess "
                  f"{loss - floor:.4f}  bits stored ~{est_bits:,.0f} "
                  f"({est_bits / n_non_emb:.2f}/param)  first rank mostly unknown "
                  f"{first_unknown}  [{secs:.0f} s]", flush=True)
    meta = {"people": args.people, "zipf": args.zipf, "floor": floor,
            "chars_per_token": chars_per_token, "pool_tokens": pool_tokens,
            "stories": stories, "domain_token_coverage": coverage,
            "knowledge_bits_total": parts["knowledge_bits_total"],
            "min_exposures_at_pool": knowledge.min_exposures(world, stories)}
    with open(args.out, "w") as fh:
        json.dump({"meta": meta, "rows": rows}, fh, indent=1)


def _probe(model, tok, facts, bio, sequence_logprobs):
    """Per probed person: bits known (sum over relations) and the share of facts ranked first."""
    model.eval()
    prompts, conts, owner = [], [], []
    for i, f in enumerate(facts):
        for v in bio.VALUES[f["relation"]]:
            prompts.append(f["context"] + f["prompt"])
            conts.append(" " + v)
            owner.append(i)
    with torch.no_grad():
        scores = np.array(sequence_logprobs(model, tok, prompts, conts, batch_size=256))
    owner = np.array(owner)
    bits, top = np.zeros(len(facts)), np.zeros(len(facts))
    for i, f in enumerate(facts):
        s = scores[owner == i]
        values = bio.VALUES[f["relation"]]
        logq = s - np.logaddexp.reduce(s)
        j = values.index(f["object"])
        # information about the value, counted from 0: a confidently wrong guess is not
        # negative knowledge
        bits[i] = max(0.0, math.log2(len(values)) + logq[j] / math.log(2))
        top[i] = float(np.argmax(s) == j)
    per_person_bits = bits.reshape(-1, len(bio.RELATIONS)).sum(1)
    per_person_known = top.reshape(-1, len(bio.RELATIONS)).mean(1)
    return per_person_bits.tolist(), per_person_known.tolist()


def _bits_estimate(ranks, bits, n_people) -> float:
    """Total bits over all people, interpolating the probed ranks (log-spaced) over every rank."""
    all_ranks = np.arange(1, n_people + 1)
    return float(np.interp(all_ranks, ranks, bits).sum())


if __name__ == "__main__":
    main()
