"""Command line: ``python -m llmup_lib {info,build-tokenizer,build-base}``."""

from __future__ import annotations

import argparse

from . import __version__


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m llmup_lib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="print the environment check of notebook 00")
    sub.add_parser("build-tokenizer", help="retrain the shipped BPE tokenizer in data/tokenizer")
    base = sub.add_parser("build-base", help="retrain the base model of a profile (data/base/)")
    base.add_argument("--profile", default=None, help="cpu (default) or gpu")
    args = parser.parse_args(argv)

    if args.command == "info":
        from .env import environment_report

        for key, value in environment_report().items():
            print(f"{key:>16}: {value}")
    elif args.command == "build-tokenizer":
        from .tokenizer import TOKENIZER_DIR, build_suite_tokenizer

        tok = build_suite_tokenizer()
        print(f"saved a {len(tok)}-token BPE to {TOKENIZER_DIR}")
    elif args.command == "build-base":
        from .base import save_base_model, train_base_model
        from .profiles import get_profile

        profile = get_profile(args.profile)
        result = train_base_model(profile)
        path = save_base_model(result, profile)
        print(f"saved the {profile.name} base model to {path} "
              f"({result.tokens_per_second:,.0f} tokens/s, val loss {result.final_val_loss:.4f})")
    print(f"llmup {__version__}")


if __name__ == "__main__":
    main()
