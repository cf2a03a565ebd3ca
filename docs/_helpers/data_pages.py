"""The data page: the committed sample images and the training augmentations applied to them."""

from __future__ import annotations

from functools import lru_cache

from figure_kit import figure_svg, new_figure
from site_kit import SAMPLES, fence, returns_printed


@lru_cache(maxsize=None)
def samples():
    """The committed real sample images: (images uint8 (N,32,32,3), labels, classes, source)."""
    import numpy as np

    with np.load(SAMPLES) as z:
        return z["images"], z["labels"], tuple(str(c) for c in z["classes"]), str(z["source"])


# --------------------------------------------------------------------------------------
# the layer table beside the original's


@returns_printed
def sample_grid() -> None:
    """All committed sample images, each with its class."""
    images, labels, classes, source = samples()
    columns = 5
    rows = -(-len(images) // columns)
    fig, axes = new_figure(470, rows * 112, nrows=rows, ncols=columns)
    order = sorted(range(len(images)), key=lambda i: (labels[i], i))
    for ax, i in zip(axes.flat, order):
        ax.imshow(images[i])
        ax.set_xlabel(classes[labels[i]])
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    fig.subplots_adjust(0, 0.06, 1, 1, wspace=0.12, hspace=0.3)
    print(figure_svg(fig, "CIFAR-10 sample images", caption=f"Source: {source}."))


def augmentation_steps():
    """The random augmentations of the original training transform, each made to always fire.

    Taken from :func:`cifar_alexnet.data.torchvision_pipeline.original_train_transform` (so the page shows the
    pipeline the trainer uses), without ``ToTensor``/``Normalize``. A step with a probability
    ``p`` is copied with ``p = 1`` so its effect is visible on every image; the real ``p``
    is returned beside it.
    """
    import copy

    from cifar_alexnet.data.torchvision_pipeline import original_train_transform

    pipeline = original_train_transform((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    steps = []
    for step in pipeline.transforms:
        name = type(step).__name__
        if name in ("ToTensor", "Normalize"):
            continue
        shown = copy.copy(step)
        p = getattr(step, "p", None)
        if p is not None:
            shown.p = 1.0
        steps.append((name, step, shown, p))
    return steps


@returns_printed
def augmentation_grid(n_images: int = 3, seed: int = 0) -> None:
    """Columns: sample images; rows: original, each augmentation alone, the whole pipeline."""
    import numpy as np
    import torch
    from PIL import Image

    from cifar_alexnet.data.torchvision_pipeline import original_train_transform

    images, labels, classes, _ = samples()
    per_class = len(images) // len(classes)
    picks = list(range(0, len(images), per_class))[:n_images]  # one image each of the first classes
    steps = augmentation_steps()
    pipeline = original_train_transform((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))  # identity normalisation
    titles = ["original"] + [name + ("\n(p = 1 here)" if p is not None else "") for name, _, _, p in steps] + [
        "whole pipeline"]
    torch.manual_seed(seed)
    fig, axes = new_figure(470, 80 * len(titles) + 30, nrows=len(titles), ncols=len(picks))
    for col, i in enumerate(picks):
        pil = Image.fromarray(images[i])
        shown = [pil] + [applied(pil) for _, _, applied, _ in steps]
        whole = pipeline(pil).permute(1, 2, 0).numpy()  # ToTensor, identity Normalize: [0, 1] HWC
        for row, im in enumerate(shown + [whole]):
            ax = axes[row, col]
            ax.imshow(np.asarray(im))
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if col == 0:
                ax.set_ylabel(titles[row], rotation=0, ha="right", va="center")
        axes[0, col].set_title(classes[labels[i]])
    fig.subplots_adjust(0.4, 0, 1, 0.95, wspace=0.1, hspace=0.12)
    print(figure_svg(fig, "augmentations on real images"))


# --------------------------------------------------------------------------------------
# the command line
