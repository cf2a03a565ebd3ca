"""The training page: recipes, recorded runs, the write-up's log and the benchmark results."""

from __future__ import annotations

import re
from pathlib import Path

from runs_table import RUNS_DIR, meta_field, percent, recorded_runs, run_config
from figure_kit import C, figure_svg, new_figure
from site_kit import DOCS_DIR, REPO_ROOT, fence, indent, md_table, returns_printed


RESULTS_DIRS = (DOCS_DIR / "results", REPO_ROOT / "bench" / "results")
#: Images in CIFAR-10's training split (the official archive and the JPEG copy alike): one epoch.
CIFAR10_TRAIN_IMAGES = 50_000


def recipe_source(name: str) -> str:
    """The source of the recipe constant (``ORIGINAL``, ``FAST``) in recipes.py, with its comments."""
    import ast

    from cifar_alexnet.training import recipes

    path = Path(recipes.__file__)
    text = path.read_text(encoding="utf-8")
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return fence(ast.get_source_segment(text, node), title="cifar_alexnet/training/recipes.py")
    raise KeyError(f"recipes.py has no constant {name}")


@returns_printed
def recipe_table() -> None:
    """Every hyperparameter of every recipe, side by side (run options such as paths are left out)."""
    from dataclasses import fields

    from cifar_alexnet.training.recipes import RECIPES

    names = list(RECIPES)
    rows = []
    for f in fields(next(iter(RECIPES.values()))):
        if f.metadata["kind"] != "hyperparameter":
            continue
        values = [getattr(RECIPES[n], f.name) for n in names]
        cells = [f"`{v!r}`" for v in values]
        if len(set(map(repr, values))) > 1:
            cells = [f"**{c}**" for c in cells]
        rows.append([f"`{f.name}`"] + cells)
    print(md_table(["field"] + [f"`{n}`" for n in names], rows, "l" + "l" * len(names)))


@returns_printed
def runs_section() -> None:
    """Metadata and curves of each recorded run, or a plain statement that there is none."""
    runs = recorded_runs()
    if not runs:
        print("No measured run has been recorded in this repository yet (`docs/runs/` holds none), so this "
              "page shows no accuracy of this package. Only measured runs appear here.")
        return
    for name, meta, history in runs:
        print(f'\n### Run `{name}` {{ #run-{name} }}\n')
        print(md_table(["field of meta.json", "value"], [[f"`{k}`", _code(v if not isinstance(v, (dict, list)) else repr(v))]
                                                      for k, v in meta.items()], "ll"))
        print()
        print(run_curves(name, history))


def run_curves(name: str, history: list[dict]) -> str:
    """Accuracy and loss per epoch of a recorded run, with the write-up's published accuracies as markers."""
    from cifar_alexnet.training.curves import ORIGINAL_PUBLISHED_ACCURACY

    epochs = [row["epoch"] for row in history]
    fig, (ax_acc, ax_loss) = new_figure(470, 560, nrows=2, sharex=True)
    ax_acc.plot(epochs, [percent(r["train_acc"]) for r in history], color=C.blue, label="train (running, augmented)")
    ax_acc.plot(epochs, [percent(r["test_acc"]) for r in history], color=C.orange, label="test")
    ax_loss.plot(epochs, [r["train_loss"] for r in history], color=C.blue)
    ax_loss.plot(epochs, [r["test_loss"] for r in history], color=C.orange)
    published = sorted(e for e in ORIGINAL_PUBLISHED_ACCURACY if e <= max(epochs))
    if published:
        ax_acc.plot(published, [ORIGINAL_PUBLISHED_ACCURACY[e][1] for e in published], "s", mfc="none", ms=8,
                    color=C.fg, label="write-up: test (published)")
    ax_acc.set_ylabel("accuracy (%)")
    ax_loss.set_ylabel("loss")
    ax_loss.set_xlabel("epoch")
    for ax in (ax_acc, ax_loss):
        ax.grid(alpha=0.5)
    ax_acc.legend(loc="upper center", bbox_to_anchor=(0.5, 1.02 + 0.09 * (2 + bool(published))), ncol=1)
    fig.tight_layout()
    return figure_svg(fig, f"curves of {name}", (
        f"Run {name}: accuracy (top) and loss (bottom) per epoch, from its `history.json`"
        + ("; squares: the write-up's published test accuracies (official CIFAR-10)." if published else ".")))


@returns_printed
def reproduction_section() -> None:
    """The original recipe's run beside the write-up's log: a sentence and test accuracy per epoch, curve over curve."""
    import original_log
    from runs_table import original_reproduction, reproduction_sentence

    print(reproduction_sentence() + "\n")
    run = original_reproduction()
    if run is None:
        return
    name, _, history = run
    log = original_log.parse_log()
    fig, ax = new_figure(470, 380)
    ax.plot([r["epoch"] for r in history], [percent(r["test_acc"]) for r in history], color=C.orange,
            label=f"this package, {name} (JPEG copy)")
    ax.plot([r["epoch"] for r in log], [r["test_acc"] for r in log], "s-", mfc="none", ms=7, color=C.fg,
            label="the write-up (official data, every 5th epoch)")
    ax.set_xlim(0, 101)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.5)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2))
    print(figure_svg(fig, "test accuracy per epoch: this package's run of the original recipe and the write-up's log"))


@returns_printed
def original_log_section() -> None:
    """The transcribed log as a table and a figure; checked against plots.ORIGINAL_PUBLISHED_ACCURACY."""
    import original_log
    from cifar_alexnet.training.curves import ORIGINAL_PUBLISHED_ACCURACY

    rows = original_log.parse_log()
    ours = {r["epoch"]: (r["eval_train_acc"], r["test_acc"]) for r in rows}
    if ours != dict(ORIGINAL_PUBLISHED_ACCURACY):
        raise ValueError("docs: the transcribed log disagrees with cifar_alexnet.training.curves.ORIGINAL_PUBLISHED_ACCURACY")
    fig, ax = new_figure(470, 330)
    epochs = [r["epoch"] for r in rows]
    ax.plot(epochs, [r["eval_train_acc"] for r in rows], "o-", color=C.blue, label='"train" (eval mode, augmented)')
    ax.plot(epochs, [r["test_acc"] for r in rows], "s-", color=C.orange, label="test")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.5)
    ax.legend(loc="lower right")
    fig.tight_layout()
    print(figure_svg(fig, "the original log"))
    print()
    best = original_log.best(rows)
    table = [[r["epoch"], f"{r['eval_train_acc']:.2f}", f"**{r['test_acc']:.2f}**" if r is best else
              f"{r['test_acc']:.2f}"] for r in rows]
    print('??? note "The log as a table"\n')
    print(indent(md_table(["epoch", '"train" acc. (%)', "test acc. (%)"], table, "rrr")))


def _code(value) -> str:
    """A table cell showing ``value`` as code; an empty value as a dash (no empty code span).

    Absolute paths of the machine a run was recorded on (``--out /work/runs/NAME``) are shown
    with their folder as ``<dir>``: they name a place on that machine, not one the reader has.
    """
    text = without_machine_paths(str(value))
    return f"`{text}`" if text else "–"


def without_machine_paths(text: str) -> str:
    """``/work/runs/name`` -> ``<dir>/name``: every absolute path keeps its last part only."""
    return re.sub(r"(?<![\w.~:/-])/(?:[\w.-]+/)+(?=[\w.-])", "<dir>/", text)


def _flatten(value, prefix=""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and len(value) > 8:
        yield prefix, f"({len(value)} values)"
    else:
        yield prefix, value


def result_files() -> list[Path]:
    files = []
    for folder in RESULTS_DIRS:
        if folder.is_dir():
            files += sorted(folder.glob("*.json"))
    return files


def _measured_results(benchmark: str) -> list[tuple[Path, dict]]:
    """``[(path, result), ...]`` of the result files written by ``benchmark``, ``--smoke`` runs left out."""
    import json

    found = [(path, json.loads(path.read_text())) for path in result_files()]
    return [(path, data) for path, data in found if data.get("benchmark") == benchmark and not data.get("smoke")]


def machine(result: dict) -> str:
    """The device a benchmark ran on: a GPU's name, or a CPU's model and vector instructions."""
    if result["device"] != "cpu":
        return f"`{result['device_name']}`"
    if "cpu_model" not in result:
        return f"CPU ({result['cpu_count']} cores; model not recorded)"
    units = "bfloat16 units" if result["cpu_bf16_units"] else "no bfloat16 units"
    return f"CPU ({result['cpu_model']}, {result['cpu_count']} cores, {result['cpu_capability']}, {units})"


@returns_printed
def throughput_section() -> None:
    """The training-throughput results (``bench/train_throughput.py``), one row per precision."""
    rows = []
    for path, data in _measured_results("train_throughput"):
        original, project = data["sides"]["original"], data["sides"]["project"]
        amp = data.get("project_amp", "off")
        rows.append([f"`{path.name}`", machine(data), "float32" if amp == "off" else f"{amp} autocast",
                     f"{original['images_per_s']:.1f}", f"{project['images_per_s']:.1f}",
                     f"{data['speedup_project_over_original']:.2f}x",
                     f"{data['matmul_flops_per_s'] / 1e9:,.0f} ({data.get('matmul_dtype', 'float32')})",
                     f"{100 * project['matmul_fraction']:.1f} %", f"`{data['command']}`"])
    if not rows:
        print("No training-throughput result has been recorded yet.")
        return
    print(md_table(["result", "machine", "project precision", "original loop img/s", "project img/s",
                    "project / original", "matmul GFLOP/s", "project / matmul", "command"], rows, "lllrrrrrl"))


@returns_printed
def step_profile_section() -> None:
    """``bench/step_profile.py`` results: time per kind of work in one training step, per precision."""
    profiles = _measured_results("step_profile")
    if not profiles:
        print("No step profile has been recorded yet.")
        return
    kinds = list(profiles[0][1]["kinds"])
    header = ["kind of work"] + [f"{d['precision']}: ms/step (share)" for _, d in profiles]
    header += [f"{d['precision']}: of {d['matmul_dtype']} matmul" for _, d in profiles]
    rows = []
    for kind in kinds:
        row = [kind]
        row += [f"{d['kinds'][kind]['ms_per_step']:.0f} ({100 * d['kinds'][kind]['share']:.1f} %)" for _, d in profiles]
        row += [f"{100 * d['kinds'][kind]['matmul_fraction']:.1f} %" if "matmul_fraction" in d["kinds"][kind] else ""
                for _, d in profiles]
        rows.append(row)
    print(md_table(header, rows, "l" + "r" * (len(header) - 1)))
    print()
    print("; ".join(f"`{d['command']}` on `{d['device_name']}` ({d['device']}), batch {d['batch_size']}: "
                    f"{d['images_per_s']:.1f} images/s without the profiler" for _, d in profiles) + ".")


@returns_printed
def results_section() -> None:
    """Every benchmark result file: a summary row each, then all its fields (nothing typed in).

    Results of a script's ``--smoke`` mode (``"smoke": true``) check that the script runs; they
    are not measurements and are left out.
    """
    import json

    measured, smoke = [], []
    for path in result_files():
        data = json.loads(path.read_text())
        (smoke if data.get("smoke") else measured).append((path, data))
    if not measured:
        print("No benchmark result has been recorded yet (`docs/results/` and `bench/results/` hold no "
              "measured JSON). The benchmark scripts under `bench/` write one when they are run.")
    else:
        rows = []
        for path, data in measured:
            ratios = [f"`{k}` = {v:.3g}" for k, v in _flatten(data)
                      if isinstance(v, (int, float)) and not isinstance(v, bool)
                      and re.search(r"speedup|ratio", k) and not k.startswith("targets")][:4]
            rows.append([f"`{path.relative_to(REPO_ROOT).as_posix()}`", f"`{data.get('benchmark', path.stem)}`",
                         f"`{data.get('device_name', data.get('device', '?'))}`",
                         data.get("date_utc", data.get("date", "")), "<br>".join(ratios) or "-"])
        print(md_table(["file", "benchmark", "device", "date", "ratios"], rows, "lllll"))
        for path, data in measured:
            rel = path.relative_to(REPO_ROOT).as_posix()
            table = md_table(["field", "value"], [[f"`{k}`", f"{v:,.4g}" if isinstance(v, float) else _code(v)]
                                                  for k, v in _flatten(data)], "ll")
            print(f'\n??? note "All fields of `{rel}`"\n\n{indent(table)}\n')
    if smoke:
        names = ", ".join(f"`{p.relative_to(REPO_ROOT).as_posix()}`" for p, _ in smoke)
        print(f"\nLeft out: {names} — written by a `--smoke` run, which checks that the script works and "
              "measures nothing.")


def _run_recipe(name: str) -> str | None:
    """The recipe of recorded run ``name``, from the ``config.json`` the trainer wrote (None if absent)."""
    return run_config(name).get("recipe") if (RUNS_DIR / name / "config.json").is_file() else None


@returns_printed
def fast_recipe_status() -> None:
    """The fast recipe's time to accuracy in epochs, from the recorded runs; no GPU claim unless one was measured."""
    if fast_recipe_measured_on_gpu():
        print("A recorded run or benchmark result below measured it on a GPU.")
        return
    paragraphs = ["The fast recipe has **not been run on a GPU in this project yet**: it was written on machines "
                  "without one, so no GPU time or speed is claimed for it. `bench/gpu.py` measures them."]
    cpu_runs = [(name, meta, history) for name, meta, history in recorded_runs()
                if _run_recipe(name) == "fast" and meta.get("device") == "cpu"]
    if cpu_runs:
        paragraphs.append("Its accuracy was measured on CPUs. Epochs, unlike minutes, do not depend on the machine:")
        paragraphs.append(fast_runs_in_epochs(cpu_runs))
    else:
        paragraphs.append("No accuracy is claimed for it either.")
    print('!!! warning "Not measured on a GPU yet"\n\n' + indent("\n\n".join(paragraphs)) + "\n")


def fast_runs_in_epochs(runs: list[tuple[str, dict, list[dict]]]) -> str:
    """The fast recipe's runs in a table (epochs, final and best accuracy, speed), then the write-up's best and
    the original recipe's own run, each with its epochs."""
    from statistics import median

    from runs_table import accuracy_cell, data_variant, original_reproduction, short_variant
    from cifar_alexnet.training.curves import ORIGINAL_PUBLISHED_ACCURACY

    rows = []
    for name, meta, history in runs:
        best = max(history, key=lambda r: r["test_acc"])
        rows.append([f"[`{name}`](#run-{name})", f"{len(history)} of {run_config(name)['epochs']}",
                     short_variant(data_variant(meta)), f"**{accuracy_cell(history[-1]['test_acc'])}**",
                     accuracy_cell(best["test_acc"], best["epoch"]),
                     f"{median(r['images_per_s'] for r in history):.0f}"])
    table = md_table(["run", "epochs", "CIFAR-10", "final-epoch test acc.", "best test acc. (optimistic)",
                      "images/s (median epoch)"], rows, "lllrrr")
    target_epoch, (_, target) = max(ORIGINAL_PUBLISHED_ACCURACY.items(), key=lambda item: item[1][1])
    sentences = [f"The write-up's best, {target:.2f} % (official test set), came at epoch {target_epoch} of its 100."]
    if (original := original_reproduction()) is not None:
        name, meta, history = original
        best = max(percent(r["test_acc"]) for r in history)
        beaten = sum(percent(h[-1]["test_acc"]) > best for _, _, h in runs)
        sentences.append(f"The original recipe's own run on the {data_variant(meta)}, [`{name}`](#run-{name}), "
                         f"ended at {percent(history[-1]['test_acc']):.2f} % after {len(history)} epochs; its best "
                         f"epoch, {best:.2f} %, is below the last epoch of {beaten} of these {len(runs)} fast runs.")
    reached = [f"`{name}`" for name, _, history in runs if percent(history[-1]["test_acc"]) >= target]
    sentences.append(f"Fast runs whose last epoch reached {target:.2f} %: {', '.join(reached) or 'none yet'}.")
    return table + "\n\n" + " ".join(sentences)


def fast_recipe_measured_on_gpu() -> bool:
    """True if a recorded run of the fast recipe or a ``bench/gpu.py`` result ran on a CUDA device."""
    import json

    for name, meta, _ in recorded_runs():
        if _run_recipe(name) == "fast" and str(meta.get("device", "")).startswith("cuda"):
            return True
    for path in result_files():
        data = json.loads(path.read_text())
        if (not data.get("smoke") and str(data.get("environment", {}).get("device", "")).startswith("cuda")
                and (data.get("fast_recipe") or {}).get("history")):
            return True
    return False


# --------------------------------------------------------------------------------------
# the verification page
# --------------------------------------------------------------------------------------


def _uses_all_images(name: str) -> bool:
    """True if recorded run ``name`` trained on the whole training split (no ``--limit-train``)."""
    return (RUNS_DIR / name / "config.json").is_file() and run_config(name).get("limit_train") is None


@returns_printed
def cpu_warning() -> None:
    """How long the default recipe takes on a CPU, from the throughput benchmark and the recorded CPU run."""
    from cifar_alexnet.training.recipes import ORIGINAL

    lines = []
    for path, data in _measured_results("train_throughput"):
        if data["device"] == "cpu" and data.get("project_amp", "off") == "off":
            rate = data["sides"]["project"]["images_per_s"]
            hours = ORIGINAL.epochs * CIFAR10_TRAIN_IMAGES / rate / 3600
            lines.append(f"`bench/train_throughput.py` measured **{rate:.0f} images/s** for a float32 training "
                         f"step on a {machine(data)}, batch {data['batch_size']} "
                         f"(`{path.relative_to(REPO_ROOT).as_posix()}`): the {ORIGINAL.epochs} epochs of the "
                         f"original recipe would take **{hours:.0f} hours** of training steps there.")
    for name, meta, history in recorded_runs():
        if _run_recipe(name) == "original" and meta.get("device") == "cpu" and _uses_all_images(name):
            epoch_s = sum(r["epoch_time_s"] for r in history) / len(history)
            rate = sum(r["images_per_s"] for r in history) / len(history)
            lines.append(f"The recorded run [`{name}`](training.md#run-{name}) trained at {rate:.0f} images/s on "
                         f"{meta_field(meta, 'machine')}, {epoch_s / 60:.1f} min per epoch of the full training set: "
                         f"the {ORIGINAL.epochs} epochs of the original recipe would take about "
                         f"**{ORIGINAL.epochs * epoch_s / 3600:.0f} hours** there.")
    if not lines:
        raise FileNotFoundError("docs: no CPU throughput result or CPU run recorded for the CPU warning")
    print('!!! warning "Without a GPU the default run takes many hours"\n\n' + indent("\n\n".join(lines)) + "\n")
