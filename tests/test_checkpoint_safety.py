"""A checkpoint from someone else cannot run code: every load is torch.load(weights_only=True), and a file whose
pickle asks for a Python callable is refused, before any of it runs, with one sentence naming the file."""

import argparse
import importlib
import os
import pathlib
import runpy
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT, run_script
from test_checkpoint import tiny_model

from gpt_mini import checkpoint
from gpt_mini.errors import UserError


class RunsACommand:
    """Pickles as 'call os.system(command)': what an attacker's model.pt would hold."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def write_malicious_checkpoint(path, marker):
    """A model.pt that looks like ours (stage, tokenizer id) but whose weights entry runs a shell command."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save({"stage": "sft", "step": 1, "model_config": {}, "tokenizer_id": "x",
                "model": RunsACommand(f"touch {marker}"), "extra": {}}, path)
    return path


def test_the_crafted_file_really_would_run_its_command(tmp_path):
    # the control: without weights_only the same file does create the marker, so the tests below can fail
    marker = tmp_path / "ran"
    path = write_malicious_checkpoint(str(tmp_path / "evil" / "model.pt"), marker)
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_load_checkpoint_refuses_it_unread_with_one_sentence(tmp_path):
    marker = tmp_path / "ran"
    path = write_malicious_checkpoint(str(tmp_path / "evil" / "model.pt"), marker)
    with pytest.raises(checkpoint.CheckpointError) as refused:
        checkpoint.load_checkpoint(path)
    message = str(refused.value)
    assert message.startswith(f"{path} was refused unread") and "os.system" not in message
    assert "system" in message and "\n" not in message and message.count(". ") == 0
    assert "--convert" not in message  # no hint that would make the learner run it anyway
    assert not marker.exists()


def stage_commands(tmp_path, evil_dir):
    """Every way a learner hands a checkpoint to the project: each stage's --init, --resume, chat --runs."""
    quick = ["--quick", "--no-progress", "--device", "cpu"]
    out = str(tmp_path / "out")
    return {
        "02_sft.py --init": ["02_sft.py", *quick, "--init", evil_dir, "--out", out],
        "03_dpo.py --init": ["03_dpo.py", *quick, "--init", evil_dir, "--out", out],
        "04_rlvr.py --init": ["04_rlvr.py", *quick, "--init", evil_dir, "--out", out],
        "01_pretrain.py --resume": ["01_pretrain.py", *quick, "--resume", "--out", evil_dir],
        "02_sft.py --resume": ["02_sft.py", *quick, "--resume", "--out", evil_dir, "--init", evil_dir],
        "gpt_mini.chat --runs": ["gpt_mini.chat", "--runs", str(tmp_path / "runs"), "--prompt", "hi"],
    }


@pytest.mark.parametrize("how", ["02_sft.py --init", "03_dpo.py --init", "04_rlvr.py --init",
                                 "01_pretrain.py --resume", "02_sft.py --resume", "gpt_mini.chat --runs"])
def test_no_entry_point_runs_the_code_in_a_crafted_checkpoint(how, tmp_path, monkeypatch, capsys):
    # run in this process, as the learner's command line would (fast: torch is imported already)
    marker = tmp_path / "ran"
    evil_dir = str(tmp_path / "runs" / "sft")
    path = write_malicious_checkpoint(os.path.join(evil_dir, "model.pt"), marker)
    script, *flags = stage_commands(tmp_path, evil_dir)[how]
    monkeypatch.setattr(sys, "argv", [script, *flags])
    # a stage raises the library's UserError, which its command line prints as one sentence (the excepthook of
    # errors.print_user_errors_as_one_sentence, tested through a real process in test_stages); chat exits
    with pytest.raises((SystemExit, UserError)) as stop:
        if script.endswith(".py"):
            runpy.run_path(os.path.join(ROOT, script), run_name="__main__")
        else:
            importlib.import_module(script).main()
    if isinstance(stop.value, SystemExit):
        assert stop.value.code not in (0, None)
        said = str(stop.value.code) + capsys.readouterr().err  # the exit message, or what chat printed first
    else:
        said = str(stop.value)
    assert not marker.exists(), "the checkpoint's command ran"
    assert f"{path} was refused unread: loading it would call Python code" in said, said[-2000:]


def test_extra_data_is_saved_as_plain_data_that_loads_safely(tmp_path):
    path = str(tmp_path / "model.pt")
    extra = {"args": argparse.Namespace(out=pathlib.Path("runs/sft"), lr=np.float64(1e-3), steps=np.int64(5)),
             "curve": np.array([1.0, 2.0]), "betas": (0.9, 0.95)}
    checkpoint.save_checkpoint(path, tiny_model(), "sft", 3, extra=extra)
    assert checkpoint.objects_needing_code(path) == []
    saved = checkpoint.load_checkpoint(path)["extra"]
    assert saved["args"] == {"out": "runs/sft", "lr": 1e-3, "steps": 5}
    assert type(saved["args"]["lr"]) is float and type(saved["args"]["steps"]) is int
    assert torch.equal(saved["curve"], torch.tensor([1.0, 2.0], dtype=torch.float64))
    assert saved["betas"] == (0.9, 0.95)
    with pytest.raises(TypeError, match="only tensors and plain data, not a RunsACommand"):
        checkpoint.save_checkpoint(path, tiny_model(), "sft", 4, extra={"x": RunsACommand("true")})
    assert checkpoint.load_checkpoint(path)["step"] == 3  # the refused save left the last good file


def test_an_older_checkpoint_of_ones_own_is_refused_with_the_way_to_convert_it(tmp_path):
    # what an older gpt_mini could have written: argparse.Namespace and a path object in "extra"
    path = str(tmp_path / "model.pt")
    checkpoint.save_checkpoint(path, tiny_model(), "sft", 7)
    state = torch.load(path, weights_only=True)
    state["extra"] = {"args": argparse.Namespace(out=pathlib.Path("runs/sft"), lr=np.float32(0.5))}
    torch.save(state, path)
    with pytest.raises(checkpoint.CheckpointError) as refused:
        checkpoint.load_checkpoint(path)
    assert str(refused.value) == (
        f"{path} was refused unread: it holds Python objects (argparse.Namespace, numpy._core.multiarray.scalar, "
        f"numpy.dtype, pathlib.PosixPath) where a gpt_mini checkpoint holds only tensors and plain data; if you "
        f"wrote it yourself, convert it once with: python -m gpt_mini.checkpoint --convert {path}")
    result = run_script(["-m", "gpt_mini.checkpoint", "--convert", path])
    assert result.returncode == 0, result.stderr
    converted = checkpoint.load_checkpoint(path)
    assert converted["step"] == 7 and converted["extra"] == {"args": {"out": "runs/sft", "lr": 0.5}}
    weights = checkpoint.model_from_checkpoint(converted).state_dict()
    for a, b in zip(tiny_model().state_dict().values(), weights.values()):
        assert torch.equal(a, b)


def test_convert_never_unpickles_a_file_that_asks_for_code(tmp_path):
    marker = tmp_path / "ran"
    path = write_malicious_checkpoint(str(tmp_path / "model.pt"), marker)
    result = run_script(["-m", "gpt_mini.checkpoint", "--convert", path])
    assert result.returncode == 1 and not marker.exists()
    system = f"{os.system.__module__}.system"  # posix.system here, nt.system on Windows
    assert result.stderr.strip() == (f"error: {path} was refused unread: loading it would call Python code "
                                     f"({system}), which no gpt_mini checkpoint needs, so do not open it any "
                                     f"other way")


def test_checkpoints_written_by_every_stage_load_safely(quick_runs):
    for folder in ("pretrain", "sft", "dpo/beta-0.1", "rlvr"):
        path = str(quick_runs / folder / "model.pt")
        assert checkpoint.objects_needing_code(path) == []
        torch.load(path, weights_only=True)
