"""gpt_mini: a small GPT and the four stages that train it (pretrain, SFT, DPO, RLVR).

The embedded data folder (the tiny world, the tokenizer) is located here, once, for every module.
"""

import os

DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")


def data_path(name):
    """A file in the repository's data/ folder."""
    return os.path.join(DATA_DIR, name)
