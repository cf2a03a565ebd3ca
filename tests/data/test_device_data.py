"""The batched on-device pipeline: each operation against torchvision, the random draws'
distributions, sharding over ranks, bit-identical resume, and the benchmark's smoke run.

Everything runs on the CPU; the code is the same on a GPU.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from hypothesis import given, strategies as st
from PIL import Image

from cifar_alexnet.data.device_loader import (
    DeviceLoader,
    grayscale,
    horizontal_flip,
    normalize,
    random_crop,
    random_grayscale,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
#: Binomial and chi-square bounds are this many standard deviations wide (fixed seeds, so
#: the tests are deterministic; 5 sigma keeps a correct implementation far from the edge).
SIGMAS = 5.0


def _images(n: int, seed: int = 0) -> torch.Tensor:
    """``(n, 32, 32, 3)`` random uint8 images (NHWC, as ArrayDataset stores them)."""
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8))


# ---------------------------------------------------------------------------------------
# Each operation equals torchvision's for fixed parameters
# ---------------------------------------------------------------------------------------


def test_random_crop_equals_torchvision_crop_of_the_padded_image_for_all_81_offsets():
    x = _images(3).permute(0, 3, 1, 2)  # (3, 3, 32, 32)
    for dy in range(9):
        for dx in range(9):
            ours = random_crop(x, torch.full((3,), dy), torch.full((3,), dx), padding=4)
            expected = TF.crop(TF.pad(x, [4]), dy, dx, 32, 32)
            assert torch.equal(ours, expected), (dy, dx)


def test_random_crop_mixes_offsets_within_a_batch():
    x = _images(5, seed=1).permute(0, 3, 1, 2)
    dy, dx = torch.tensor([0, 8, 4, 2, 7]), torch.tensor([8, 0, 4, 6, 1])
    ours = random_crop(x, dy, dx)
    for n in range(5):
        assert torch.equal(ours[n], TF.crop(TF.pad(x[n], [4]), int(dy[n]), int(dx[n]), 32, 32))


def test_horizontal_flip_equals_torchvision():
    x = _images(4, seed=2).permute(0, 3, 1, 2)
    mask = torch.tensor([True, False, True, False])
    ours = horizontal_flip(x, mask)
    for n in range(4):
        assert torch.equal(ours[n], TF.hflip(x[n]) if mask[n] else x[n])


def test_grayscale_equals_pil_exactly():
    """PIL's convert('L') -- what RandomGrayscale does to the original's PIL images."""
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (64, 32, 32, 3), dtype=np.uint8)
    pixels[0] = 0
    pixels[1] = 255
    pixels[2, ..., 0], pixels[2, ..., 1], pixels[2, ..., 2] = 255, 0, 0
    ours = grayscale(torch.from_numpy(pixels).permute(0, 3, 1, 2))  # (64, 1, 32, 32)
    for n in range(64):
        pil = TF.rgb_to_grayscale(Image.fromarray(pixels[n]), num_output_channels=1)
        assert np.array_equal(ours[n, 0].numpy(), np.asarray(pil)), n


def test_grayscale_differs_from_torchvisions_tensor_version_by_at_most_one_level():
    """torchvision's tensor rgb_to_grayscale uses 0.2989 and truncates; PIL rounds. Documented."""
    x = _images(64, seed=4).permute(0, 3, 1, 2)
    ours = grayscale(x).int()
    tensor_version = TF.rgb_to_grayscale(x, num_output_channels=1).int()
    difference = (ours - tensor_version).abs()
    assert difference.max() == 1 and difference.float().mean() > 0.1


@pytest.mark.parametrize("sync_free", [False, True], ids=["subset", "where"])
def test_random_grayscale_replicates_luma_only_where_masked(sync_free):
    x = _images(6, seed=5).permute(0, 3, 1, 2)
    mask = torch.tensor([True, False, False, True, True, False])
    out = random_grayscale(x, mask, sync_free=sync_free)
    for n in range(6):
        expected = TF.rgb_to_grayscale(Image.fromarray(x[n].permute(1, 2, 0).numpy()), num_output_channels=3)
        expected = torch.from_numpy(np.array(expected)).permute(2, 0, 1)
        assert torch.equal(out[n], expected if mask[n] else x[n])
    before = x.clone()
    random_grayscale(x, mask, inplace=False, sync_free=sync_free)
    assert torch.equal(x, before)
    channels_last = x.contiguous(memory_format=torch.channels_last)
    assert random_grayscale(channels_last, mask, inplace=True, sync_free=sync_free) is channels_last
    assert torch.equal(channels_last, out)
    assert random_grayscale(x, torch.zeros(6, dtype=torch.bool), sync_free=sync_free).equal(x)


@given(seed=st.integers(0, 2**32 - 1), mean=st.tuples(*[st.floats(0.0, 1.0)] * 3),
       std=st.tuples(*[st.floats(0.01, 1.0)] * 3))
def test_normalize_equals_to_tensor_then_normalize_bit_for_bit(seed, mean, std):
    x = torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (2, 3, 32, 32), dtype=np.uint8))
    ours = normalize(x, torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32))
    for n in range(2):
        pil = Image.fromarray(x[n].permute(1, 2, 0).numpy())
        assert torch.equal(ours[n], TF.normalize(TF.to_tensor(pil), list(mean), list(std)))


# ---------------------------------------------------------------------------------------
# The loader: equal to the original PIL pipeline with the parameters it documents drawing
# ---------------------------------------------------------------------------------------


def _documented_draws(n: int, seed: int, epochs: int, train: bool = True, augment: bool = True):
    """The draws the DeviceLoader docstring promises, from an independent generator."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(epochs):
        draws = {"order": torch.randperm(n, generator=g) if train else torch.arange(n)}
        if augment:
            draws["dy"] = torch.randint(0, 9, (n,), generator=g)
            draws["dx"] = torch.randint(0, 9, (n,), generator=g)
            draws["flip"] = torch.rand(n, generator=g) < 0.5
            draws["gray"] = torch.rand(n, generator=g) < 0.3
        out.append(draws)
    return out


def _pil_pipeline(image_hwc: np.ndarray, dy: int, dx: int, flip: bool, gray: bool) -> torch.Tensor:
    """The original's transforms with the random choices fixed: pad+crop, flip, grayscale, ToTensor, Normalize."""
    image = TF.crop(TF.pad(Image.fromarray(image_hwc), 4), dy, dx, 32, 32)
    if flip:
        image = TF.hflip(image)
    if gray:
        image = TF.rgb_to_grayscale(image, num_output_channels=3)
    return TF.normalize(TF.to_tensor(image), list(MEAN), list(STD))


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_loader_equals_the_original_pil_pipeline(channels_last, layout):
    images = _images(40, seed=6)
    labels = torch.arange(40) % 10
    loader = DeviceLoader(images if layout == "NHWC" else images.permute(0, 3, 1, 2), labels, batch_size=16,
                          mean=MEAN, std=STD, train=True, augment=True, generator=torch.Generator().manual_seed(11),
                          channels_last=channels_last)
    assert len(loader) == 3
    for draws in _documented_draws(40, seed=11, epochs=2):
        position = 0
        for x, y in loader:
            assert x.dtype == torch.float32 and y.dtype == torch.int64 and x.shape[1:] == (3, 32, 32)
            assert x.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
            for k in range(len(x)):
                p = position + k
                n = int(draws["order"][p])
                expected = _pil_pipeline(images[n].numpy(), int(draws["dy"][p]), int(draws["dx"][p]),
                                         bool(draws["flip"][p]), bool(draws["gray"][p]))
                assert torch.equal(x[k], expected), (p, n)
                assert int(y[k]) == int(labels[n])
            position += len(x)
        assert position == 40


def test_evaluation_loader_is_ordered_and_unaugmented():
    images, labels = _images(23, seed=7), torch.arange(23) % 10
    loader = DeviceLoader(images, labels.numpy(), batch_size=10, mean=MEAN, std=STD, train=False, augment=False)
    batches = list(loader)
    assert [len(x) for x, _ in batches] == [10, 10, 3] and len(loader) == 3
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    expected = torch.stack([TF.normalize(TF.to_tensor(Image.fromarray(im.numpy())), list(MEAN), list(STD))
                            for im in images])
    assert torch.equal(x, expected) and torch.equal(y, labels)
    dropped = DeviceLoader(images, labels, batch_size=10, mean=MEAN, std=STD, train=False, drop_last=True)
    assert len(dropped) == 2 and [len(b[0]) for b in dropped] == [10, 10]


# ---------------------------------------------------------------------------------------
# The random draws have the original's distributions (read back from the output)
# ---------------------------------------------------------------------------------------


def _probe_image() -> torch.Tensor:
    """One image whose pixels say where they came from: R = 1 + row, G = 1 + column, B = 200."""
    rows, cols = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    return torch.stack([1 + rows, 1 + cols, torch.full((32, 32), 200)], dim=-1).to(torch.uint8)  # (32, 32, 3)


def _wilson_hilferty(dof: int, sigmas: float) -> float:
    """Approximate upper quantile of chi-square(dof) at ``sigmas`` standard normal deviations."""
    return dof * (1 - 2 / (9 * dof) + sigmas * math.sqrt(2 / (9 * dof))) ** 3


def test_crop_offsets_flips_and_grayscale_have_the_original_distributions():
    n_images, epochs = 2000, 5
    images = _probe_image().expand(n_images, 32, 32, 3).contiguous()
    loader = DeviceLoader(images, torch.zeros(n_images, dtype=torch.int64), batch_size=500, mean=(0, 0, 0),
                          std=(1, 1, 1), train=True, augment=True, generator=torch.Generator().manual_seed(2020))
    offsets = np.zeros((9, 9), np.int64)
    flips = colour = grays = 0
    for _ in range(epochs):
        for x, _ in loader:
            pixels = (x * 255).round().to(torch.int64)  # back to uint8 values (mean 0, std 1)
            centre = pixels[:, :, 16, 16]  # (B, 3); inside the image for every offset
            gray = (centre[:, 0] == centre[:, 1]) & (centre[:, 1] == centre[:, 2])
            grays += int(gray.sum())
            keep = ~gray  # read crop and flip from the coloured images (independent of grayscale)
            c = pixels[keep]
            dy = c[:, 0, 16, 16] - 13  # R = 1 + (dy + 16 - 4)
            flipped = c[:, 1, 16, 17] < c[:, 1, 16, 16]  # G decreases to the right in a mirrored crop
            dx = torch.where(flipped, c[:, 1, 16, 16] - 12, c[:, 1, 16, 16] - 13)
            assert ((dy >= 0) & (dy <= 8) & (dx >= 0) & (dx <= 8)).all()
            np.add.at(offsets, (dy.numpy(), dx.numpy()), 1)
            flips += int(flipped.sum())
            colour += int(keep.sum())
    total = n_images * epochs
    assert colour == offsets.sum() and colour + grays == total
    # grayscale: p = 0.3 within SIGMAS binomial standard deviations
    assert abs(grays - 0.3 * total) <= SIGMAS * math.sqrt(total * 0.3 * 0.7)
    # flip: p = 0.5 among the coloured images
    assert abs(flips - 0.5 * colour) <= SIGMAS * math.sqrt(colour * 0.25)
    # crop offsets: uniform over the 81 cells (chi-square, 80 degrees of freedom, and every cell)
    expected = colour / 81
    chi_square = float(((offsets - expected) ** 2 / expected).sum())
    assert chi_square <= _wilson_hilferty(80, SIGMAS), chi_square
    cell_sigma = math.sqrt(colour * (1 / 81) * (80 / 81))
    assert np.abs(offsets - expected).max() <= SIGMAS * cell_sigma


# ---------------------------------------------------------------------------------------
# Sharding and resuming
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("world_size", [2, 3])
def test_ranks_together_make_the_one_process_batches(world_size, drop_last):
    images, labels = _images(50, seed=8), torch.arange(50) % 10

    def loader(rank: int, ws: int) -> DeviceLoader:
        return DeviceLoader(images, labels, batch_size=12, mean=MEAN, std=STD, train=True, augment=True,
                            generator=torch.Generator().manual_seed(5), drop_last=drop_last, rank=rank,
                            world_size=ws)

    single = loader(0, 1)
    ranks = [loader(r, world_size) for r in range(world_size)]
    assert all(len(r) == len(single) for r in ranks)
    for _ in range(2):  # two epochs
        per_rank = [list(r) for r in ranks]
        for b, (x, y) in enumerate(single):
            parts = [per_rank[r][b] for r in range(world_size)]
            assert torch.equal(torch.cat([p[0] for p in parts]), x)
            assert torch.equal(torch.cat([p[1] for p in parts]), y)
            if len(x) == 12:
                assert all(len(p[0]) == 12 // world_size for p in parts)


def test_batch_size_must_split_over_ranks_and_randomness_needs_a_generator():
    images, labels = _images(8), torch.zeros(8, dtype=torch.int64)
    with pytest.raises(ValueError, match=r"batch_size=10 is the global batch .* multiple of world_size=3"):
        DeviceLoader(images, labels, batch_size=10, mean=MEAN, std=STD, generator=torch.Generator(), rank=0,
                     world_size=3)
    with pytest.raises(ValueError, match="rank < world_size"):
        DeviceLoader(images, labels, batch_size=4, mean=MEAN, std=STD, generator=torch.Generator(), rank=2,
                     world_size=2)
    with pytest.raises(ValueError, match=r"explicit generator, e\.g\. generator=torch\.Generator\(\)"):
        DeviceLoader(images, labels, batch_size=4, mean=MEAN, std=STD, train=True)
    with pytest.raises(ValueError, match="uint8"):
        DeviceLoader(images.float(), labels, batch_size=4, mean=MEAN, std=STD, train=False)
    with pytest.raises(ValueError, match="labels of shape"):
        DeviceLoader(images, labels[:5], batch_size=4, mean=MEAN, std=STD, train=False)


def _run(loader: DeviceLoader, epochs: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [batch for _ in range(epochs) for batch in loader]


def test_resume_from_saved_state_is_bit_identical():
    images, labels = _images(30, seed=9), torch.arange(30) % 10

    def make(seed: int) -> DeviceLoader:
        return DeviceLoader(images, labels, batch_size=8, mean=MEAN, std=STD, train=True, augment=True,
                            generator=torch.Generator().manual_seed(seed))

    reference = _run(make(1), 3)  # 3 epochs of 4 batches

    # at an epoch boundary
    first = make(1)
    _run(first, 1)
    state = first.state_dict()
    resumed = make(999)  # a different seed: the state must override it
    resumed.load_state_dict(state)
    for (x, y), (rx, ry) in zip(_run(resumed, 2), reference[4:], strict=True):
        assert torch.equal(x, rx) and torch.equal(y, ry)

    # in the middle of the second epoch, after 2 of its 4 batches
    second = make(1)
    _run(second, 1)
    iterator = iter(second)
    next(iterator), next(iterator)
    state = second.state_dict()
    assert state["batches_done"] == 2
    resumed = make(999)
    resumed.load_state_dict(state)
    rest = list(resumed) + list(resumed)  # the rest of epoch 2, then epoch 3
    for (x, y), (rx, ry) in zip(rest, reference[6:], strict=True):
        assert torch.equal(x, rx) and torch.equal(y, ry)


# ---------------------------------------------------------------------------------------
# The benchmark script runs
# ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_bench_data_pipeline_smoke(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "data_pipeline.py"), "--smoke", "--out",
                             str(out)], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["torchvision"]["images_per_s"] > 0 and report["device"]["images_per_s"] > 0
    assert report["ratio"] == pytest.approx(report["device"]["images_per_s"] / report["torchvision"]["images_per_s"])
    assert report["smoke"] is True and "command" in report and "torch" in report["machine"]
    assert "ratio" in result.stdout
