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
from torch.nn.parallel import DistributedDataParallel as DDP


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


def under_torchrun():
    """Was this process started by torchrun (which sets RANK, WORLD_SIZE, ...)?"""
    return "RANK" in os.environ


def setup_distributed(device):
    """Under torchrun, join the process group. Returns (rank, world_size, device).

    Each process gets its own GPU on CUDA (nccl); on CPU the gloo backend lets
    two processes on one machine train together (used by the DDP tests).
    """
    if not under_torchrun():
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
    """Leave the process group, all ranks together: the others wait here while rank 0 evaluates and writes, so
    that no rank tears its connections down under one still running."""
    if is_distributed():
        dist.barrier()
        dist.destroy_process_group()


def is_distributed():
    """Is this process one rank of a process group (setup_distributed under torchrun, any number of ranks)?"""
    return dist.is_available() and dist.is_initialized()


def data_parallel(model, world_size):
    """The model as the training step calls it: under DDP (world_size > 1) wrapped in DistributedDataParallel,
    whose backward averages the gradients of all ranks, so that every rank takes the same optimizer step;
    alone, the model itself. Everything else (evaluation, sampling, saving) uses the model itself, and a frozen
    reference is never wrapped: it has no gradients to average."""
    return DDP(model) if world_size > 1 else model


def sum_over_ranks(value):
    """A number (or a one-element tensor) summed over all ranks: a python float, or value itself without DDP."""
    if not is_distributed():
        return value
    total = torch.tensor(float(value), dtype=torch.float64, device=_collective_device())
    dist.all_reduce(total)
    return total.item()


def mean_over_ranks(record):
    """A step's record {name: number} averaged over all ranks (the record itself without DDP).

    Every rank holds an equal share of the global batch, so a mean over examples averages exactly; a mean
    over tokens does too when each rank divided its sum by global_mean_divisor (the loss of SFT, RLVR)."""
    if not is_distributed():
        return record
    values = torch.tensor([float(v) for v in record.values()], dtype=torch.float64, device=_collective_device())
    dist.all_reduce(values)
    return dict(zip(record, (values / dist.get_world_size()).tolist()))


def global_mean_divisor(count):
    """What a rank divides its sum by so that a token-level mean is the global batch's (count: this rank's
    number of tokens, a tensor). Without DDP: count, at least 1 (an empty batch gives 0, not NaN).

    Under DDP: the count summed over the ranks (at least 1), divided by the number of ranks. DDP averages the
    ranks' gradients, and mean_over_ranks their metrics, so each rank's sum / (total / N), averaged over the N
    ranks, is the sum over the whole global batch / its total count: the loss one process computes on it.
    (Dividing by the rank's own count instead would weigh the tokens of a rank with fewer of them more.)"""
    if not is_distributed():
        return count.clamp(min=1)
    total = count.detach().to(_collective_device(), torch.float64)
    dist.all_reduce(total)
    return (total.clamp(min=1) / dist.get_world_size()).to(count.device, torch.float32)


def split_round_robin(items):
    """This rank's items of a list the ranks share out: every world_size-th one, from the rank's own index
    (all items without DDP). gather_round_robin puts the results back together."""
    if not is_distributed():
        return items
    return items[dist.get_rank()::dist.get_world_size()]


def gather_round_robin(mine):
    """The results of every rank's split_round_robin share, in the order of the original list, on every rank
    (mine itself without DDP). Any picklable items: they travel with all_gather_object."""
    if not is_distributed():
        return mine
    per_rank = [None] * dist.get_world_size()
    dist.all_gather_object(per_rank, mine)
    return [share[turn] for turn in range(len(per_rank[0])) for share in per_rank if turn < len(share)]


def _collective_device():
    """nccl reduces CUDA tensors only; gloo CPU ones."""
    return f"cuda:{torch.cuda.current_device()}" if dist.get_backend() == "nccl" else "cpu"


def is_master():
    """Rank 0 (or a run without DDP): the process that evaluates, logs and writes."""
    return not is_distributed() or dist.get_rank() == 0


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
