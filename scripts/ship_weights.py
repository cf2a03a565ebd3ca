"""Ship a recorded run's last epoch as the package's trained weights, and measure what they learned.

Run by hand when a run is recorded or extended (the results are committed; the tests and the
docs build only read them)::

    python scripts/ship_weights.py /path/to/runs/original-bf16 --data ../shared/data/cifar10-jpeg.tar.gz

Writes, for the member ``--weights`` of :class:`cifar_alexnet.weights.AlexNetWeights`:

* the weights file inside ``cifar_alexnet/weights/``: ``cifar-alexnet export`` of the run's
  ``last.safetensors`` (float16), with the accuracy the file itself scores on the test set
  recorded in its metadata (``weights.measured``: float32 arithmetic on the CPU);
* ``docs/runs/<run>/evaluation.json``: that evaluation -- accuracy, loss, per-class accuracy,
  the confusion matrix (rows: true class, columns: predicted), the most confused pairs;
* ``docs/runs/<run>/test_predictions.npz``: per test image the label, the predicted class, its
  probability and the logit margin between the first and the second class (``uint8``/``float16``);
  the tests recompute a slice of it;
* ``docs/runs/<run>/mistakes.npz``: a few misclassified test images of each most confused pair,
  with their probabilities, for the "what the network learned" page;
* ``docs/runs/<run>/sample_predictions.json``: the predictions for ``docs/assets/samples/*.png``,
  which the tests check on every machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from cifar_alexnet.checkpoints.export import export_weights  # noqa: E402
from cifar_alexnet.checkpoints.format import model_from_checkpoint, save_checkpoint  # noqa: E402
from cifar_alexnet.data.cifar10 import load_cifar10  # noqa: E402
from cifar_alexnet.inference.predict import load_image  # noqa: E402
from cifar_alexnet.runtime.device import cpu_description  # noqa: E402
from cifar_alexnet.weights import AlexNetWeights, Preprocess  # noqa: E402

SAMPLES = REPO_ROOT / "docs" / "assets" / "samples"
#: Confused pairs shown, and misclassified examples kept per pair.
PAIRS, EXAMPLES = 6, 4


@torch.no_grad()
def logits_of(model, images: np.ndarray, preprocess, batch: int = 500) -> torch.Tensor:
    """float32 logits ``(N, C)`` of uint8 images ``(N, 32, 32, 3)``."""
    return torch.cat([model(preprocess(images[i:i + batch])) for i in range(0, len(images), batch)])


def predictions(logits: torch.Tensor) -> dict[str, np.ndarray]:
    """Predicted class, its probability, and the margin between the two largest logits, per image."""
    top2 = logits.topk(2, dim=1)
    return {"predicted": top2.indices[:, 0].numpy().astype(np.uint8),
            "confidence": logits.softmax(1).max(1).values.numpy().astype(np.float16),
            "margin": (top2.values[:, 0] - top2.values[:, 1]).numpy().astype(np.float16)}


def confused_pairs(confusion: np.ndarray, classes, count: int) -> list[dict]:
    """The ``count`` largest off-diagonal entries: ``{"true", "predicted", "count"}``."""
    off = confusion.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None, kind="stable")[:count]
    return [{"true": classes[t], "predicted": classes[p], "count": int(off[t, p])}
            for t, p in zip(*np.unravel_index(order, off.shape))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="the run directory (its last.safetensors is shipped)")
    parser.add_argument("--data", required=True, help="the data set the run was trained on (its test split)")
    parser.add_argument("--weights", default="ORIGINAL_RECIPE_JPEG", help="the AlexNetWeights member to write")
    args = parser.parse_args()
    member = AlexNetWeights.resolve(args.weights)
    run_record = REPO_ROOT / "docs" / "runs" / member.value.run

    with tempfile.TemporaryDirectory() as tmp:  # export, then measure the exported file itself
        exported = Path(tmp) / member.value.file
        export_weights(args.run_dir / "last.safetensors", exported)
        model, meta = model_from_checkpoint(exported)
        _, test = load_cifar10(args.data)
        logits = logits_of(model, test.images, Preprocess(meta.mean, meta.std))
        labels = torch.from_numpy(test.labels).long()
        loss = float(torch.nn.functional.cross_entropy(logits, labels))
        per_image = predictions(logits)
        confusion = np.zeros((len(meta.classes),) * 2, dtype=np.int64)
        np.add.at(confusion, (test.labels, per_image["predicted"]), 1)
        accuracy = 100.0 * np.trace(confusion) / confusion.sum()
        measured = {"test_acc": round(float(accuracy), 2), "test_loss": round(loss, 4), "images": int(confusion.sum()),
                    "data": test.source, "arithmetic": "float32 on the CPU (float16 weights)",
                    "machine": "{cpu_model} ({cpu_capability})".format(**cpu_description()), "torch": torch.__version__,
                    "date": datetime.now(timezone.utc).date().isoformat()}
        shipped = replace(meta, weights={**(meta.weights or {}), "measured": measured})
        save_checkpoint(member.path, model.half(), meta=shipped)

    classes = list(meta.classes)
    run_record.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(run_record / "test_predictions.npz", labels=test.labels.astype(np.uint8), **per_image)
    pairs = confused_pairs(confusion, classes, PAIRS)
    examples = {"images": [], "true": [], "predicted": [], "confidence": []}
    for pair in pairs:
        t, p = classes.index(pair["true"]), classes.index(pair["predicted"])
        wrong = np.flatnonzero((test.labels == t) & (per_image["predicted"] == p))
        wrong = wrong[np.argsort(-per_image["confidence"][wrong].astype(np.float32), kind="stable")][:EXAMPLES]
        for i in wrong:
            examples["images"].append(test.images[i])
            examples["true"].append(t), examples["predicted"].append(p)
            examples["confidence"].append(float(per_image["confidence"][i]))
    np.savez_compressed(run_record / "mistakes.npz", images=np.stack(examples["images"]),
                        true=np.array(examples["true"], np.uint8), predicted=np.array(examples["predicted"], np.uint8),
                        confidence=np.array(examples["confidence"], np.float16), classes=np.array(classes))
    evaluation = {"weights_file": f"cifar_alexnet/weights/{member.value.file}",
                  "weights_sha256": hashlib.sha256(member.path.read_bytes()).hexdigest(),
                  "weights": shipped.weights, "classes": classes, "confusion": confusion.tolist(),
                  "per_class_acc": [round(100.0 * confusion[i, i] / confusion[i].sum(), 2) for i in range(len(classes))],
                  "confused_pairs": pairs,
                  "command": "python scripts/ship_weights.py RUN_DIR --data ../shared/data/cifar10-jpeg.tar.gz"}
    (run_record / "evaluation.json").write_text(json.dumps(evaluation, indent=1) + "\n")

    samples = sorted(SAMPLES.glob("*.png"))
    sample_logits = logits_of(model.float(), np.stack([load_image(p) for p in samples]), Preprocess(meta.mean, meta.std))
    sample_pred = predictions(sample_logits)
    (run_record / "sample_predictions.json").write_text(json.dumps(
        [{"image": p.relative_to(REPO_ROOT).as_posix(), "predicted": classes[int(c)], "confidence": float(conf),
          "margin": float(m)} for p, c, conf, m in zip(samples, sample_pred["predicted"], sample_pred["confidence"],
                                                       sample_pred["margin"])], indent=1) + "\n")
    print(f"wrote {member.path} ({member.path.stat().st_size / 1e6:.1f} MB): test accuracy {accuracy:.2f} % on "
          f"{test.source}; records in {run_record.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
