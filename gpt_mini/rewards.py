"""
Where the RL loop's reward comes from. 04_rlvr.py is one implementation with three sources (--reward):

  verifier  arithmetic tasks {"prompt", "answer"}; the program in verifier.py scores each reply 1 or 0 (RLVR)
  grader    the prompts of the preference pairs (a user's opinion about a fact); the claim grader scores a
            reply 1 when it is polite and gets the verdict right (grading.classify_claim_reply's
            polite_correct): the true reward, which RLHF can only approximate (the DPO paper's "PPO-GT")
  model     the same prompts, scored by a learned reward model (reward_model.py): RLHF

The held-out evaluation always uses the true reward (verifier or grader), so that a policy that learns to
please the reward model without answering better shows up as a learned reward that rises while the true
one does not.
"""

import torch

from . import data
from .checkpoint import load_checkpoint
from .grading import classify_claim_reply
from .logprobs import prompt_reply_batch
from .reward_model import RewardModel
from .runtime import evaluation
from .verifier import reward as verifier_reward

SOURCES = ("verifier", "grader", "model")
DATA = {"verifier": ("rlvr_train.jsonl", "rlvr_val.jsonl"),
        "grader": ("dpo_train.jsonl", "dpo_val.jsonl"), "model": ("dpo_train.jsonl", "dpo_val.jsonl")}
CLAIM_FIELDS = ("attribute", "true_value", "claimed_value", "claim_is_true")


def load_prompts(source, path, enc, block_size):
    """The RL prompts of a source, from path (None: the embedded file; the held-out one with path="val"):
    arithmetic tasks, or one prompt per preference pair with the fields the claim grader reads."""
    train_file, val_file = DATA[source]
    path = data.data_path(val_file if path == "val" else train_file) if path in (None, "val") else path
    if source == "verifier":
        return data.load_tasks(path, enc, block_size)
    prompts = []
    for line_no, row in data.read_jsonl(path):
        missing = [k for k in ("prompt", *CLAIM_FIELDS) if k not in row]
        if missing:
            raise data.DataError(f"{path}:{line_no}: a claim prompt needs {', '.join(missing)} "
                                 f"(the fields the claim grader reads, as in data/dpo_train.jsonl)")
        prompts.append({"prompt": row["prompt"], **{k: row[k] for k in CLAIM_FIELDS}})
    return prompts


def true_reward(reply, task):
    """The programmed score of one reply: the verifier for a task with an answer, else the claim grader."""
    if "answer" in task:
        return verifier_reward(reply, task["answer"])
    return float(classify_claim_reply(reply, task)["polite_correct"])


def make_reward(source, pad_id, device="cpu", reward_model_path=None):
    """-> score(replies, tasks, prompt_ids, actions) -> rewards (N,) float: the true reward, or the learned one."""
    if source != "model":
        return lambda replies, tasks, prompt_ids, actions: torch.tensor([true_reward(r, t)
                                                                         for r, t in zip(replies, tasks)])
    reward_model = load_reward_model(reward_model_path, device)

    def score(replies, tasks, prompt_ids, actions):
        return learned_reward(reward_model, prompt_ids, actions, pad_id)
    return score


def load_reward_model(path, device="cpu"):
    """train_reward_model.py's model, frozen: the learned reward is fixed during RL."""
    reward_model = RewardModel.from_checkpoint(load_checkpoint(path, ["reward_model"], device), device)
    return reward_model.eval().requires_grad_(False)


@evaluation
def learned_reward(reward_model, prompt_ids, reply_ids, pad_id, batch_size=64):
    """A reward model's score of replies (token lists; a reply ends with its <|end|> when it closed) -> (N,)."""
    device = next(reward_model.parameters()).device
    out = []
    for i in range(0, len(prompt_ids), batch_size):
        prompts, replies = prompt_ids[i:i + batch_size], reply_ids[i:i + batch_size]
        input_ids, mask = prompt_reply_batch(prompts, replies, pad_id)
        out.append(reward_model(input_ids.to(device), mask.to(device)).float().cpu())
    return torch.cat(out)


def rlvr_metrics(group_rewards, actions, loss, stats, replies=None, tasks=None):
    """What 04_rlvr.py logs for one step: the mean reward and its spread within groups, the share of groups
    whose samples all scored the same (advantage 0: no signal), the mean completion length in tokens, and the
    last inner step's loss and policy_gradient_loss stats. group_rewards: (P, G); actions: P*G token lists.
    With replies and tasks (a learned reward), also true_reward: the programmed score of the same replies."""
    all_equal = group_rewards.max(dim=1).values == group_rewards.min(dim=1).values  # (P,)
    out = {"reward": group_rewards.mean().item(),
           "reward_std": group_rewards.std(dim=1, unbiased=False).mean().item(),
           "no_signal_groups": all_equal.float().mean().item(),
           "completion_length": sum(len(a) for a in actions) / len(actions), "loss": loss.item(), **stats}
    if tasks is not None:
        out["true_reward"] = sum(true_reward(r, t) for r, t in zip(replies, tasks)) / len(tasks)
    return out
