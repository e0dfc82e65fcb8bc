"""
The command line every stage script shares: its common flags, --quick, the --out check,
and the argparse `type=` functions.

A bad value stops the script before any work, with one sentence naming the flag and the
allowed range ("argument --steps: must be an integer >= 1, got '0'").
"""

import argparse
import math
import os

import torch

from . import layout, runtime
from .errors import UserError, print_user_errors_as_one_sentence

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
    bounded = low is not None or high is not None
    what = "a finite number" + (" " + _bounds(low, high, low_open, high_open) if bounded else "")

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


PREVIOUS_STAGE = {"sft": "pretrain", "dpo": "sft", "rlvr": "dpo", layout.REWARD_MODEL: "sft"}


def stage_parser(doc, stage, *, steps, lr, warmup, eval_every, batch_size=None, batch_unit="examples"):
    """A stage script's parser: the first paragraph of its docstring as the description (the whole docstring in
    --help), and the flags every stage shares, with this stage's defaults: --out, --data, --device, --seed,
    --quick, --no-progress; --init (the previous stage's model, after pretraining); the schedule, --steps,
    --batch-size (when the stage has one), --lr, --warmup; and --eval-every (--eval-limit after pretraining)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser, stage)
    if stage in PREVIOUS_STAGE:
        parser.add_argument("--init", type=path_arg, default=layout.model_dir(PREVIOUS_STAGE[stage]),
                            help=f"checkpoint (folder or file) to start from, by default the {PREVIOUS_STAGE[stage]} "
                                 f"model")
    parser.add_argument("--steps", type=positive_int, default=steps, help="training steps, a fresh batch each")
    if batch_size is not None:
        parser.add_argument("--batch-size", type=positive_int, default=batch_size, help=f"{batch_unit} per step")
    parser.add_argument("--lr", type=positive_float, default=lr, help="peak learning rate (AdamW)")
    parser.add_argument("--warmup", type=non_negative_int, default=warmup, help="linear warm-up steps")
    names = ["--eval-every", "--log-every"] if stage == "dpo" else ["--eval-every"]  # --log-every: DPO's old name
    parser.add_argument(*names, dest="eval_every", type=positive_int, default=eval_every,
                        help="steps between held-out evaluations (with a log line) and checkpoints")
    if stage != "pretrain":
        parser.add_argument("--eval-limit", type=positive_int, default=None,
                            help="grade only the first N held-out items of each kind (quicker, noisier)")
    if stage in ("sft", "dpo", "rlvr"):
        parser.add_argument("--frontier", type=positive_int, nargs="?", const=0, default=None, metavar="N",
                            help="also measure a reward-KL frontier point at every evaluation (gpt_mini/frontier.py), "
                                 "on the held-out opinion claims (the first N, when given; all 400 by default)")
    return parser


def parse(parser, **quick):
    """Parse the command line, apply --quick's tiny settings (quick: flag name -> value), and from here on
    print the library's errors (errors.UserError) as one sentence instead of a traceback."""
    args = parser.parse_args()
    apply_quick(args, parser, **quick)
    print_user_errors_as_one_sentence()
    return args


def add_common_args(parser, stage):
    """The flags every stage script shares."""
    parser.add_argument("--out", type=path_arg, default=layout.stage_dir(stage),
                        help="folder for the checkpoint, metrics and plots")
    parser.add_argument("--data", type=path_arg, default=None,
                        help="your own data file (UTF-8 text) instead of the embedded one")
    parser.add_argument("--device", type=device_arg, default="auto",
                        help="auto (cuda -> mps -> cpu), cpu, cuda, cuda:1, mps")
    parser.add_argument("--seed", type=seed_arg, default=0,
                        help=f"random seed, 0 to {SEED_MAX} (same seed, same numbers on CPU)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny settings that finish in seconds (tests, first contact)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")


def prepare_out_dir(path):
    """Create the output folder and prove it is writable before any work is done (under DDP: rank 0 only,
    the only process that writes)."""
    if not runtime.is_master():
        return path
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".write-test-{os.getpid()}")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise UserError(f"cannot write to --out {path} ({e.strerror}); choose another folder") from None
    return path


def apply_quick(args, parser, **tiny):
    """--quick: tiny settings for the flags the user did not set on the command line."""
    if args.quick:
        for name, value in tiny.items():
            if getattr(args, name) == parser.get_default(name):
                setattr(args, name, value)
    return args
