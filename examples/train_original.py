"""Train the modified AlexNet with the original 2020 recipe (Adam 1e-3, batch 512, 100 epochs).

The same as ``cifar-alexnet train``, from Python: build a :class:`~cifar_alexnet.training.config.TrainConfig`
from the ``original`` recipe, call :func:`~cifar_alexnet.training.loop.train`, read the run directory.

Usage::

    python examples/train_original.py --download                 # GPU, official CIFAR-10
    python examples/train_original.py --data ../shared/data/cifar10-jpeg.tar.gz
    python examples/train_original.py --smoke                    # seconds on a CPU: 1 epoch on 20 images
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from _smoke import pick_device, write_sample_image_folder


def main(argv: list[str] | None = None, recipe: str = "original") -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="official archive folder, image folder or .tar.gz of one")
    parser.add_argument("--download", action="store_true", help="download the official archive")
    parser.add_argument("--out", help="run directory (default: runs/<time>-<recipe>)")
    parser.add_argument("--device", help="cuda (default), cuda:1, cpu, ...")
    parser.add_argument("--epochs", type=int, help="override the recipe's number of epochs")
    parser.add_argument("--smoke", action="store_true", help="a seconds-long CPU check on 20 real images")
    args = parser.parse_args(argv)

    from cifar_alexnet.training.recipes import config_from_recipe
    from cifar_alexnet.training.loop import train

    overrides = dict(data=args.data, download=args.download, out=args.out, epochs=args.epochs,
                     device=pick_device(args.device, args.smoke))
    with tempfile.TemporaryDirectory(prefix="cifar-alexnet-smoke-") as tmp:
        if args.smoke:
            os.environ["CIFAR_ALEXNET_CACHE"] = str(Path(tmp) / "cache")  # leave no cache behind
            overrides.update(data=str(write_sample_image_folder(Path(tmp) / "images")), epochs=1, batch_size=10,
                             eval_batch_size=20, out=args.out or str(Path(tmp) / "run"), amp="off", quiet=True)
        config = config_from_recipe(recipe, **overrides)
        run_dir = train(config)

        history = json.loads((run_dir / "history.json").read_text())
        best = max(history, key=lambda row: row["test_acc"])
        print(f"recipe {recipe}: {len(history)} epoch(s), best test accuracy {best['test_acc']:.2f} % "
              f"at epoch {best['epoch']}")
        print("run directory:", run_dir if not args.smoke or args.out else "(temporary, removed)")
        print("files:", sorted(p.name for p in run_dir.iterdir()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
