"""
A learned reward model for RLHF: the SFT model's transformer with a scalar head in place of the
vocabulary head, trained on preference pairs with the Bradley-Terry loss (Stiennon et al. 2020;
Ouyang et al. 2022, Eq. 1):

    loss = -log sigmoid(r(x, y_w) - r(x, y_l))

so that sigmoid(r_w - r_l) is the modelled probability that a person prefers y_w. The reward is read
from the final hidden state of the reply's last token (its <|end|>), which has seen the prompt and the
whole reply. The head starts at zero: every reward is 0 and the loss log 2 before the first step.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from .data import pair_batch
from .model import GPT, GPTConfig
from .runtime import evaluation


class RewardModel(nn.Module):

    def __init__(self, body):
        super().__init__()
        self.body = body                                  # a GPT, from the SFT checkpoint
        self.config = body.config                         # what save_checkpoint records
        self.head = nn.Linear(body.config.n_embd, 1)      # hidden state -> scalar reward
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, input_ids, response_mask):
        """input_ids, response_mask (B, T) -> rewards (B,): one number per reply, read at its last token."""
        hidden = self.body(input_ids, return_hidden=True)                        # (B, T, C)
        last = last_response_index(response_mask)                               # (B,)
        return self.head(hidden[torch.arange(len(last), device=last.device), last]).squeeze(-1)  # (B,)

    @classmethod
    def from_checkpoint(cls, state, device="cpu"):
        """A reward model saved by train_reward_model.py (checkpoint stage "reward_model")."""
        model = cls(GPT(GPTConfig(**{"rope": False, **state["model_config"]})))
        model.load_state_dict(state["model"])
        return model.to(device)


def last_response_index(response_mask):
    """(B, T) mask of reply tokens (right-padded rows) -> (B,) position of each row's last reply token."""
    T = response_mask.size(1)
    return T - 1 - response_mask.flip(1).long().argmax(dim=1)


def bradley_terry_loss(chosen_rewards, rejected_rewards):
    """-log sigmoid(r_w - r_l), averaged over pairs; chosen_rewards, rejected_rewards (B,) -> scalar."""
    return -F.logsigmoid(chosen_rewards - rejected_rewards).mean()


def reward_metrics(chosen_rewards, rejected_rewards):
    """What TRL's RewardTrainer reports, as floats: accuracy (chosen scored strictly higher; a tie is wrong),
    the mean margin r_w - r_l, and the mean reward over both sides."""
    chosen_rewards, rejected_rewards = chosen_rewards.detach().float(), rejected_rewards.detach().float()
    return {"accuracy": (chosen_rewards > rejected_rewards).float().mean().item(),
            "margin": (chosen_rewards - rejected_rewards).mean().item(),
            "mean_reward": torch.cat([chosen_rewards, rejected_rewards]).mean().item()}


def pair_rewards(model, input_ids, response_mask):
    """(2B, T) chosen-then-rejected block (data.pair_batch) -> chosen rewards (B,), rejected rewards (B,)."""
    return model(input_ids, response_mask).chunk(2)


@evaluation
def held_out_metrics(model, examples, pad_id, batch_size=64):
    """eval/loss and eval/accuracy, eval/margin, eval/mean_reward on held-out pairs."""
    device = next(model.parameters()).device
    chosen, rejected = [], []
    for i in range(0, len(examples), batch_size):
        input_ids, mask, _ = pair_batch(examples[i:i + batch_size], pad_id)
        c, r = pair_rewards(model, input_ids.to(device), mask.to(device))
        chosen.append(c.float().cpu())
        rejected.append(r.float().cpu())
    chosen, rejected = torch.cat(chosen), torch.cat(rejected)
    metrics = {"loss": bradley_terry_loss(chosen, rejected).item(), **reward_metrics(chosen, rejected)}
    return {f"eval/{k}": v for k, v in metrics.items()}
