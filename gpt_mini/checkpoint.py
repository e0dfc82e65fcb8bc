"""
Checkpoints: weights + model config + tokenizer identity + stage name + step.

Written atomically: to a temporary file in the same folder, then os.replace,
which is atomic on POSIX and Windows. A run killed mid-write leaves the previous
model.pt untouched and loadable.
"""

import os

import torch

from .model import GPT, GPTConfig
from .tokenizer import tokenizer_id

STAGES = ("pretrain", "sft", "dpo", "rlvr")


class CheckpointError(RuntimeError):
    """A checkpoint we cannot use; the message is one sentence for the user."""


def save_checkpoint(path, model, stage, step, optimizer=None, extra=None):
    raw = model.module if hasattr(model, "module") else model  # unwrap DDP
    state = {
        "stage": stage,
        "step": step,
        "model_config": raw.config.to_dict(),
        "tokenizer_id": tokenizer_id(),
        "model": raw.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "extra": extra or {},
    }
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def resolve(path):
    """Accept a run folder (runs/sft) or a file (runs/sft/model.pt)."""
    return os.path.join(path, "model.pt") if os.path.isdir(path) else path


def load_checkpoint(path, expected_stages=None, device="cpu"):
    """Load a checkpoint, refusing with one sentence anything we cannot use."""
    path = resolve(path)
    if not os.path.exists(path):
        raise CheckpointError(f"no checkpoint at {path}; run the previous stage first (see the README)")
    try:
        state = torch.load(path, map_location=device, weights_only=False)
    except Exception as e:  # truncated or not a torch file
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict) or "model" not in state or "stage" not in state:
        raise CheckpointError(f"{path} is not a gpt_mini checkpoint (no model weights or stage name)")
    if state.get("tokenizer_id") != tokenizer_id():
        raise CheckpointError(f"{path} was trained with a different tokenizer than data/tokenizer.tiktoken; "
                              f"retrain it or restore the tokenizer it used")
    if expected_stages is not None and state["stage"] not in expected_stages:
        raise CheckpointError(f"{path} is a '{state['stage']}' checkpoint, but this needs one of: "
                              f"{', '.join(expected_stages)}")
    return state


def model_from_checkpoint(state, device="cpu"):
    # checkpoints written before RoPE have no "rope" key: they used a learned position table
    config = GPTConfig(**{"rope": False, **state["model_config"]})
    model = GPT(config)
    model.load_state_dict(state["model"])
    return model.to(device)


def resume_if_asked(resume, path, stage, model, optimizer, device="cpu"):
    """With --resume and a checkpoint of this stage at path: load model + optimizer, return its
    step and extra dict. Otherwise return (0, None). A mismatching checkpoint is refused."""
    path = resolve(path)
    if not resume or not os.path.exists(path):
        return 0, None
    state = load_checkpoint(path, expected_stages=[stage], device=device)
    raw = model.module if hasattr(model, "module") else model
    if state["model_config"] != raw.config.to_dict():
        raise CheckpointError(f"{path} has model config {state['model_config']}, not this run's; "
                              f"use the same flags or another --out")
    raw.load_state_dict(state["model"])
    if optimizer is not None and state.get("optimizer"):
        optimizer.load_state_dict(state["optimizer"])
    return state["step"], state.get("extra") or {}


def load_init(path, usual_stages, device="cpu"):
    """A stage's --init: load it or exit with one sentence; another stage's checkpoint is
    allowed but said in the log (e.g. RLVR straight from SFT)."""
    try:
        state = load_checkpoint(path, device=device)
    except CheckpointError as e:
        raise SystemExit(f"error: {e}") from None
    if state["stage"] not in usual_stages:
        print(f"note: starting from a '{state['stage']}' checkpoint ({path}), not a "
              f"{' or '.join(usual_stages)} one")
    return state
