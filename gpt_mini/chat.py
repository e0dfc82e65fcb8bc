"""
Talk to the models: one prompt, every stage's reply side by side.

    python -m gpt_mini.chat --prompt "I think Rurair lives in Lima."   # one prompt, all stages found in runs/
    python -m gpt_mini.chat                                            # interactive: type, see every stage answer
    python -m gpt_mini.chat --models runs/sft runs/rlvr --temperature 0.8
    python -m gpt_mini.chat --runs my_runs                             # the stages of another runs folder

A pretrained model has never seen the chat template, so it is shown continuing
your text as plain text; the others answer inside the assistant turn.
"""

import argparse
import os
import sys

import torch

from . import layout
from .checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from .cli import device_arg, float_arg, path_arg, positive_int
from .runtime import pick_device
from .sampling import chat_replies, complete
from .tokenizer import load_tokenizer


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
    parser = argparse.ArgumentParser(prog="python -m gpt_mini.chat",
                                     description="Send a prompt to several checkpoints and compare their replies.")
    parser.add_argument("--models", type=path_arg, nargs="+", default=None,
                        help="checkpoint folders/files (default: every stage found in --runs)")
    parser.add_argument("--runs", type=path_arg, default="runs",
                        help="runs folder to find the stages in: " + ", ".join(
                            os.path.relpath(layout.model_dir(stage, "runs"), "runs") for stage in layout.STAGES)
                        + " (default: runs)")
    parser.add_argument("--prompt", default=None, help="one prompt, then exit (default: interactive)")
    parser.add_argument("--temperature", type=float_arg(0), default=0.0, help="sampling temperature, >= 0 (0 = greedy)")
    parser.add_argument("--max-new-tokens", type=positive_int, default=64, help="longest reply, in tokens (>= 1)")
    parser.add_argument("--device", type=device_arg, default="cpu",
                        help="auto (cuda -> mps -> cpu), cpu, cuda, cuda:1, mps")
    args = parser.parse_args()
    paths = args.models or [p for p in (layout.model_dir(stage, args.runs) for stage in layout.STAGES)
                            if os.path.exists(p)]
    if not paths:
        sys.exit(f"error: no checkpoints found in {args.runs}/; run the pipeline first (see the README) or give --runs")
    enc = load_tokenizer()
    models = load_models(paths, pick_device(args.device))
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
