"""``--resume --epochs N`` never changes what the rest of a run computes.

The attack: a one-cycle run resumed with a larger ``--epochs`` jumped from a learning rate of
0.02 back to 0.06, and a shorter ``--epochs`` was accepted. The schedule is a pure function of
the step and the run's length (``training/optim.learning_rate``), so the tests show both what
a change of length would do to the rate and that ``--resume`` refuses it, before any set-up.
"""

from __future__ import annotations

import json

import pytest

from cifar_alexnet.cli import main
from cifar_alexnet.errors import OptionsError
from cifar_alexnet.training.optim import learning_rate
from cifar_alexnet.training.recipes import config_for_resume, config_from_recipe


def _stored_run(tmp_path, recipe: str, epochs: int):
    run_dir = tmp_path / f"{recipe}-run"
    run_dir.mkdir()
    config = config_from_recipe(recipe, epochs=epochs, out=str(run_dir))
    (run_dir / "config.json").write_text(json.dumps(config.to_json()))
    return run_dir, config


def test_a_longer_one_cycle_run_would_raise_the_rate_of_the_steps_to_come(tmp_path):
    """Why the refusal matters: step 900 of 10 epochs x 100 steps, laid out over 10 or over 30 epochs."""
    _, config = _stored_run(tmp_path, "fast", 10)
    as_run = learning_rate(config, 900, 10 * 100)
    longer = learning_rate(config_from_recipe("fast", epochs=30), 900, 30 * 100)
    assert longer > 3 * as_run


@pytest.mark.parametrize("epochs", [5, 11, 30])
def test_resume_refuses_any_other_epochs_for_a_one_cycle_run(tmp_path, epochs):
    run_dir, _ = _stored_run(tmp_path, "fast", 10)
    with pytest.raises(OptionsError, match="--epochs"):
        config_for_resume(run_dir, epochs=epochs)
    assert config_for_resume(run_dir, epochs=10).epochs == 10  # the run's own length is fine


def test_resume_may_extend_a_constant_rate_run_but_never_shorten_it(tmp_path):
    run_dir, _ = _stored_run(tmp_path, "original", 10)
    assert config_for_resume(run_dir, epochs=20).epochs == 20
    with pytest.raises(OptionsError, match="may only extend it"):
        config_for_resume(run_dir, epochs=9)


def test_the_command_line_refuses_it_in_one_line_before_any_work(tmp_path, capsys):
    run_dir, _ = _stored_run(tmp_path, "fast", 10)
    assert main(["train", "--resume", str(run_dir), "--epochs", "12"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "onecycle" in err
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.json"]  # nothing locked, nothing written
