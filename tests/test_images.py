import io
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from vae_core import VAEError
from vae_core import images as I


def ramp(n: int, c: int = 1, side: int = 8) -> torch.Tensor:
    """n distinct images (n, c, side, side) in [0, 1]: image i is uniformly i / n."""
    return (torch.arange(n, dtype=torch.float32) / n).view(n, 1, 1, 1).expand(n, c, side, side).clone()


def decode(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


@pytest.mark.parametrize("side, factor", [(8, 14), (28, 4), (32, 4), (64, 2), (100, 2), (112, 1), (256, 1)])
def test_upscale_factor(side, factor):
    assert I.upscale_factor(side) == factor


def test_upscale_factor_with_target_and_invalid_side():
    assert I.upscale_factor(8, target=16) == 2
    with pytest.raises(VAEError, match="side"):
        I.upscale_factor(0)


def test_to_display_grey_single_image_is_2d_uint8_and_nearest_neighbour():
    img = torch.tensor([[[0.0, 1.0], [0.5, 0.25]]])  # (1, 2, 2)
    out = I.to_display(img, scale=3)
    assert out.shape == (6, 6) and out.dtype == np.uint8
    assert (out[:3, :3] == 0).all() and (out[:3, 3:] == 255).all()
    assert (out[3:, :3] == 128).all() and (out[3:, 3:] == 64).all()


def test_to_display_rgb_and_batches():
    assert I.to_display(torch.rand(3, 8, 8)).shape == (112, 112, 3)
    assert I.to_display(torch.rand(5, 1, 28, 28)).shape == (5, 112, 112)
    batch = I.to_display(torch.rand(2, 3, 64, 64), scale=1)
    assert batch.shape == (2, 64, 64, 3) and len(list(batch)) == 2


def test_to_display_clamps_rounding_error_but_rejects_out_of_range():
    assert I.to_display(torch.full((1, 4, 4), 1.0000001), scale=1).max() == 255
    with pytest.raises(VAEError, match=r"\[0, 1\]"):
        I.to_display(torch.full((1, 4, 4), 255.0))


@pytest.mark.parametrize("bad, match", [
    (torch.full((1, 1, 4, 4), float("nan")), "NaN"),
    (torch.zeros(4, 4), "shape"),
    (torch.zeros(1, 2, 4, 4), "channels"),
    (torch.zeros(1, 1, 4, 4, dtype=torch.uint8), "floats"),
    ([[0.0]], "tensor"),
])
def test_invalid_images_raise_vaeerror(bad, match):
    with pytest.raises(VAEError, match=match):
        I.to_display(bad)


def test_make_grid_shape_padding_and_grey_stays_one_channel():
    grid = I.make_grid(ramp(10), nrow=5, padding=2)
    assert grid.shape == (1, 2 + 2 * 10, 2 + 5 * 10)  # 2 rows, 5 columns of 8 px + 2 px padding
    assert grid[0, 0, :].eq(1.0).all()  # pad_value 1.0: a white frame
    assert torch.equal(grid[:, 2:10, 2:10], ramp(10)[0])
    assert I.make_grid(torch.rand(6, 3, 8, 8), nrow=3, padding=0).shape == (3, 16, 24)


@pytest.mark.parametrize("n, channels, nrow, padding, pad_value", [
    (10, 1, 5, 2, 1.0), (7, 3, 3, 0, 0.0), (1, 1, 4, 2, 1.0), (5, 1, 8, 3, 0.5), (12, 3, 1, 1, 0.25),
])
def test_make_grid_tiles_as_torchvision_does(n, channels, nrow, padding, pad_value):
    import torchvision.utils

    images = torch.rand(n, channels, 6, 5, generator=torch.Generator().manual_seed(n))
    theirs = torchvision.utils.make_grid(images, nrow=nrow, padding=padding, pad_value=pad_value)
    assert torch.equal(I.make_grid(images, nrow=nrow, padding=padding, pad_value=pad_value),
                       theirs[:channels])  # torchvision repeats a grey channel three times


def test_a_grid_does_not_import_torchvision():
    # torchvision's import loads torch's compiler: ~1 s of a server's first grid
    code = ("import sys, torch\nfrom vae_core.images import grid_png\n"
            "grid_png(torch.rand(6, 1, 8, 8), 3)\nprint('torchvision' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_make_grid_scale_upscales_tiles_not_padding():
    grid = I.make_grid(ramp(4), nrow=4, padding=1, pad_value=0.0, scale=3)
    assert grid.shape == (1, 1 + 24 + 1, 1 + 4 * 25)
    assert grid[0, 0].eq(0).all()
    with pytest.raises(VAEError, match="per row"):
        I.make_grid(ramp(4), nrow=0)


@pytest.mark.parametrize("channels, mode", [(1, "L"), (3, "RGB")])
def test_png_bytes_decode_to_the_upscaled_size(channels, mode):
    img = torch.rand(channels, 8, 6)
    png = decode(I.png_bytes(img))
    assert png.format == "PNG" and png.mode == mode and png.size == (6 * 14, 8 * 14)  # (W, H)
    assert np.array_equal(np.asarray(png), I.to_display(img))  # lossless
    assert decode(I.png_bytes(img, scale=1)).size == (6, 8)


def test_png_bytes_takes_one_image():
    with pytest.raises(VAEError, match=r"\(C, H, W\)"):
        I.png_bytes(torch.rand(2, 1, 8, 8))


@pytest.mark.parametrize("channels", [1, 3])
def test_gif_bytes_boomerang_loops_forever(channels):
    gif = decode(I.gif_bytes(ramp(6, channels), duration_ms=80))
    assert gif.format == "GIF" and gif.size == (112, 112)
    assert gif.n_frames == 2 * 6 - 2
    assert gif.info["loop"] == 0 and gif.info["duration"] == 80
    means = []
    for i in range(gif.n_frames):
        gif.seek(i)
        means.append(np.asarray(gif.convert("L"), dtype=float).mean())
    assert means[:6] == sorted(means[:6]) and len(set(means[:6])) == 6  # forward...
    assert means[6:] == means[4:0:-1]  # ...then back, without repeating the ends


def test_gif_bytes_forward_only_and_single_frame():
    assert decode(I.gif_bytes(ramp(5), boomerang=False, scale=2)).n_frames == 5
    one = decode(I.gif_bytes(ramp(1), scale=1))
    assert one.n_frames == 1 and one.size == (8, 8)


def test_gif_bytes_rejects_nan_and_too_short_frames():
    frames = ramp(3)
    frames[1, 0, 0, 0] = float("nan")
    with pytest.raises(VAEError, match="NaN"):
        I.gif_bytes(frames)
    with pytest.raises(VAEError, match="duration"):
        I.gif_bytes(ramp(3), duration_ms=5)
