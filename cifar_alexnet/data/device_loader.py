"""The data pipeline as batched tensor operations on the training device.

The original notebook fed its network through ``DataLoader`` workers: every image became a PIL
image, went through ``RandomCrop -> RandomHorizontalFlip -> ColorJitter -> RandomGrayscale ->
ToTensor -> Normalize`` one at a time, and was collated into a batch. CIFAR-10 is tiny (150 MB
as uint8), so all of it fits on the GPU, and the same augmentations can be done for a whole
batch at once with a few tensor operations -- no worker processes, no PIL, no copies from the
host. This module does that; it runs unchanged on the CPU (the tests do).

What the batched pipeline computes, for each image and with the original's probabilities:

1. **random crop** with 4 pixels of zero padding: a 32x32 window at offset ``(dy, dx)``, each
   uniform on ``0..8``, of the 40x40 zero-padded image (``RandomCrop(32, padding=4)``);
2. **horizontal flip** with probability 0.5 (``RandomHorizontalFlip()``);
3. ``ColorJitter()`` is **left out**: without arguments it changes nothing (see
   :func:`cifar_alexnet.data.torchvision_pipeline.original_train_transform`);
4. **grayscale** with probability 0.3 (``RandomGrayscale(p=0.3)``): ITU-R 601-2 luma
   ``L = 0.299 R + 0.587 G + 0.114 B``, rounded as PIL rounds it, copied to all three channels;
5. ``uint8 -> float32``, divide by 255, subtract the mean, divide by the std -- the same
   float operations in the same order as ``ToTensor`` + ``Normalize``.

For fixed ``(dy, dx, flip, gray)`` every step gives the same numbers as torchvision's PIL
pipeline, bit for bit (the tests check this).

How it is made fast: the padded set is stored once, together with its mirror image, as
``(2, N, 3, 40, 40)`` uint8. A crop at ``(dy, dx)`` of a mirrored image equals the mirror of
the crop at ``(dy, 8 - dx)``, so "crop, then maybe flip" is a single indexing operation on a
strided view ``(2, N, 9, 9, 3, 32, 32)`` that lists every possible window of every image:
``windows[flip, n, dy, dx']``. Grayscale is a masked weighted sum in integers; normalisation
is three elementwise operations. Shuffling is a device permutation drawn from an explicit
``torch.Generator``.
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "LUMA_WEIGHTS",
    "pad_images",
    "random_crop",
    "horizontal_flip",
    "grayscale",
    "random_grayscale",
    "normalize",
    "crop_flip_windows",
    "DeviceLoader",
]

#: ITU-R 601-2 luma weights of R, G, B (what PIL's ``convert("L")`` uses).
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
#: The same weights in PIL's fixed point: ``round(w * 2**16)``; they sum to 2**16.
_LUMA_FIXED_POINT = (19595, 38470, 7471)


# ---------------------------------------------------------------------------------------
# Single operations on a batch (the readable versions; the loader fuses crop and flip)
# ---------------------------------------------------------------------------------------


def pad_images(x: torch.Tensor, padding: int = 4) -> torch.Tensor:
    """Zero-pad every image: ``x: (N, C, H, W)`` -> ``(N, C, H + 2p, W + 2p)``, same dtype."""
    return F.pad(x, (padding, padding, padding, padding), mode="constant", value=0)


def random_crop(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, padding: int = 4) -> torch.Tensor:
    """Crop each zero-padded image at its own offset, like ``RandomCrop(H, padding=padding)``.

    Args:
        x: ``(N, C, H, W)`` images.
        dy, dx: ``(N,)`` integer offsets in ``[0, 2 * padding]``; ``(padding, padding)`` is
            the centre (no shift).
        padding: zero padding on every side.

    Returns:
        ``(N, C, H, W)``: ``out[n] = pad(x[n])[:, dy[n]:dy[n] + H, dx[n]:dx[n] + W]``.
    """
    n, c, h, w = x.shape
    padded = pad_images(x, padding).contiguous()  # (N, C, H + 2p, W + 2p)
    offsets = 2 * padding + 1
    s_n, s_c, s_h, s_w = padded.stride()
    # Every window of every image, as a view without copying: (N, dy, dx, C, H, W).
    windows = padded.as_strided((n, offsets, offsets, c, h, w), (s_n, s_h, s_w, s_c, s_h, s_w))
    rows = torch.arange(n, device=x.device)
    return windows[rows, dy.long(), dx.long()]  # (N, C, H, W)


def horizontal_flip(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mirror the images where ``mask`` is True: ``x: (N, C, H, W)``, ``mask: (N,)`` bool."""
    return torch.where(mask.view(-1, 1, 1, 1), x.flip(-1), x)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601-2 luma of uint8 RGB images, rounded exactly as PIL's ``convert("L")``.

    ``L = (19595 R + 38470 G + 7471 B + 2**15) >> 16``: the weights 0.299, 0.587, 0.114 in
    16-bit fixed point, rounded to nearest. (torchvision's *tensor* ``rgb_to_grayscale`` uses
    0.2989 and truncates, so it can differ from PIL by one level; the original pipeline ran on
    PIL images, so PIL's rounding is the one to match.)

    Args:
        x: ``(N, 3, H, W)`` uint8 (any memory format).

    Returns:
        ``(N, 1, H, W)`` uint8.
    """
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"grayscale: expected uint8 images (N, 3, H, W), got {x.dtype} {tuple(x.shape)}")
    wr, wg, wb = _LUMA_FIXED_POINT
    rgb = x.to(torch.int32)
    luma = (wr * rgb[:, 0:1] + wg * rgb[:, 1:2] + wb * rgb[:, 2:3] + (1 << 15)) >> 16  # (N, 1, H, W)
    return luma.to(torch.uint8)


def random_grayscale(x: torch.Tensor, mask: torch.Tensor, *, inplace: bool = False,
                     sync_free: bool | None = None) -> torch.Tensor:
    """Replace the images where ``mask`` is True by their luma on all three channels.

    Two equivalent ways, chosen by ``sync_free``:

    * ``False`` (the default on the CPU): convert only the selected images (about 30 % of a
      batch in the original recipe). Finding them (``mask.nonzero()``) needs the mask's
      values on the host -- free on the CPU;
    * ``True`` (the default on a GPU): convert every image and keep the luma where ``mask``
      is set (``torch.where``). More arithmetic, but no GPU-to-host synchronisation, so the
      host can keep queueing work while the GPU is busy with the previous training step.

    Args:
        x: ``(N, 3, H, W)`` uint8.
        mask: ``(N,)`` bool.
        inplace: overwrite ``x`` instead of returning a new tensor.
        sync_free: see above; ``None`` picks by ``x.device``.

    Returns:
        ``(N, 3, H, W)`` uint8, the memory format of ``x``.
    """
    if sync_free is None:
        sync_free = x.device.type != "cpu"
    if sync_free:
        mixed = torch.where(mask.view(-1, 1, 1, 1), grayscale(x), x)  # (N, 1, H, W) broadcasts over C
        return x.copy_(mixed) if inplace else mixed
    out = x if inplace else x.clone()
    chosen = mask.nonzero().squeeze(1)  # (K,) indices of the images to convert
    if chosen.numel():
        luma = grayscale(x[chosen])  # (K, 1, H, W)
        out[chosen] = luma.expand(-1, 3, -1, -1)  # the same value in R, G and B
    return out


def normalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 images -> normalised float32, as ``ToTensor()`` then ``Normalize(mean, std)``.

    ``(x / 255 - mean) / std`` with the same three float32 operations in the same order as
    torchvision, so the results are identical, not merely close.

    Args:
        x: ``(N, 3, H, W)`` uint8.
        mean, std: ``(3,)`` float32, in ``[0, 1]`` units.

    Returns:
        ``(N, 3, H, W)`` float32, the memory format of ``x``.
    """
    out = x.to(torch.float32, copy=True)  # a fresh tensor, so the next three steps may work in place
    # in place: on a CPU, three new 6 MB tensors per batch of 512 cost more than the arithmetic
    return out.div_(255).sub_(mean.view(1, -1, 1, 1)).div_(std.view(1, -1, 1, 1))


def crop_flip_windows(padded_pair: torch.Tensor, padding: int = 4, channels_last: bool = False) -> torch.Tensor:
    """All crop windows of a padded set and of its mirror image, as one strided view.

    Args:
        padded_pair: contiguous ``(2, N, C, H + 2p, W + 2p)`` -- or ``(2, N, H + 2p, W + 2p, C)``
            with ``channels_last`` --: ``[0]`` the zero-padded images, ``[1]`` the same
            mirrored left-right.
        padding: ``p``.
        channels_last: the layout of ``padded_pair`` (and of the windows).

    Returns:
        A view ``(2, N, 2p + 1, 2p + 1, C, H, W)`` (``..., H, W, C`` with ``channels_last``)
        with ``view[f, n, dy, dx] = padded_pair[f, n, :, dy:dy + H, dx:dx + W]``. Indexing it
        with ``(flip, n, dy, dx')`` copies out a batch in one operation, in the memory layout
        of ``padded_pair``; for a flipped image use ``dx' = 2p - dx`` (the mirror of the crop
        at ``dx`` is the crop of the mirror at ``2p - dx``).
    """
    if channels_last:
        two, n, hp, wp, c = padded_pair.shape
        s_f, s_n, s_h, s_w, s_c = padded_pair.stride()
    else:
        two, n, c, hp, wp = padded_pair.shape
        s_f, s_n, s_c, s_h, s_w = padded_pair.stride()
    h, w, offsets = hp - 2 * padding, wp - 2 * padding, 2 * padding + 1
    if channels_last:
        return padded_pair.as_strided((two, n, offsets, offsets, h, w, c), (s_f, s_n, s_h, s_w, s_h, s_w, s_c))
    return padded_pair.as_strided((two, n, offsets, offsets, c, h, w), (s_f, s_n, s_h, s_w, s_c, s_h, s_w))


# ---------------------------------------------------------------------------------------
# The loader
# ---------------------------------------------------------------------------------------


def _as_uint8_nchw(images) -> torch.Tensor:
    """Accept uint8 images as a tensor or array, NHWC ``(N, H, W, 3)`` or NCHW ``(N, 3, H, W)``."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(
            "DeviceLoader: images must be a uint8 tensor or array of shape (N, H, W, 3) or (N, 3, H, W); got "
            f"{type(images).__name__} {getattr(images, 'dtype', '')} {tuple(getattr(images, 'shape', ()))}"
        )
    nhwc, nchw = images.shape[-1] == 3, images.shape[1] == 3
    if nhwc and nchw:
        raise ValueError(f"DeviceLoader: cannot tell NHWC from NCHW for shape {tuple(images.shape)}; pass NCHW (N, 3, H, W) with H, W != 3")
    if not (nhwc or nchw):
        raise ValueError(f"DeviceLoader: images need 3 channels, first or last; got shape {tuple(images.shape)}")
    return images.permute(0, 3, 1, 2) if nhwc else images  # (N, 3, H, W)


class DeviceLoader:
    """Batches of augmented, normalised images made on the device from a resident uint8 set.

    Sharding for data parallel training: ``batch_size`` is the **global** batch. Every rank
    holds the whole set, draws the same permutation and augmentation parameters from its
    generator (so every rank must seed its generator identically), and keeps its contiguous
    slice of each global batch, of ``batch_size // world_size`` images. The ranks' slices
    concatenated in rank order are exactly the one-process batch. A final partial batch
    (``drop_last=False``) is split as evenly as possible (``torch.tensor_split``); with fewer
    images than ranks some ranks get an empty batch, so use ``drop_last=True`` for DDP.

    Randomness, per epoch, all drawn from ``generator`` on the generator's device (so a CPU
    generator gives the same batches on any device): the permutation (if ``train``), then
    for every position of the epoch ``dy``, ``dx`` (uniform ``0..2p``), the flip flag
    (``rand < 0.5``) and the grayscale flag (``rand < 0.3``) (if ``augment``). Drawing a whole
    epoch up front makes the generator state at an epoch boundary independent of how many
    batches were consumed, and lets :meth:`state_dict` describe a point inside an epoch.

    Memory on the device: with ``augment`` the padded set and its mirror, ``2 * N * 3 * 40 * 40``
    bytes (480 MB for the 50,000 training images); without, ``N * 3 * 32 * 32`` (150 MB).

    Args:
        images: uint8 ``(N, H, W, 3)`` or ``(N, 3, H, W)``, tensor or NumPy array.
        labels: ``(N,)`` integer labels.
        batch_size: global batch size, a multiple of ``world_size``.
        mean, std: per-channel normalisation, 3 floats each, ``[0, 1]`` units.
        train: shuffle every epoch.
        augment: crop, flip and grayscale (default: same as ``train``).
        device: where the data lives and the batches are made.
        generator: the only source of randomness; required when ``train`` or ``augment``.
        drop_last: skip the final partial batch.
        channels_last: return batches in ``torch.channels_last`` memory format (the values
            and the logical NCHW shape are the same).
        rank, world_size: this process's slice, see above.
        padding: zero padding of the random crop (the original: 4).
        flip_p, grayscale_p: probabilities (the original: 0.5 and 0.3).

    Yields:
        ``(x, y)``: ``x`` float32 ``(B, 3, H, W)``, ``y`` int64 ``(B,)``, both on ``device``.
    """

    def __init__(self, images, labels, *, batch_size: int, mean: Sequence[float], std: Sequence[float],
                 train: bool = True, augment: bool | None = None, device: str | torch.device = "cpu",
                 generator: torch.Generator | None = None, drop_last: bool = False,
                 channels_last: bool = False, rank: int = 0, world_size: int = 1, padding: int = 4,
                 flip_p: float = 0.5, grayscale_p: float = 0.3):
        augment = train if augment is None else augment
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"DeviceLoader: need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        if batch_size < 1 or batch_size % world_size:
            raise ValueError(
                f"DeviceLoader: batch_size={batch_size} is the global batch and must be a positive multiple of "
                f"world_size={world_size} (each rank takes batch_size // world_size images)"
            )
        if (train or augment) and generator is None:
            raise ValueError(
                "DeviceLoader: shuffling/augmenting needs an explicit generator, e.g. "
                "generator=torch.Generator().manual_seed(0) (the same seed on every rank)"
            )
        if len(mean) != 3 or len(std) != 3 or min(float(v) for v in std) <= 0:
            raise ValueError(f"DeviceLoader: mean and std need 3 values each, std > 0; got {mean}, {std}")
        self.device = torch.device(device)
        self.batch_size, self.train, self.augment, self.drop_last = batch_size, train, augment, drop_last
        self.channels_last, self.rank, self.world_size = channels_last, rank, world_size
        self.padding, self.flip_p, self.grayscale_p = padding, flip_p, grayscale_p
        self.generator = generator
        self.mean = torch.as_tensor(mean, dtype=torch.float32).to(self.device)  # (3,)
        self.std = torch.as_tensor(std, dtype=torch.float32).to(self.device)  # (3,)

        images = _as_uint8_nchw(images)  # (N, 3, H, W)
        labels = torch.as_tensor(labels).to(self.device, torch.int64)
        if labels.shape != (images.shape[0],):
            raise ValueError(f"DeviceLoader: {images.shape[0]} images but labels of shape {tuple(labels.shape)}")
        self.num_images = images.shape[0]
        self.labels = labels
        images = images.to(self.device)
        if augment:
            padded = pad_images(images, padding)  # (N, 3, H + 2p, W + 2p)
            pair = torch.stack([padded, padded.flip(-1)])  # (2, N, 3, H + 2p, W + 2p)
            if channels_last:
                pair = pair.permute(0, 1, 3, 4, 2)  # (2, N, H + 2p, W + 2p, 3)
            self._padded_pair = pair.contiguous()
            self._windows = crop_flip_windows(self._padded_pair, padding, channels_last)
        else:
            layout = (0, 2, 3, 1) if channels_last else (0, 1, 2, 3)
            self._images = images.permute(*layout).contiguous()  # (N, H, W, 3) or (N, 3, H, W)
        self._batches_to_skip = 0
        self._epoch_start_state: torch.Tensor | None = None
        self._batches_done = 0

    # -- sizes -----------------------------------------------------------------------

    def __len__(self) -> int:
        """Number of batches per epoch (the same on every rank)."""
        if self.drop_last:
            return self.num_images // self.batch_size
        return math.ceil(self.num_images / self.batch_size)

    # -- resuming --------------------------------------------------------------------

    def state_dict(self) -> dict[str, object]:
        """Where the loader is: ``{"generator_state": ByteTensor, "batches_done": int}``.

        Between epochs: the generator's current state and 0. Inside an epoch: the state at
        the start of this epoch and the number of batches already yielded, so that after
        :meth:`load_state_dict` the next iteration redraws the same epoch and continues with
        the next batch. Stored in a checkpoint, it gives a bit-identical resume.
        """
        if self.generator is None:
            return {"generator_state": torch.empty(0, dtype=torch.uint8), "batches_done": self._batches_done}
        if self._epoch_start_state is not None:
            return {"generator_state": self._epoch_start_state.clone(), "batches_done": self._batches_done}
        return {"generator_state": self.generator.get_state(), "batches_done": 0}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Continue from a :meth:`state_dict` (of a loader built with the same arguments)."""
        if self.generator is not None:
            self.generator.set_state(state["generator_state"])
        self._batches_to_skip = int(state["batches_done"])
        self._epoch_start_state = None

    # -- one epoch -------------------------------------------------------------------

    def _draw_epoch(self) -> dict[str, torch.Tensor]:
        """Permutation and augmentation parameters for every position of the epoch."""
        n, g = self.num_images, self.generator
        gen_device = g.device if g is not None else torch.device("cpu")
        draws = {}
        if self.train:
            draws["order"] = torch.randperm(n, generator=g, device=gen_device)
        else:
            draws["order"] = torch.arange(n, device=gen_device)
        if self.augment:
            offsets = 2 * self.padding + 1
            draws["dy"] = torch.randint(0, offsets, (n,), generator=g, device=gen_device)
            draws["dx"] = torch.randint(0, offsets, (n,), generator=g, device=gen_device)
            draws["flip"] = torch.rand(n, generator=g, device=gen_device) < self.flip_p
            draws["gray"] = torch.rand(n, generator=g, device=gen_device) < self.grayscale_p
        return {k: v.to(self.device) for k, v in draws.items()}

    def _rank_slice(self, start: int, stop: int) -> tuple[int, int]:
        """This rank's contiguous part of the global batch at positions ``[start, stop)``."""
        size = stop - start
        if size == self.batch_size:
            local = size // self.world_size
            return start + self.rank * local, start + (self.rank + 1) * local
        base, extra = divmod(size, self.world_size)  # the first `extra` ranks get one more, as torch.tensor_split
        bounds = [start]
        for r in range(self.world_size):
            bounds.append(bounds[-1] + base + (1 if r < extra else 0))
        return bounds[self.rank], bounds[self.rank + 1]

    def _make_batch(self, draws: dict[str, torch.Tensor], lo: int, hi: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The images at epoch positions ``[lo, hi)``: crop + flip (one gather), grayscale, normalise."""
        index = draws["order"][lo:hi]  # (B,) image numbers
        if self.augment:
            flip = draws["flip"][lo:hi]
            dx = draws["dx"][lo:hi]
            dx_in_window = torch.where(flip, 2 * self.padding - dx, dx)  # crop of the mirror, see module doc
            x = self._windows[flip.long(), index, draws["dy"][lo:hi], dx_in_window]  # (B, 3, H, W) or (B, H, W, 3)
        else:
            x = self._images[index]  # (B, 3, H, W) or (B, H, W, 3)
        if self.channels_last:
            x = x.permute(0, 3, 1, 2)  # (B, 3, H, W) view with channels-last strides
        if self.augment:
            x = random_grayscale(x, draws["gray"][lo:hi], inplace=True)  # x is a fresh copy
        return normalize(x, self.mean, self.std), self.labels[index]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        start_state = self.generator.get_state() if self.generator is not None else None
        draws = self._draw_epoch()
        skip, self._batches_to_skip = self._batches_to_skip, 0
        self._epoch_start_state, self._batches_done = start_state, skip
        for b in range(skip, len(self)):
            start, stop = b * self.batch_size, min((b + 1) * self.batch_size, self.num_images)
            lo, hi = self._rank_slice(start, stop)
            batch = self._make_batch(draws, lo, hi)
            self._batches_done = b + 1
            yield batch
        self._epoch_start_state, self._batches_done = None, 0
