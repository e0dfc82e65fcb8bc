"""
Where a stage runs: the device, the seeds, data parallelism (DDP) and mixed precision.
"""

import contextlib
import functools
import os
import random

import numpy as np
import torch
import torch.distributed as dist


def evaluation(fn):
    """The one eval-mode convention of gpt_mini, as a decorator for every function that evaluates a model
    (its first argument): it runs in eval mode without gradients, and the model goes back to the mode it came
    in. So a training loop calls model.train() once, before it starts, and never after an evaluation."""
    @functools.wraps(fn)
    def run_in_eval_mode(model, *args, **kwargs):
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                return fn(model, *args, **kwargs)
        finally:
            model.train(was_training)
    return run_in_eval_mode


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


def is_master():
    """Rank 0 (or a run without DDP): the process that evaluates, logs and writes."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def print0(*args, **kwargs):
    """print, on rank 0 only (under DDP every process runs the script)."""
    if is_master():
        print(*args, **kwargs)


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
