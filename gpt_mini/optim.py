"""
The optimizer and its schedule, shared by the four stages: AdamW, warm-up then cosine
decay of the learning rate, and the guard that stops a run on a NaN loss. The training
loops themselves live in the stage scripts, where a reader can see them.
"""

import math

import torch

from .errors import UserError


class NonFiniteLossError(UserError, RuntimeError):
    """The loss became NaN or infinite; the run stops and keeps its last good checkpoint."""


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


def check_finite(loss, step):
    """Stop the run on a NaN/inf loss; the caller keeps the last good checkpoint."""
    if not torch.isfinite(loss).all():
        raise NonFiniteLossError(f"the loss became {loss.item()} at step {step}; stopping "
                                 f"(the last good checkpoint is kept). Try a lower --lr.")
