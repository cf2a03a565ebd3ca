"""Training recipes: every hyperparameter of every recipe, in one place, each with its reason.

A *recipe* is a complete set of hyperparameters. ``cifar-alexnet train --recipe NAME`` starts
from one and every command-line option that is given overrides the recipe's value; the
effective values are stored in the run directory's ``config.json``.

Two recipes ship:

``original``
    The 2020 notebook, value for value: Adam with learning rate 1e-3 and PyTorch's default
    betas, batch 512, 100 epochs, plain cross-entropy, no learning-rate schedule, no weight
    decay, float32. It reached 90.34 % best test accuracy on official CIFAR-10.

``fast``
    The same network and the same augmentations, with the usual modern GPU tricks: SGD with
    Nesterov momentum, a one-cycle schedule (linear warm-up, then linear decay to zero), label
    smoothing, bfloat16 autocast, channels-last memory and test-time flip averaging.
    **Not yet run on a GPU**: it was written without access to one, so no GPU speed is claimed
    for it; ``bench/gpu.py`` measures it (time to 90.34 %) on a GPU machine. Its accuracy was
    measured once, on a CPU with the JPEG copy of CIFAR-10: ``docs/runs/cpu-full-fast-bf16``,
    shown on the documentation's training page.

Why a learning-rate schedule matters here: with a constant rate (the original) the test
accuracy keeps oscillating by about a point from epoch to epoch (see the notebook's log); a
rate that decays to zero ends the run in a flat region, so far fewer epochs are needed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

__all__ = ["Recipe", "RECIPES", "get_recipe"]


@dataclass(frozen=True)
class Recipe:
    """One complete set of training hyperparameters (see :data:`RECIPES`).

    Attributes:
        epochs: passes over the training set.
        batch_size: images per optimizer step (the GLOBAL batch when several processes train
            together; it must be divisible by the number of processes).
        optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"``.
        lr: learning rate (the peak rate when a schedule is used).
        momentum: SGD momentum (ignored by Adam, whose ``betas`` play that role).
        nesterov: SGD with Nesterov momentum.
        betas: Adam/AdamW moving-average coefficients.
        weight_decay: L2 penalty (Adam, SGD) or decoupled decay (AdamW).
        schedule: ``"constant"`` or ``"onecycle"`` (linear warm-up from ``lr * warmup_start``
            to ``lr`` over ``warmup_epochs``, then linear decay to 0 at the last step).
        warmup_epochs: length of the warm-up in epochs (fractions allowed).
        warmup_start: the rate at the first step, as a fraction of ``lr``.
        label_smoothing: cross-entropy label smoothing (0 = plain cross-entropy).
        augment: the original's training augmentations (random crop with 4-pixel padding,
            horizontal flip, ColorJitter() -- a no-op --, grayscale with p=0.3).
        amp: ``"off"`` (float32), ``"bf16"`` or ``"fp16"`` (autocast; fp16 adds a GradScaler).
        channels_last: NHWC memory format (faster convolutions on tensor-core GPUs).
        tta_flip: evaluate on each test image and its mirror image and average the logits.
        drop_last: drop the last, smaller batch of each epoch.
        dropout: drop probability of the classifier's two dropout layers.
        hidden: width of the two hidden linear layers.
    """

    epochs: int
    batch_size: int
    optimizer: str
    lr: float
    momentum: float
    nesterov: bool
    betas: tuple[float, float]
    weight_decay: float
    schedule: str
    warmup_epochs: float
    warmup_start: float
    label_smoothing: float
    augment: bool
    amp: str
    channels_last: bool
    tta_flip: bool
    drop_last: bool
    dropout: float
    hidden: int

    def to_dict(self) -> dict:
        return asdict(self)

    def with_overrides(self, **overrides) -> "Recipe":
        """A copy with the given fields replaced; ``None`` values are ignored (= keep the recipe's)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown recipe field(s) {unknown}; known fields: {sorted(known)}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


ORIGINAL = Recipe(
    epochs=100,  # the notebook's end_epoch; its best test accuracy (90.34 %) came at epoch 60
    batch_size=512,  # the notebook's BATCH_SIZE
    optimizer="adam",  # torch.optim.Adam(net.parameters(), lr=0.001)
    lr=1e-3,  # ... with PyTorch's default betas and eps
    momentum=0.0,  # unused by Adam
    nesterov=False,  # unused by Adam
    betas=(0.9, 0.999),  # PyTorch's defaults, which the notebook kept
    weight_decay=0.0,  # the notebook used none (dropout 0.2 and BatchNorm regularise)
    schedule="constant",  # "LR Scheduler: None"
    warmup_epochs=0.0,  # no schedule, no warm-up
    warmup_start=1.0,  # (unused without a schedule)
    label_smoothing=0.0,  # nn.CrossEntropyLoss() with defaults
    augment=True,  # RandomCrop(32, 4), RandomHorizontalFlip, ColorJitter() (no-op), RandomGrayscale(0.3)
    amp="off",  # float32 throughout, as in 2020
    channels_last=False,  # the default NCHW memory format
    tta_flip=False,  # the notebook evaluated each test image once
    drop_last=False,  # DataLoader's default: the last batch of 50,000 % 512 = 336 images is used
    dropout=0.2,  # DROPOUT_RATE
    hidden=2048,  # "Classifier Neuron: 2048"
)

FAST = Recipe(
    # About a third of the original's 100 epochs: with a decaying rate most of the original's
    # late epochs only oscillate around the same accuracy. Untested on a GPU (see module doc).
    epochs=30,
    # 512 keeps BatchNorm's batch statistics as in the original and still fills an H100 for a
    # network this small; larger batches would need a retuned rate.
    batch_size=512,
    # SGD + Nesterov momentum with a one-cycle rate is the standard fast CIFAR-10 recipe for
    # BatchNorm'd CNNs; it generalises at least as well as Adam with fewer epochs.
    optimizer="sgd",
    # Peak rate 0.1 for batch 512 is the usual value for BN networks of this size (ResNet-18 on
    # CIFAR uses 0.1 at batch 128-512); BatchNorm after every layer makes the net tolerant of it.
    lr=0.1,
    momentum=0.9,  # the standard value; with Nesterov it damps oscillations at the peak rate
    nesterov=True,
    betas=(0.9, 0.999),  # (unused by SGD)
    # 5e-4 is the usual CIFAR value for SGD; it keeps the weight norms (and so the effective
    # rate under BatchNorm) from drifting during the 30 epochs.
    weight_decay=5e-4,
    # One cycle: a short warm-up avoids the early blow-ups of a large rate on random weights;
    # the linear decay to zero ends training at a flat minimum (no need to pick the best epoch).
    schedule="onecycle",
    warmup_epochs=3.0,  # 10 % of the run
    warmup_start=0.1,  # start at lr/10 rather than 0 so the first steps already learn something
    # 0.1 is the common value: it stops the (BatchNorm'd) logits from growing without bound and
    # usually gains a few tenths of a point on CIFAR-10.
    label_smoothing=0.1,
    augment=True,  # the original's augmentations, so the comparison isolates optimiser and precision
    # bfloat16 autocast: tensor cores, no loss scaling needed (same exponent range as float32).
    # On a GPU without bf16 support the trainer falls back to fp16 with a GradScaler.
    amp="bf16",
    channels_last=True,  # NHWC is the layout tensor-core convolutions want
    tta_flip=True,  # averaging each image with its mirror image: free accuracy at test time
    drop_last=True,  # equal-size batches: no small last batch with noisy BatchNorm statistics
    dropout=0.2,  # same architecture as the original
    hidden=2048,  # same architecture as the original
)

#: The recipes by name (``--recipe NAME``).
RECIPES: dict[str, Recipe] = {"original": ORIGINAL, "fast": FAST}


def get_recipe(name: str) -> Recipe:
    """Look a recipe up by name, with an error that lists the known names."""
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown recipe {name!r}; choose one of {sorted(RECIPES)}") from None
