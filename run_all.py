"""
The whole default pipeline, stage after stage, then the report card:

    01_pretrain.py -> 02_sft.py -> 03_dpo.py (beta 0.1) -> 04_rlvr.py -> runs/report.md

Each stage loads the previous stage's checkpoint from runs/. About 12 to 15 minutes on a
2-core CPU; --quick runs every stage at tiny size in well under a minute. The wall time
of every stage goes to runs/pipeline.json, and the report shows where the time went.

Run it:
    python run_all.py            # the default run
    python run_all.py --quick    # first contact / smoke test
    python run_all.py --nproc 2  # every stage under torchrun, data-parallel (DDP) on 2 processes or GPUs
"""

import argparse
import json
import os
import subprocess
import sys
import time

import torch

from gpt_mini import layout
from gpt_mini.cli import device_arg, int_arg, path_arg, seed_arg
from gpt_mini.runtime import pick_device


def main():
    parser = argparse.ArgumentParser(description="Run all four stages with their defaults, then write the report.")
    parser.add_argument("--quick", action="store_true", help="tiny settings for every stage")
    parser.add_argument("--runs", type=path_arg, default="runs", help="folder for every stage's outputs")
    parser.add_argument("--device", type=device_arg, default="auto", help="passed to every stage")
    parser.add_argument("--seed", type=seed_arg, default=0,
                        help="passed to every stage (the README's band comes from seeds 0, 1 and 2)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (for logs)")
    parser.add_argument("--nproc", type=int_arg(1), default=1,
                        help="processes per stage: 1 runs plain python; N > 1 runs every stage under torchrun (DDP, "
                             "one GPU each on CUDA), each process taking the stage's --batch-size (--prompts in RL)")
    parser.add_argument("--group-by-length", action="store_true",
                        help="SFT and DPO run their batches in groups of similar length (less padding, the same "
                             "losses up to float order; off: the published numbers)")
    args = parser.parse_args()
    check_nproc(parser, args.nproc, args.device)
    here = os.path.dirname(os.path.abspath(__file__))
    start, stage_seconds = time.time(), {}
    for stage, previous in zip(layout.STAGES, (None, *layout.STAGES)):
        script = layout.SCRIPTS[stage]
        cmd = [sys.executable, *launcher(args.nproc), os.path.join(here, script), "--out",
               layout.stage_dir(stage, args.runs), "--device", args.device, "--seed", str(args.seed)]
        cmd += ["--init", layout.model_dir(previous, args.runs)] if previous else []
        cmd += ["--quick"] * args.quick + ["--no-progress"] * args.no_progress
        cmd += ["--group-by-length"] * (args.group_by_length and script in ("02_sft.py", "03_dpo.py"))
        print(f"\n=== {script} ({(time.time() - start) / 60:.1f} min so far) ===", flush=True)
        stage_start = time.time()
        if subprocess.call(cmd) != 0:
            sys.exit(f"{script} failed; the stages before it are kept in {args.runs}/")
        stage_seconds[script] = time.time() - stage_start
    with open(os.path.join(args.runs, "pipeline.json"), "w") as f:  # whole scripts: loading, evaluation, saving
        json.dump({"command": " ".join(["python", "run_all.py"] + sys.argv[1:]), "quick": args.quick,
                   "total_wall_time_s": time.time() - start, "stage_wall_time_s": stage_seconds}, f, indent=1)
    subprocess.check_call([sys.executable, "-m", "gpt_mini.report", "--runs", os.path.abspath(args.runs)], cwd=here)
    print(f"\nall four stages done in {(time.time() - start) / 60:.1f} min; see {args.runs}/report.md")


def launcher(nproc):
    """What runs a stage script after the interpreter: nothing (plain python) for one process, else torchrun
    (--standalone: one machine, a free port of its own)."""
    return [] if nproc == 1 else ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]


def check_nproc(parser, nproc, device):
    """Refuse, in one sentence, an --nproc this machine cannot run: DDP needs one GPU per process on CUDA,
    and runs on CUDA (nccl) or the CPU (gloo) only."""
    if nproc == 1:
        return
    resolved = pick_device(device)
    if resolved == "mps":
        parser.error(f"--nproc {nproc} needs cuda or cpu (DDP does not run on mps); add --device cpu")
    if resolved.startswith("cuda") and nproc > torch.cuda.device_count():
        parser.error(f"--nproc {nproc} needs one GPU per process, and this machine has {torch.cuda.device_count()}")


if __name__ == "__main__":
    main()
