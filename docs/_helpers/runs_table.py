"""Recorded runs (``docs/runs/<name>/``) and the write-up's log, side by side in one table."""

from __future__ import annotations

import json
import math

import original_log
from site_kit import DOCS_DIR, md_table, returns_printed

RUNS_DIR = DOCS_DIR / "runs"

#: What the write-up states about its run (its text, not a measurement of this package).
WRITE_UP = {"data": "CIFAR-10 (official)", "device": "GPU (model not stated)", "time": "about an hour (stated)"}


def recorded_runs() -> list[tuple[str, dict, list[dict]]]:
    """``[(name, meta, history), ...]`` for every ``docs/runs/<name>/`` with a ``history.json``."""
    runs = []
    if RUNS_DIR.is_dir():
        for folder in sorted(p for p in RUNS_DIR.iterdir() if p.is_dir()):
            history_file, meta_file = folder / "history.json", folder / "meta.json"
            if not history_file.is_file():
                continue
            if not meta_file.is_file():
                raise FileNotFoundError(f"docs: {folder} has history.json but no meta.json (machine, device, data, "
                                        "command, date)")
            runs.append((folder.name, json.loads(meta_file.read_text()), json.loads(history_file.read_text())))
    return runs


def run_config(name: str) -> dict:
    """The run's ``config.json`` (the trainer's effective settings)."""
    return json.loads((RUNS_DIR / name / "config.json").read_text())


def meta_field(meta: dict, word: str) -> str:
    """The first meta.json value whose key contains ``word`` ("data" matches "data_set", not "date")."""
    for key, value in meta.items():
        if word in key.lower():
            return str(value)
    return "?"


def percent(value) -> float:
    return 100.0 * value if value <= 1.0 else float(value)


def _precision(config: dict) -> str:
    return {"off": "float32", "bf16": "bfloat16 autocast", "fp16": "float16 autocast"}[config["amp"]]


def data_variant(meta: dict) -> str:
    """The data-set variant: the words before the colon of meta.json's ``data_set``."""
    return meta_field(meta, "data").split(":")[0]


def short_variant(data: str) -> str:
    """The short name of a variant for the table: "official" or "JPEG copy"."""
    return "JPEG copy" if "JPEG" in data else "official" if "official" in data else data


def accuracy_cell(value: float, epoch: int | None = None) -> str:
    """A percentage that does not break across lines, with the epoch it was reached at."""
    text = f"{percent(value):.2f}&nbsp;%"
    return text if epoch is None else f"{text} (epoch&nbsp;{epoch})"


def planned_epochs(config: dict) -> int:
    """The epochs the run's schedule was made for.

    A one-cycle rate is laid out over the run's own ``epochs``; a constant rate has no end, so a
    run stopped early (``--epochs 2``) is the first part of its recipe's full run.
    """
    from cifar_alexnet.training.recipes import RECIPES

    return config["epochs"] if config["schedule"] != "constant" else RECIPES[config["recipe"]].epochs


def is_complete(name: str, history: list[dict]) -> bool:
    """The run finished its schedule on the whole training set."""
    config = run_config(name)
    return len(history) == planned_epochs(config) and config.get("limit_train") is None


@returns_printed
def published_vs_reproduced() -> None:
    """One row for the write-up and one for every recorded run."""
    log = original_log.parse_log()
    best = original_log.best(log)
    rows = [["the 2020 write-up", short_variant(WRITE_UP["data"]), WRITE_UP["device"], "float32",
             f"{log[-1]['epoch']} of 100", WRITE_UP["time"], accuracy_cell(best["test_acc"], best["epoch"]),
             f"**{accuracy_cell(log[-1]['test_acc'])}**", "no"]]
    for name, meta, history in recorded_runs():
        config = run_config(name)
        top = max(history, key=lambda r: r["test_acc"])
        minutes = sum(r.get("epoch_time_s", 0.0) for r in history) / 60
        subset = "" if config.get("limit_train") is None else f", {config['limit_train']:,}-image subset"
        rows.append([f"[`{name}`](#run-{name})", short_variant(data_variant(meta)) + subset,
                     meta_field(meta, "device").upper(), _precision(config),
                     f"{len(history)} of {planned_epochs(config)}", f"{minutes:.0f}&nbsp;min",
                     accuracy_cell(top["test_acc"], top["epoch"]), f"**{accuracy_cell(history[-1]['test_acc'])}**",
                     "flip" if config.get("tta_flip") else "no"])
    print(md_table(["run", "CIFAR-10", "device", "precision", "epochs", "training time", "best test acc.",
                    "final-epoch test acc.", "test-time aug."], rows, "lllllrrrl"))


def original_reproduction() -> tuple[str, dict, list[dict]] | None:
    """The longest recorded run of the original recipe on the whole training set: ``(name, meta, history)``."""
    runs = [(name, meta, history) for name, meta, history in recorded_runs()
            if run_config(name)["recipe"] == "original" and run_config(name).get("limit_train") is None]
    return max(runs, key=lambda run: len(run[2]), default=None)


def reproduction_sentence() -> str:
    """The original recipe as this package ran it, against the write-up: epochs run, final and best accuracy."""
    log = original_log.parse_log()
    best = original_log.best(log)
    run = original_reproduction()
    write_up = (f"the write-up's {best['test_acc']:.2f} % best (epoch {best['epoch']}) and "
                f"{log[-1]['test_acc']:.2f} % final ({WRITE_UP['data']}, GPU, float32)")
    if run is None:
        return f"No run of the original recipe is recorded yet; compare with {write_up}."
    name, meta, history = run
    top = max(history, key=lambda r: r["test_acc"])
    planned = planned_epochs(run_config(name))
    done = f"all {planned} of its epochs" if len(history) == planned else f"{len(history)} of its {planned} epochs"
    return (f"This package's run of the original recipe, `{name}`, has completed **{done}**: "
            f"**{percent(history[-1]['test_acc']):.2f} % test accuracy after its last epoch**, "
            f"{percent(top['test_acc']):.2f} % at its best (epoch {top['epoch']}, chosen on the test set, so "
            f"optimistic), on the {data_variant(meta)} with {_precision(run_config(name))}; against {write_up}.")


@returns_printed
def equal_epochs_table(every: int = 10) -> None:
    """The original recipe's run and the write-up's log at the same epochs: every ``every``-th the run reached."""
    run = original_reproduction()
    if run is None:
        return
    name, meta, history = run
    ours = {r["epoch"]: percent(r["test_acc"]) for r in history}
    rows = [[r["epoch"], f"{ours[r['epoch']]:.2f}&nbsp;%", f"{r['test_acc']:.2f}&nbsp;%",
             f"{ours[r['epoch']] - r['test_acc']:+.2f}"]
            for r in original_log.parse_log() if r["epoch"] % every == 0 and r["epoch"] in ours]
    print(md_table(["epoch", f"`{name}` ({short_variant(data_variant(meta))}, {_precision(run_config(name))})",
                    f"the write-up ({short_variant(WRITE_UP['data'])}, float32)", "difference (points)"], rows, "rrrr"))


@returns_printed
def headline() -> None:
    """One line for the home page: the best final-epoch accuracy of a complete run, and the write-up's."""
    log = original_log.parse_log()
    best = original_log.best(log)
    complete = [(name, meta, history) for name, meta, history in recorded_runs() if is_complete(name, history)]
    write_up = (f"the 2020 write-up reported {best['test_acc']:.2f} % at its best epoch and "
                f"{log[-1]['test_acc']:.2f} % at its last ({WRITE_UP['data']}, GPU)")
    print(reproduction_sentence() + " See [Training](training.md#the-original-recipe-reproduced).\n")
    if not complete:
        print(f"No complete run of this package is recorded yet; {write_up}.")
        return
    name, meta, history = max(complete, key=lambda run: run[2][-1]["test_acc"])
    config = run_config(name)
    print(f"This package's best complete run so far: **{percent(history[-1]['test_acc']):.2f} % test accuracy "
          f"after its last epoch** (`{name}`: recipe `{config['recipe']}`, {len(history)} epochs, "
          f"{meta_field(meta, 'device').upper()}, {_precision(config)}, {data_variant(meta)}"
          f"{', flip test-time augmentation' if config.get('tta_flip') else ''}); {write_up}. "
          "See [Training](training.md#published-and-reproduced).")


def smoothed_loss_floor(label_smoothing: float, num_classes: int = 10) -> float:
    """The smallest cross-entropy a model can reach against label-smoothed targets (in nats).

    The target puts ``1 - eps + eps/K`` on the right class and ``eps/K`` on each other class;
    the loss is smallest when the predicted distribution equals the target, and then equals
    the target's entropy.
    """
    eps, k = label_smoothing, num_classes
    probs = [1 - eps + eps / k] + [eps / k] * (k - 1)
    return -sum(p * math.log(p) for p in probs if p > 0)


@returns_printed
def label_smoothing_note() -> None:
    """The smoothing floor, computed, beside the losses of each run trained with label smoothing."""
    for name, meta, history in recorded_runs():
        eps = run_config(name)["label_smoothing"]
        if eps == 0:
            continue
        last = history[-1]
        print(f"- `{name}` (label smoothing {eps:g}): after epoch {last['epoch']}, training loss "
              f"{last['train_loss']:.3f}, test loss {last['test_loss']:.3f}; the floor of a smoothed training loss "
              f"for 10 classes is {smoothed_loss_floor(eps):.3f}.")
