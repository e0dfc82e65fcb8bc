"""
Training plumbing shared by all four stages: device, seeding, DDP, optimizer,
learning-rate schedule, mixed precision, NaN guard. The loops themselves live
in the stage scripts, where a reader can see them.
"""

import argparse
import contextlib
import math
import os
import random

import numpy as np
import torch
import torch.distributed as dist


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the run stops and keeps its last good checkpoint."""


def pick_device(requested="auto"):
    """cuda -> mps -> cpu, unless the user named one."""
    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup_distributed(device):
    """Under torchrun, join the process group. Returns (rank, world_size, device).

    Each process gets its own GPU on CUDA (nccl); on CPU the gloo backend lets
    two processes on one machine train together (used by the DDP test).
    """
    if "RANK" not in os.environ:
        return 0, 1, device
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if device.startswith("cuda"):
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")
    return rank, world, device


def cleanup_distributed():
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def make_optimizer(model, lr, weight_decay=0.1, betas=(0.9, 0.95)):
    """AdamW; weight decay on matrices only (not on LayerNorm gains/biases)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=betas)


def lr_at(step, total_steps, max_lr, warmup_steps, min_lr_ratio=0.1):
    """Linear warm-up to max_lr, then cosine decay to min_lr_ratio * max_lr."""
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    min_lr = max_lr * min_lr_ratio
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (max_lr - min_lr)


def set_lr(optimizer, lr):
    for group in optimizer.param_groups:
        group["lr"] = lr


FORCE_AUTOCAST_ENV = "GPT_MINI_FORCE_AUTOCAST"


def autocast(device):
    """bf16 autocast on CUDA; full fp32 elsewhere (CPU bf16 is slower on most laptops).

    With the environment variable GPT_MINI_FORCE_AUTOCAST=1, bf16 autocast is on for every
    device: a CPU test can then run exactly the code path a GPU runs.
    """
    device_type = str(device).split(":")[0]
    if device_type == "cuda" or os.environ.get(FORCE_AUTOCAST_ENV) == "1":
        return torch.autocast(device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def check_finite(loss, step):
    """Stop the run on a NaN/inf loss; the caller keeps the last good checkpoint."""
    if not torch.isfinite(loss).all():
        raise NonFiniteLossError(f"the loss became {loss.item()} at step {step}; stopping "
                                 f"(the last good checkpoint is kept). Try a lower --lr.")


# ----------------------------------------------------------------------------- command-line checks
# argparse `type=` functions: a bad value stops the script before any work, with one sentence
# naming the flag and the allowed range ("argument --steps: must be an integer >= 1, got '0'").

SEED_MAX = 2**32 - 1  # numpy's seed range
MIN_BLOCK_SIZE = 64   # the later stages' chat prompts (up to ~30 tokens) plus a reply must fit


def _bounds(low, high, low_open=False, high_open=False):
    low, high = (f"{b:g}" if isinstance(b, float) else b for b in (low, high))
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low}"
    return f"{'<' if high_open else '<='} {high}"


def int_arg(low=None, high=None):
    """An integer in [low, high] (either bound may be None)."""
    what = "an integer" + (" " + _bounds(low, high) if low is not None or high is not None else "")

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value
    return parse


def float_arg(low=None, high=None, low_open=False, high_open=False):
    """A finite number in the range; low_open/high_open exclude the bound itself."""
    what = "a finite number" + (" " + _bounds(low, high, low_open, high_open) if low is not None or high is not None else "")

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if (not math.isfinite(value) or (low is not None and (value <= low if low_open else value < low))
                or (high is not None and (value >= high if high_open else value > high))):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value
    return parse


positive_int = int_arg(1)
non_negative_int = int_arg(0)
positive_float = float_arg(0, low_open=True)
non_negative_float = float_arg(0)
seed_arg = int_arg(0, SEED_MAX)


def path_arg(text):
    """A file or folder path: not empty (an empty --data would silently mean the embedded data)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must be a path, got an empty string")
    return text


def available_devices():
    """The device strings torch can use on this machine."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append("mps")
    return found


def device_arg(text):
    """auto, or a device this machine has (cpu, cuda, cuda:N, mps)."""
    if text == "auto" or text in available_devices():
        return text
    raise argparse.ArgumentTypeError(f"must be auto or a device this machine has "
                                     f"({', '.join(available_devices())}), got {text!r}")


def add_common_args(parser, stage):
    """The flags every stage script shares."""
    parser.add_argument("--out", type=path_arg, default=f"runs/{stage}", help="folder for the checkpoint, metrics and plots")
    parser.add_argument("--data", type=path_arg, default=None, help="your own data file (UTF-8 text) instead of the embedded one")
    parser.add_argument("--device", type=device_arg, default="auto", help="auto (cuda -> mps -> cpu), cpu, cuda, cuda:1, mps")
    parser.add_argument("--seed", type=seed_arg, default=0,
                        help=f"random seed, 0 to {SEED_MAX} (same seed, same numbers on CPU)")
    parser.add_argument("--quick", action="store_true", help="tiny settings that finish in seconds (tests, first contact)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")


def prepare_out_dir(path):
    """Create the output folder and prove it is writable before any work is done."""
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".write-test-{os.getpid()}")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise SystemExit(f"error: cannot write to --out {path} ({e.strerror}); choose another folder")
    return path


def apply_quick(args, parser, **tiny):
    """--quick: tiny settings for the flags the user did not set on the command line."""
    if args.quick:
        for name, value in tiny.items():
            if getattr(args, name) == parser.get_default(name):
                setattr(args, name, value)
    return args
