"""The training page's "published and reproduced" table and the home page's headline.

The table is built by ``docs/_helpers/runs_table.py`` from ``docs/runs/*/`` and the write-up's
transcribed log; here each row is recomputed from those files directly, and the label-smoothing
floor quoted beside the losses is checked against PyTorch's own smoothed cross-entropy.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

REPO_ROOT = Path(__file__).resolve().parents[2]
HELPERS = REPO_ROOT / "docs" / "_helpers"
RUNS = REPO_ROOT / "docs" / "runs"


@pytest.fixture(scope="module")
def helpers():
    sys.path.insert(0, str(HELPERS))
    try:
        import original_log
        import runs_table
    finally:
        sys.path.remove(str(HELPERS))
    return runs_table, original_log


def _table_rows(markdown: str) -> list[list[str]]:
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def test_equal_epochs_table_pairs_the_run_with_the_write_up_epoch_by_epoch(helpers):
    """Every 10th epoch both reached, each accuracy read back from history.json and the write-up's log."""
    runs_table, original_log = helpers
    name = "original-bf16"
    history = {r["epoch"]: r["test_acc"] for r in json.loads((RUNS / name / "history.json").read_text())}
    log = {r["epoch"]: r["test_acc"] for r in original_log.parse_log()}
    rows = _table_rows(runs_table.equal_epochs_table())
    expected = [e for e in range(10, 101, 10) if e in history and e in log]
    assert [int(row[0]) for row in rows] == expected and len(expected) >= 4
    for row in rows:
        epoch = int(row[0])
        assert row[1] == f"{history[epoch]:.2f}&nbsp;%" and row[2] == f"{log[epoch]:.2f}&nbsp;%"
        assert float(row[3]) == pytest.approx(history[epoch] - log[epoch], abs=0.006)
    assert runs_table.equal_epochs_table(every=5).count("\n") > runs_table.equal_epochs_table().count("\n")


def test_one_row_per_recorded_run_plus_the_write_up(helpers):
    runs_table, original_log = helpers
    rows = _table_rows(runs_table.published_vs_reproduced())
    names = sorted(p.name for p in RUNS.iterdir() if (p / "history.json").is_file())
    assert len(rows) == 1 + len(names)
    log = original_log.parse_log()
    write_up = rows[0]
    assert write_up[6] == f"{max(r['test_acc'] for r in log):.2f}&nbsp;% (epoch&nbsp;60)"
    assert write_up[7] == f"**{log[-1]['test_acc']:.2f}&nbsp;%**" == "**89.90&nbsp;%**"
    for name, row in zip(names, rows[1:]):
        history = json.loads((RUNS / name / "history.json").read_text())
        config = json.loads((RUNS / name / "config.json").read_text())
        assert f"`{name}`" in row[0]
        assert row[7] == f"**{history[-1]['test_acc']:.2f}&nbsp;%**", name  # the headline: the last epoch
        best = max(history, key=lambda r: r["test_acc"])
        assert row[6] == f"{best['test_acc']:.2f}&nbsp;% (epoch&nbsp;{best['epoch']})", name
        assert row[4].startswith(f"{len(history)} of "), name
        assert row[8] == ("flip" if config["tta_flip"] else "no"), name
        meta = json.loads((RUNS / name / "meta.json").read_text())
        assert row[1].startswith("JPEG copy") == ("JPEG" in meta["data_set"]), name


def test_headline_names_the_best_complete_run(helpers):
    runs_table, _ = helpers
    complete = []
    for folder in sorted(p for p in RUNS.iterdir() if (p / "history.json").is_file()):
        history = json.loads((folder / "history.json").read_text())
        config = json.loads((folder / "config.json").read_text())
        if config["limit_train"] is None and len(history) == runs_table.planned_epochs(config):
            complete.append((history[-1]["test_acc"], folder.name))
    line = runs_table.headline()
    if not complete:
        assert line.startswith("No complete run")
        return
    accuracy, name = max(complete)
    assert f"**{accuracy:.2f} % test accuracy after its last epoch** (`{name}`" in line
    assert "90.34 %" in line and "89.90 %" in line


def test_planned_epochs_of_a_stopped_constant_rate_run_is_the_recipes(helpers):
    runs_table, _ = helpers
    from cifar_alexnet.training.recipes import RECIPES

    stopped = {"recipe": "original", "schedule": "constant", "epochs": 2}
    assert runs_table.planned_epochs(stopped) == RECIPES["original"].epochs
    assert runs_table.planned_epochs({"recipe": "fast", "schedule": "onecycle", "epochs": 7}) == 7


@settings(max_examples=50, deadline=None)
@given(eps=st.floats(0.01, 0.9), k=st.integers(2, 100))
def test_smoothed_loss_floor_is_pytorchs_minimum(helpers, eps, k):
    """At logits equal to the log of the smoothed target, PyTorch's loss equals the floor; elsewhere it is higher."""
    runs_table, _ = helpers
    floor = runs_table.smoothed_loss_floor(eps, k)
    target = torch.full((1, k), eps / k, dtype=torch.float64)
    target[0, 0] += 1 - eps
    at_target = F.cross_entropy(target.log(), torch.tensor([0]), label_smoothing=eps).item()
    assert at_target == pytest.approx(floor, rel=1e-12, abs=1e-12)
    other = target.log() + torch.linspace(-1, 1, k, dtype=torch.float64)
    assert F.cross_entropy(other, torch.tensor([0]), label_smoothing=eps).item() > floor - 1e-12


def test_no_smoothing_no_floor(helpers):
    runs_table, _ = helpers
    assert runs_table.smoothed_loss_floor(0.0) == 0.0


def test_fast_recipe_runs_headline_their_last_epoch(helpers):
    """The fast recipe's table: one row per recorded CPU run, each read back from its history.json; its
    sentence names exactly the runs whose last epoch reached the write-up's best."""
    sys.path.insert(0, str(HELPERS))
    try:
        import training_pages
    finally:
        sys.path.remove(str(HELPERS))
    names = sorted(p.name for p in RUNS.iterdir() if (p / "history.json").is_file()
                   and json.loads((p / "config.json").read_text())["recipe"] == "fast")
    assert names, "no recorded run of the fast recipe"
    runs = [(name, json.loads((RUNS / name / "meta.json").read_text()),
             json.loads((RUNS / name / "history.json").read_text())) for name in names]
    text = training_pages.fast_runs_in_epochs(runs)
    rows = _table_rows(text)
    assert len(rows) == len(names)
    for (name, _, history), row in zip(runs, rows):
        config = json.loads((RUNS / name / "config.json").read_text())
        best = max(history, key=lambda r: r["test_acc"])
        assert f"`{name}`" in row[0] and row[1] == f"{len(history)} of {config['epochs']}"
        assert row[2] == ("JPEG copy" if "JPEG" in json.loads((RUNS / name / "meta.json").read_text())["data_set"]
                          else "official")
        assert row[3] == f"**{history[-1]['test_acc']:.2f}&nbsp;%**"
        assert row[4] == f"{best['test_acc']:.2f}&nbsp;% (epoch&nbsp;{best['epoch']})"
    reached = [f"`{name}`" for name, _, history in runs if history[-1]["test_acc"] >= 90.34]
    assert f"reached 90.34 %: {', '.join(reached) or 'none yet'}." in text
    assert "90.34 % (official test set), came at epoch 60" in text
    original = json.loads((RUNS / "original-bf16" / "history.json").read_text())
    best = max(r["test_acc"] for r in original)
    beaten = sum(history[-1]["test_acc"] > best for _, _, history in runs)
    assert f"its best epoch, {best:.2f} %, is below the last epoch of {beaten} of these {len(runs)} fast runs" in text
