"""Checkpoints: atomic writes survive a kill, and wrong checkpoints are refused with a sentence."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from gpt_mini import checkpoint
from gpt_mini.model import GPT, GPTConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=1200, block_size=16, n_layer=1, n_head=1, n_embd=8))


def test_round_trip_keeps_weights_config_stage_and_step(tmp_path):
    model = tiny_model()
    path = str(tmp_path / "model.pt")
    checkpoint.save_checkpoint(path, model, "sft", 42, extra={"note": "x"})
    state = checkpoint.load_checkpoint(str(tmp_path), expected_stages=["sft"])
    assert state["stage"] == "sft" and state["step"] == 42 and state["extra"] == {"note": "x"}
    loaded = checkpoint.model_from_checkpoint(state)
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)
    assert [f for f in os.listdir(tmp_path)] == ["model.pt"]  # no temp file left behind


def test_a_kill_during_the_write_leaves_the_previous_checkpoint_loadable(tmp_path):
    path = str(tmp_path / "model.pt")
    checkpoint.save_checkpoint(path, tiny_model(0), "pretrain", 100)
    # a second process starts writing step 200 and dies half way through torch.save
    script = textwrap.dedent(f"""
        import os, sys, torch
        sys.path.insert(0, {ROOT!r})
        from gpt_mini import checkpoint
        from gpt_mini.model import GPT, GPTConfig
        real_save = torch.save
        def dying_save(obj, f):
            real_save(obj, f)
            with open(f, "r+b") as fh:
                fh.truncate(os.path.getsize(f) // 2)   # half-written file ...
            os._exit(9)                                 # ... and the process is killed
        torch.save = dying_save
        torch.manual_seed(1)
        model = GPT(GPTConfig(vocab_size=1200, block_size=16, n_layer=1, n_head=1, n_embd=8))
        checkpoint.save_checkpoint({path!r}, model, "pretrain", 200)
    """)
    result = subprocess.run([sys.executable, "-c", script])
    assert result.returncode == 9
    state = checkpoint.load_checkpoint(path)
    assert state["step"] == 100  # the old checkpoint, intact
    torch.testing.assert_close(checkpoint.model_from_checkpoint(state).wte.weight, tiny_model(0).wte.weight)


def test_wrong_stage_is_refused_with_a_sentence(tmp_path):
    checkpoint.save_checkpoint(str(tmp_path / "model.pt"), tiny_model(), "pretrain", 1)
    with pytest.raises(checkpoint.CheckpointError, match="is a 'pretrain' checkpoint, but this needs one of: sft"):
        checkpoint.load_checkpoint(str(tmp_path), expected_stages=["sft"])


def test_missing_corrupt_and_foreign_files_are_refused(tmp_path):
    with pytest.raises(checkpoint.CheckpointError, match="no checkpoint at"):
        checkpoint.load_checkpoint(str(tmp_path / "nothing"))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(checkpoint.CheckpointError, match="not a readable checkpoint"):
        checkpoint.load_checkpoint(str(tmp_path / "junk.pt"))
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(checkpoint.CheckpointError, match="not a gpt_mini checkpoint"):
        checkpoint.load_checkpoint(str(tmp_path / "other.pt"))


def test_checkpoint_of_another_tokenizer_is_refused(tmp_path):
    path = str(tmp_path / "model.pt")
    checkpoint.save_checkpoint(path, tiny_model(), "sft", 1)
    state = torch.load(path, weights_only=True)
    state["tokenizer_id"] = "0000000000000000"
    torch.save(state, path)
    with pytest.raises(checkpoint.CheckpointError, match="different tokenizer"):
        checkpoint.load_checkpoint(path)


def test_resume_refuses_a_different_model_shape(tmp_path):
    path = str(tmp_path / "model.pt")
    checkpoint.save_checkpoint(path, tiny_model(), "pretrain", 5)
    other = GPT(GPTConfig(vocab_size=1200, block_size=16, n_layer=2, n_head=1, n_embd=8))
    with pytest.raises(checkpoint.CheckpointError, match="model config"):
        checkpoint.resume_if_asked(True, path, "pretrain", other, None)
    assert checkpoint.resume_if_asked(False, path, "pretrain", other, None) == (0, None)


def test_a_metrics_line_cut_short_by_a_kill_does_not_break_resume(tmp_path):
    from gpt_mini.runlog import MetricsLogger, read_metrics
    path = str(tmp_path / "metrics.jsonl")
    log = MetricsLogger(path)
    for step in (10, 20, 30):
        log.log({"step": step, "split": "train", "loss": 1.0 / step})
    with open(path, "a") as f:
        f.write('{"step": 40, "split": "tr')  # the process died in the middle of this write
    assert [r["step"] for r in read_metrics(path)] == [10, 20, 30]
    MetricsLogger(path, resume_step=20)  # --resume from the step-20 checkpoint
    assert [r["step"] for r in read_metrics(path)] == [10, 20]
