"""
Where every stage writes inside a runs folder, defined once. The stage scripts' defaults,
run_all.py, the chat, the sweep and the report all take their paths from here.

    runs/pretrain/          01_pretrain.py    model.pt, metrics.jsonl, summary.json, plots
    runs/sft/               02_sft.py
    runs/dpo/beta-<β>/      03_dpo.py         one folder per β; runs/dpo/ holds the β sweep figure
    runs/rlvr/              04_rlvr.py        starts from runs/dpo/beta-0.1
    runs/reward_model/      train_reward_model.py   RLHF's learned reward, from runs/sft (not in run_all.py)
    runs/frontier/          python -m gpt_mini.frontier   every method's runs from runs/sft, frontier.json/.png
    runs/report.md          gpt_mini.report   (and summary.png, lesson_data.js)
"""

import os

RUNS = "runs"
STAGES = ("pretrain", "sft", "dpo", "rlvr")
SCRIPTS = {"pretrain": "01_pretrain.py", "sft": "02_sft.py", "dpo": "03_dpo.py", "rlvr": "04_rlvr.py"}
REWARD_MODEL = "reward_model"  # the folder of train_reward_model.py, beside the stages
DEFAULT_BETA = 0.1  # the β of the default pipeline: the DPO model that RLVR, the chat and the report's tables use


def stage_dir(stage, runs=RUNS):
    """A stage's --out: runs/pretrain, runs/sft, runs/dpo (the folder of all β runs), runs/rlvr."""
    return os.path.join(runs, stage)


def beta_dir(dpo_dir, beta):
    """One β's folder under a DPO --out: runs/dpo/beta-0.1."""
    return os.path.join(dpo_dir, f"beta-{beta:g}")


def model_dir(stage, runs=RUNS):
    """The folder holding a stage's model in the default pipeline: runs/dpo/beta-0.1 for DPO."""
    return beta_dir(stage_dir("dpo", runs), DEFAULT_BETA) if stage == "dpo" else stage_dir(stage, runs)


# the chat models whose behaviour the report puts side by side: (title, stage)
CHAT_MODELS = (("SFT", "sft"), (f"DPO β = {DEFAULT_BETA:g}", "dpo"), ("RLVR", "rlvr"))
