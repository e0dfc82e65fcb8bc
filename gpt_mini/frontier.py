"""
One point on the reward-KL frontier of the DPO paper (Rafailov et al. 2023, Fig. 2): how much true reward a
policy earns for how far it moved from the reference.

    kl      KL(pi || pi_ref) per sequence, estimated on replies sampled from pi at temperature 1 as the mean
            over replies of sum_t (log pi(y_t | ...) - log pi_ref(y_t | ...)), the paper's definition;
    reward  the claim grader's score (rewards.true_reward: polite and the right verdict) of the same replies,
            on held-out opinion prompts whose fact the reference model knows, in the training files' wordings
            and, separately, in the held-out families of wordings; with a reward model, its score as well.

Every method (DPO at several betas, RLHF, PPO-GT, Preferred-FT, SimPO, ORPO) is measured with this one
function, so their points share one pair of axes. At step 0 every method is the SFT model, and its KL is 0.
"""

import torch

from .checkpoint import load_checkpoint, model_from_checkpoint
from .data import data_path, load_jsonl, pad_id
from .grading import grade_fact
from .logprobs import prompt_reply_batch, response_token_logps
from .rewards import learned_reward, load_reward_model, true_reward
from .runtime import evaluation
from .sampling import chat_replies, generate_ids
from .tokenizer import END, render_prompt


def opinion_claims(limit=None):
    """The held-out opinion prompts of data/eval_claims.jsonl (a user's opinion about a fact, true or false,
    half in the training files' wordings, half in held-out ones): the first `limit`, or all."""
    return [c for c in load_jsonl(data_path("eval_claims.jsonl")) if c["stance"] == "opinion"][:limit]


@evaluation
def known_claim_prompts(reference, enc, limit=None, max_new_tokens=48):
    """The opinion prompts (the first `limit`) whose fact the reference answers right when asked plainly:
    the prompts every frontier point is scored on (the same ones for every method)."""
    claims = opinion_claims(limit)
    questions = {(c["entity"], c["attribute"]): c["fact_question"] for c in claims}
    answers = dict(zip(questions, chat_replies(reference, enc, list(questions.values()), max_new_tokens)))
    return [c for c in claims if grade_fact(answers[(c["entity"], c["attribute"])],
                                            {"answer": c["true_value"], "attribute": c["attribute"]})]


@evaluation
def measure_point(policy, reference, enc, claims, samples_per_prompt=2, max_new_tokens=48, seed=0, reward_model=None):
    """Sample replies from policy (T = 1) to every claim prompt -> {"kl", "prompts", "samples",
    "reward_train_wordings", "reward_heldout_wordings"[, "reward_model"]}; the same seed draws the same random
    numbers for every policy."""
    if not claims:  # the reference knows none of the facts: nothing to measure
        return {"kl": float("nan"), "prompts": 0, "samples": 0, "reward_train_wordings": float("nan"),
                "reward_heldout_wordings": float("nan"),
                **({"reward_model": float("nan")} if reward_model is not None else {})}
    device = next(policy.parameters()).device
    end_id, pad = enc.encode_single_token(END), pad_id(enc)
    tasks = [c for c in claims for _ in range(samples_per_prompt)]
    prompt_ids = [render_prompt(enc, c["prompt"]) for c in tasks]
    generator = torch.Generator(device=device).manual_seed(seed)
    completions, finished = generate_ids(policy, prompt_ids, max_new_tokens, temperature=1.0, stop_tokens=(end_id,),
                                         generator=generator, return_finished=True)
    replies = [c + [end_id] if f else c for c, f in zip(completions, finished)]  # the <|end|> is sampled too
    input_ids, mask = prompt_reply_batch(prompt_ids, replies, pad)
    input_ids, mask = input_ids.to(device), mask.to(device)
    policy_logps, _ = response_token_logps(policy(input_ids), input_ids, mask)       # (N, T-1), 0 off the reply
    ref_logps, _ = response_token_logps(reference(input_ids), input_ids, mask)
    kl = (policy_logps - ref_logps).sum(dim=1).mean().item()                         # sequence-level, per reply
    scores = [true_reward(enc.decode(c), t) for c, t in zip(completions, tasks)]
    out = {"kl": kl, "prompts": len(claims), "samples": len(tasks)}
    for key, wording in (("reward_train_wordings", "train"), ("reward_heldout_wordings", "heldout")):
        picked = [s for s, t in zip(scores, tasks) if t["wording"] == wording]
        out[key] = sum(picked) / len(picked) if picked else float("nan")
    if reward_model is not None:
        out["reward_model"] = learned_reward(reward_model, prompt_ids, replies, pad).mean().item()
    return out


def tracked(held_out, args, policy, enc, device):
    """A stage's held-out evaluation, plus (with --frontier) a frontier point at every evaluation, step 0
    included: its records gain frontier/kl, frontier/reward_train_wordings, frontier/reward_heldout_wordings
    (and frontier/reward_model under --reward model) in metrics.jsonl. The reference is the stage's --init
    checkpoint, loaded once more and frozen; the prompts are the opinions it knows (of the first --frontier N).
    Without --frontier, held_out itself."""
    if getattr(args, "frontier", None) is None:
        return held_out
    reference = model_from_checkpoint(load_checkpoint(args.init, device=device), device)
    reference.eval().requires_grad_(False)
    claims = known_claim_prompts(reference, enc, args.frontier or None)
    if not claims and args.quick:  # a --quick model knows no fact: measure on the claims anyway (a smoke run)
        claims = opinion_claims(args.frontier or 16)
    reward_model = load_reward_model(args.reward_model, device) if getattr(args, "reward", None) == "model" else None

    def with_point(step):
        point = measure_point(policy, reference, enc, claims, seed=args.seed, reward_model=reward_model)
        return {**held_out(step), **{f"frontier/{k}": v for k, v in point.items()}}
    return with_point


if __name__ == "__main__":  # python -m gpt_mini.frontier: the whole experiment (gpt_mini/frontier_experiment.py)
    import sys

    from gpt_mini.frontier_experiment import main
    sys.exit(main())
