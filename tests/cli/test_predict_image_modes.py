"""predict reads every Pillow mode as 8-bit RGB by its real range (16-bit grayscale, palettes, alpha, CMYK).

The attack: a 16-bit grayscale PNG (mode ``I;16``) came out white -- Pillow's ``convert("RGB")``
clips 0..65535 at 255, so 99.6 % of its pixels were 255 -- and predict still answered
confidently. The expected pixels are always Pillow's own: for a 16-bit image, Pillow's
conversion of the 8-bit image it was widened from (``v16 = 257 * v8``, the widening PNG and
TIFF tools use); for every other mode, Pillow's ``convert("RGB")`` of the file as Pillow reads it.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cifar_alexnet.cli import main
from cifar_alexnet.errors import DataError
from cifar_alexnet.inference.predict import load_image, rgb_image


def _gray8(seed: int) -> np.ndarray:
    gray = np.random.default_rng(seed).integers(0, 256, (32, 32), dtype=np.uint8)
    gray[0, :2] = (0, 255)  # both ends of the range
    return gray


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_a_16_bit_image_is_scaled_not_clipped(tmp_path, fmt):
    gray8 = _gray8(1)
    path = tmp_path / f"gray16.{fmt.lower()}"
    Image.fromarray(gray8.astype(np.uint16) * 257).save(path, format=fmt)
    assert Image.open(path).mode == "I;16"
    expected = np.asarray(Image.fromarray(gray8, "L").convert("RGB"))
    np.testing.assert_array_equal(load_image(path), expected)
    clipped = np.asarray(Image.open(path).convert("RGB"))  # what Pillow alone gives: mostly white
    assert (clipped == 255).mean() > 0.9 and (load_image(path) == 255).mean() < 0.1


def test_16_bit_values_between_the_widened_ones_round_to_the_nearest(tmp_path):
    gray8 = _gray8(2)
    offsets = np.random.default_rng(3).integers(-128, 129, gray8.shape)  # within half a step of 257
    wide = np.clip(gray8.astype(np.int64) * 257 + offsets, 0, 65535).astype(np.uint16)
    Image.fromarray(wide).save(tmp_path / "noisy16.png")
    np.testing.assert_array_equal(load_image(tmp_path / "noisy16.png")[..., 0], gray8)


def _rgba(seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (32, 32, 4), dtype=np.uint8), "RGBA")


@pytest.mark.parametrize("mode, fmt", [("1", "PNG"), ("L", "PNG"), ("P", "PNG"), ("RGBA", "PNG"), ("LA", "PNG"),
                                       ("CMYK", "JPEG"), ("CMYK", "TIFF"), ("YCbCr", "TIFF"), ("LAB", "TIFF"),
                                       ("RGB", "JPEG")])
def test_a_file_of_each_mode_reads_as_pillows_own_conversion(tmp_path, mode, fmt):
    path = tmp_path / f"image.{fmt.lower()}"
    _rgba(4).convert(mode).save(path, format=fmt)
    with Image.open(path) as written:
        assert written.mode == mode
        if "transparency" in written.info:  # Pillow asks for palettes with transparency to go through RGBA
            written = written.convert("RGBA")
        expected = np.asarray(written.convert("RGB"))
    np.testing.assert_array_equal(load_image(path), expected)


def test_a_palette_with_transparency_keeps_its_colours(tmp_path):
    image = _rgba(5).convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    image.save(tmp_path / "p.png", transparency=3)
    with Image.open(tmp_path / "p.png") as written:
        assert written.mode == "P" and "transparency" in written.info
        expected = np.asarray(written.convert("RGBA").convert("RGB"))
    np.testing.assert_array_equal(load_image(tmp_path / "p.png"), expected)


@pytest.mark.parametrize("mode", ["PA", "HSV", "RGBa", "RGBX", "La"])
def test_modes_no_file_format_keeps_convert_like_pillow(mode):
    """La (premultiplied) converts only to LA in Pillow, so its expected pixels are Pillow's La -> LA -> RGB."""
    image = _rgba(6).convert("LA").convert("La") if mode == "La" else _rgba(6).convert(mode)
    expected = np.asarray(image.convert("LA").convert("RGB") if mode == "La" else image.convert("RGB"))
    np.testing.assert_array_equal(np.asarray(rgb_image(image, "x")), expected)


@pytest.mark.parametrize("mode", ["I", "F"])
def test_32_bit_images_without_a_range_are_refused(tmp_path, mode):
    Image.fromarray(_gray8(7)).convert(mode).save(tmp_path / "wide.tiff")
    with pytest.raises(DataError, match=rf"mode '{mode}' .*has no fixed range"):
        load_image(tmp_path / "wide.tiff")


def test_predict_on_a_16_bit_png_prints_no_error(tmp_path, capsys):
    from cifar_alexnet.checkpoints.format import save_checkpoint
    from cifar_alexnet.checkpoints.meta import CheckpointMeta
    from cifar_alexnet.data.arrays import CIFAR10_CLASSES
    from cifar_alexnet.model import AlexNet

    checkpoint = save_checkpoint(tmp_path / "c.safetensors", AlexNet(hidden=16),
                                 meta=CheckpointMeta(classes=CIFAR10_CLASSES, mean=(0.5,) * 3, std=(0.25,) * 3))
    Image.fromarray(_gray8(8).astype(np.uint16) * 257).save(tmp_path / "gray16.png")
    assert main(["predict", str(checkpoint), str(tmp_path / "gray16.png"), "--device", "cpu"]) == 0
    assert capsys.readouterr().err == ""
