"""
Talk to the models: one prompt, every stage's reply side by side.

    python -m gpt_mini.chat --prompt "I think Rurair lives in Lima."   # one prompt, all stages found in runs/
    python -m gpt_mini.chat                                            # interactive: type, see every stage answer
    python -m gpt_mini.chat --models runs/sft runs/rlvr --temperature 0.8

A pretrained model has never seen the chat template, so it is shown continuing
your text as plain text; the others answer inside the assistant turn.
"""

import argparse
import os
import sys

import torch

from .checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from .sampling import chat_replies, complete
from .tokenizer import load_tokenizer

DEFAULT_MODELS = ["runs/pretrain", "runs/sft", "runs/dpo/beta-0.1", "runs/rlvr"]


def load_models(paths, device):
    models = []
    for path in paths:
        try:
            state = load_checkpoint(path, device=device)
        except CheckpointError as e:
            print(f"skipping {path}: {e}", file=sys.stderr)
            continue
        models.append((path, state["stage"], model_from_checkpoint(state, device).eval()))
    return models


def replies(models, enc, prompt, temperature, max_new_tokens, seed=0):
    out = []
    for path, stage, model in models:
        g = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
        if stage == "pretrain":
            text = complete(model, enc, [prompt], max_new_tokens=max_new_tokens)[0]
        else:
            text = chat_replies(model, enc, [prompt], max_new_tokens, temperature, generator=g)[0]
        out.append((path, stage, text))
    return out


def main():
    parser = argparse.ArgumentParser(description="Send a prompt to several checkpoints and compare their replies.")
    parser.add_argument("--models", nargs="+", default=None, help="checkpoint folders/files (default: every stage in runs/)")
    parser.add_argument("--prompt", default=None, help="one prompt, then exit (default: interactive)")
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="longest reply")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, mps")
    args = parser.parse_args()
    paths = args.models or [p for p in DEFAULT_MODELS if os.path.exists(p)]
    if not paths:
        sys.exit("error: no checkpoints found in runs/; run the pipeline first (see the README)")
    enc = load_tokenizer()
    models = load_models(paths, args.device)
    if not models:
        sys.exit("error: none of the checkpoints could be loaded")

    def show(prompt):
        for path, stage, text in replies(models, enc, prompt, args.temperature, args.max_new_tokens):
            print(f"[{stage:8s} {path}]\n    {text.strip()!r}")

    if args.prompt is not None:
        show(args.prompt)
        return
    print("type a message (empty line or Ctrl-D to quit)")
    while True:
        try:
            prompt = input("> ").strip()
        except EOFError:
            break
        if not prompt:
            break
        show(prompt)


if __name__ == "__main__":
    main()
