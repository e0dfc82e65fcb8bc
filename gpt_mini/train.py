"""
Training plumbing shared by all four stages: device, seeding, DDP, optimizer,
learning-rate schedule, mixed precision, NaN guard. The loops themselves live
in the stage scripts, where a reader can see them.
"""

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


def autocast(device):
    """bf16 autocast on CUDA; full fp32 elsewhere (CPU bf16 is slower on most laptops)."""
    if str(device).startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def check_finite(loss, step):
    """Stop the run on a NaN/inf loss; the caller keeps the last good checkpoint."""
    if not torch.isfinite(loss).all():
        raise NonFiniteLossError(f"the loss became {loss.item()} at step {step}; stopping "
                                 f"(the last good checkpoint is kept). Try a lower --lr.")


def add_common_args(parser, stage):
    """The flags every stage script shares."""
    parser.add_argument("--out", default=f"runs/{stage}", help="folder for the checkpoint, metrics and plots")
    parser.add_argument("--data", default=None, help="your own data file instead of the embedded one")
    parser.add_argument("--device", default="auto", help="auto (cuda -> mps -> cpu), cpu, cuda, cuda:1, mps")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same numbers on CPU)")
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
