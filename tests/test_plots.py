"""The figures are legible where the lessons show them: about 810 px wide (a click opens them full size).

A text's height on the page is its size in points x 810 / (72 x the figure's width in inches), whatever
the dpi, so each figure is checked as drawn: its width, its smallest text and how its panels are laid out.
"""

import json
import os

import pytest
from conftest import ROOT

from gpt_mini import plots, sweep

PAGE_PX = 810
MIN_TEXT_PX = 10.5


@pytest.fixture
def drawn(monkeypatch):
    """Every figure save_figure writes, as (figure width in inches, smallest text in points, the axes' boxes)."""
    seen = []
    save = plots.save_figure

    def keep(fig, out_png, title=None, dpi=110):
        if title:
            fig.suptitle(title, fontsize=plots.FONT["suptitle"])
        fig.canvas.draw()
        texts = [t for t in fig.findobj(lambda a: hasattr(a, "get_fontsize") and hasattr(a, "get_text"))
                 if t.get_visible() and t.get_text().strip() and t.get_window_extent().width > 0]
        seen.append({"width": fig.get_figwidth(), "smallest": min(t.get_fontsize() for t in texts),
                     "texts": {t.get_text() for t in texts},
                     "boxes": [ax.get_position().bounds for ax in fig.axes]})
        return save(fig, out_png, None, dpi)

    for module in (plots, sweep):
        monkeypatch.setattr(module, "save_figure", keep)
    return seen


def _legible(figure):
    assert figure["smallest"] * PAGE_PX / (72 * figure["width"]) >= MIN_TEXT_PX, figure


def _columns(figure):
    return len({round(x, 2) for x, _, _, _ in figure["boxes"]})


def _records(steps=400):
    keys = ["loss", "rewards/margins", "rewards/accuracies", "logps/chosen", "logps/rejected", "reward", "kl",
            "accuracy", "margin", "unigram", "assistant_loss", "greedy_accuracy", "pass@8", "sample_accuracy"]
    out = []
    for step in range(0, steps + 1, 100):
        out.append({"split": "train", "step": step, **{k: 0.5 + step / 1000 for k in keys}})
        out.append({"split": "eval", "step": step, **{k: 0.4 + step / 1000 for k in keys},
                    **{f"eval/{k}": 0.3 + step / 1000 for k in keys}, "eval/kl": step / 500,
                    "eval/abs_logratio": step / 700, "eval/accuracy": 0.9, "eval/loss": 0.6, "eval/margin": 1.0})
    return out


@pytest.mark.parametrize("stage", ["pretrain", "sft", "dpo", "reward_model", "rlvr"])
def test_every_stage_curves_are_legible_at_page_width(drawn, tmp_path, stage):
    png, title, panels = plots.stage_curves(stage, beta=0.1, pass_k=8)
    out = plots.plot_curves(_records(), panels, str(tmp_path / png), title=title)
    assert os.path.getsize(out) > 1000
    (figure,) = drawn
    _legible(figure)
    assert len(figure["boxes"]) == len(panels)
    assert _columns(figure) <= 3  # a grid, never a strip of five
    if len(panels) == 5:  # DPO: two to a row, the fifth centred under them
        assert _columns(figure) == 3 and len({round(y, 2) for _, y, _, _ in figure["boxes"]}) == 3


def test_token_logratios_are_legible_and_every_token_is_labelled(drawn, tmp_path):
    rude = ["What", "e", "v", "er", ".", " Pisor", "'s", " favourite", " colour", " is", " purple", ",", " not",
            " yellow", ",", " so", " that", " is", " not", " correct", ".", " L", "o", "ok", " ", "it", " ", "u",
            "p", " y", "o", "ur", "s", "el", "f", ".", "<|end|>", "$5", "\n"]
    views = [{"title": "held-out pair, rejected = sycophancy", "chosen": [(" Nibro", 1.7), (" is", 0.0)],
              "rejected": [("Y", -6.2), ("es", 0.0)]},
             {"title": "held-out pair, rejected = rude", "chosen": [(" Pisor", 3.6)],
              "rejected": [(t, -i / 4) for i, t in enumerate(rude)]}]
    plots.plot_token_logratios(views, str(tmp_path / "t.png"), title="log-ratios")
    (figure,) = drawn
    _legible(figure)
    rows = [round(y, 2) for _, y, _, _ in figure["boxes"]]
    assert len(rows) == 4 and rows[0] == rows[1] != rows[2] == rows[3]  # one row per pair: chosen | rejected
    for label in ("What", " favourite", "<|end|>", "␣", r"\$5", r"\n", "chosen (sum +3.60)"):
        assert label in figure["texts"], label


def _summary(beta):
    after = {k: 0.5 for k, _ in sweep.SWEEP_RATES + sweep.SWEEP_SIDE_EFFECTS}
    return {"beta": beta, "held_out": {k: beta for k in sweep.SWEEP_HELD_OUT}, "after": after, "metrics": {}}


def test_beta_sweep_is_a_legible_grid_with_every_panel(drawn, tmp_path):
    for beta in (0.01, 0.1, 0.5, 1.0):
        (tmp_path / f"beta-{beta:g}").mkdir()
        (tmp_path / f"beta-{beta:g}" / "summary.json").write_text(json.dumps(_summary(beta)))
    path, table = sweep.plot_beta_sweep(str(tmp_path))
    assert os.path.getsize(path) > 1000 and len(table.splitlines()) == 5
    (figure,) = drawn
    _legible(figure)
    assert len(figure["boxes"]) == 5 and _columns(figure) == 2
    for text in ("held-out preference accuracy", "held-out reward margin (β·Δ)",
                 "held-out token KL to the reference", "claims the model knows (held-out, greedy)",
                 "side effects (held-out, greedy)", "0.01", "0.5", "rude replies", "sums step by step"):
        assert text in figure["texts"], text


def test_committed_figures_are_not_strips_and_stay_small():
    folder = os.path.join(ROOT, "lessons", "figures")
    for name in sorted(os.listdir(folder)):
        if name.endswith(".png"):
            with open(os.path.join(folder, name), "rb") as f:
                head = f.read(24)
            width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
            assert width <= 2.5 * height and width <= 1600, (name, width, height)
            assert os.path.getsize(os.path.join(folder, name)) < 300_000, name
