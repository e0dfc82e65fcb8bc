"""
Checkpoints: weights + model config + tokenizer identity + stage name + step.

Written atomically: to a temporary file in the same folder, then os.replace,
which is atomic on POSIX and Windows. A run killed mid-write leaves the previous
model.pt untouched and loadable.

Loaded safely: a checkpoint holds only tensors and plain data (numbers, strings,
lists, tuples, dicts), and is read with torch.load(weights_only=True), which rebuilds
nothing else. A plain pickle can name any Python function to call while it loads
(os.system, say), so a model.pt from someone else could otherwise run code on the
learner's machine. A file that asks for such an object is refused before any of it runs.

Convert an old checkpoint of your own (one whose extra data held other objects):
    python -m gpt_mini.checkpoint --convert runs/sft/model.pt
"""

import argparse
import os

import numpy as np
import torch

from .errors import UserError, write_failed
from .model import GPT, GPTConfig
from .tokenizer import tokenizer_id

# The objects plain_data converts, which an older checkpoint of one's own may hold: classes that only build
# values. The convert hint is given, and --convert unpickles a file, only when it asks for nothing else.
CONVERTIBLE = {"argparse.Namespace", "pathlib.Path", "pathlib.PosixPath", "pathlib.WindowsPath",
               "numpy.dtype", "numpy.ndarray", "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar",
               "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct"}


def convertible(objects):
    return bool(objects) and all(name in CONVERTIBLE or name.startswith("numpy.dtypes.") for name in objects)


class CheckpointError(UserError, RuntimeError):
    """A checkpoint we cannot use; the message is one sentence for the user."""


def plain_data(value):
    """value as tensors and plain data only, which torch.load(weights_only=True) reads back:
    an argparse.Namespace becomes a dict, a path a string, a numpy number a Python number."""
    if isinstance(value, np.generic):  # before the Python types: np.float64 is a float subclass
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor, torch.Size, torch.dtype)):
        return value
    if isinstance(value, argparse.Namespace):
        return plain_data(vars(value))
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, dict):
        return {plain_data(k): plain_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain_data(v) for v in value)
    raise TypeError(f"a checkpoint holds only tensors and plain data, not a {type(value).__name__}: {value!r}")


def save_checkpoint(path, model, stage, step, optimizer=None, extra=None):
    raw = model.module if hasattr(model, "module") else model  # unwrap DDP
    state = {
        "stage": stage,
        "step": step,
        "model_config": plain_data(raw.config.to_dict()),
        "tokenizer_id": tokenizer_id(),
        "model": raw.state_dict(),  # torch's own state dicts: tensors and plain data already
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "extra": plain_data(extra or {}),
    }
    _write_atomically(state, path, kept_step=_saved_steps.get(os.path.abspath(path)))
    _saved_steps[os.path.abspath(path)] = step


_saved_steps = {}  # path -> the step this process last saved there, for the sentence of a failed save


def _write_atomically(state, path, kept_step=None):
    """torch.save to a temporary file, then rename: a kill or a full disk never leaves a half-written model.pt."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        os.makedirs(folder, exist_ok=True)
        torch.save(state, tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:  # torch.save reports a full disk as a RuntimeError
        step = f" (step {kept_step})" if kept_step is not None else ""
        kept = (f"the last good checkpoint in {path}{step} is kept as it was" if os.path.exists(path)
                else "no checkpoint had been written there yet")
        raise write_failed(path, e, kept, needed_bytes=_tensor_bytes(state)) from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _tensor_bytes(value):
    """About how many bytes torch.save writes for a state: the bytes of its tensors."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_tensor_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_tensor_bytes(v) for v in value)
    return 0


def resolve(path):
    """Accept a run folder (runs/sft) or a file (runs/sft/model.pt)."""
    return os.path.join(path, "model.pt") if os.path.isdir(path) else path


def load_checkpoint(path, expected_stages=None, device="cpu"):
    """Load a checkpoint, refusing with one sentence anything we cannot use."""
    path = resolve(path)
    if not os.path.exists(path):
        raise CheckpointError(f"no checkpoint at {path}; run the previous stage first (see the README)")
    try:
        # weights_only=True: tensors and plain data only; a pickle that names a function to call is refused
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:
        objects = objects_needing_code(path)
        if convertible(objects):
            raise CheckpointError(
                f"{path} was refused unread: it holds Python objects ({', '.join(objects)}) where a gpt_mini "
                f"checkpoint holds only tensors and plain data; if you wrote it yourself, convert it once with: "
                f"python -m gpt_mini.checkpoint --convert {path}") from None
        if objects:
            raise CheckpointError(
                f"{path} was refused unread: loading it would call Python code ({', '.join(objects)}), which no "
                f"gpt_mini checkpoint needs, so do not open it any other way") from None
        raise CheckpointError(f"{path} is not a readable checkpoint (not a file torch.save wrote, or cut short: "
                              f"{type(e).__name__})") from None
    if not isinstance(state, dict) or "model" not in state or "stage" not in state:
        raise CheckpointError(f"{path} is not a gpt_mini checkpoint (no model weights or stage name)")
    if state.get("tokenizer_id") != tokenizer_id():
        raise CheckpointError(f"{path} was trained with a different tokenizer than data/tokenizer.tiktoken; "
                              f"retrain it or restore the tokenizer it used")
    if expected_stages is not None and state["stage"] not in expected_stages:
        raise CheckpointError(f"{path} is a '{state['stage']}' checkpoint, but this needs one of: "
                              f"{', '.join(expected_stages)}")
    return state


def objects_needing_code(path):
    """The module.name of every object the file's pickle asks for beyond tensors and plain data, read from its
    opcodes without running any of them ([] for a file that is not a torch.save zip)."""
    try:
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:
        return []


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
    """A stage's --init: load it (or raise CheckpointError with one sentence); another stage's checkpoint
    is allowed but said in the log (e.g. RLVR straight from SFT)."""
    state = load_checkpoint(path, device=device)
    if state["stage"] not in usual_stages:
        print(f"note: starting from a '{state['stage']}' checkpoint ({path}), not a "
              f"{' or '.join(usual_stages)} one")
    return state


def convert(path):
    """Rewrite an older checkpoint of one's own as tensors and plain data. Its pickle is run in full only when
    it asks for nothing but the value classes plain_data converts (CONVERTIBLE); anything else is refused."""
    path = resolve(path)
    objects = objects_needing_code(path)
    if not convertible(objects):
        load_checkpoint(path)  # refuses it with its sentence, or it needs no conversion
        raise CheckpointError(f"{path} already loads safely; nothing to convert")
    state = torch.load(path, map_location="cpu", weights_only=False)
    _write_atomically({key: value if key in ("model", "optimizer") else plain_data(value)
                       for key, value in state.items()}, path)
    load_checkpoint(path)  # it now loads the safe way, or this says why not


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m gpt_mini.checkpoint",
                                     description="Convert an older checkpoint of your own so it loads safely.")
    parser.add_argument("--convert", required=True, metavar="PATH",
                        help="a model.pt (or its folder) that YOU wrote: loading it for the conversion runs any "
                             "code it holds, so never convert a file from someone else")
    args = parser.parse_args()
    try:
        convert(args.convert)
    except (CheckpointError, OSError, TypeError) as e:
        raise SystemExit(f"error: {e}") from None
    print(f"converted {resolve(args.convert)}: it now holds only tensors and plain data")
