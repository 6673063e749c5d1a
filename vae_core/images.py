"""Image tensors → what a front end shows or offers for download.

Images cross the core/UI boundary as float tensors (N, C, H, W) or (C, H, W) in [0, 1] on the CPU,
with C = 1 (grey) or 3 (RGB). This module turns them into uint8 arrays for display, grids, PNG and
animated GIF bytes. Small images are upscaled by an integer factor with nearest-neighbour sampling,
so every pixel stays a crisp square instead of a blur.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import zlib

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from vae_core.errors import VAEError

DISPLAY_SIDE = 112  # pixels: small images are upscaled until their longer side reaches this
RANGE_SLACK = 1e-3  # values this far outside [0, 1] are rounding error and are clamped; farther is an error
MIN_GIF_FRAME_MS = 20  # browsers play shorter GIF delays at 100 ms

# Label colours, one palette for every view that colours by label (the map, the film, its GIF, How it
# works' plane): tab10 first (a model with up to 10 labels looks as it always did), then 10 more picked
# to stand apart from those and from each other on white; past 20, `label_colours` steps the hue by the
# golden angle, so N labels always get N different colours (before, an 11th label took the 1st's blue).
PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
           (170, 13, 254), (28, 131, 86), (254, 175, 22), (50, 90, 155), (252, 28, 191), (133, 102, 13),
           (46, 217, 255), (176, 0, 104), (144, 173, 28), (248, 161, 159))


def label_colours(n: int) -> list[tuple[int, int, int]]:
    """The RGB colours of labels 0 … n-1, no two alike: PALETTE's, then generated ones."""
    import colorsys

    out, seen, i = list(PALETTE[:max(0, int(n))]), set(PALETTE), 0
    while len(out) < n:
        hue = (i * 0.381966) % 1.0  # the golden angle, as a fraction of the circle
        value = (0.55, 0.75, 0.95)[(i // 7) % 3]
        saturation = (0.95, 0.65, 0.8)[(i // 21) % 3]
        rgb = tuple(int(round(c * 255)) for c in colorsys.hsv_to_rgb(hue, saturation, value))
        i += 1
        if rgb not in seen:
            seen.add(rgb)
            out.append(rgb)
    return out


def label_colour(k: int) -> tuple[int, int, int]:
    """The RGB colour of label index `k` (>= 0), as `label_colours` gives it."""
    k = int(k)
    return PALETTE[k] if k < len(PALETTE) else label_colours(k + 1)[k]


def label_hex(k: int) -> str:
    """`label_colour(k)` as "#rrggbb", for plotly and the browser."""
    return "#{:02x}{:02x}{:02x}".format(*label_colour(k))


def label_hexes(n: int) -> list[str]:
    """The colours of labels 0 … n-1 (at least one), all different, as "#rrggbb"."""
    return ["#{:02x}{:02x}{:02x}".format(*rgb) for rgb in label_colours(max(1, int(n)))]


def upscale_factor(side: int, target: int = DISPLAY_SIDE) -> int:
    """The integer nearest-neighbour factor that brings `side` pixels up to at least `target`:
    8 → 14, 28 → 4, 64 → 2, anything ≥ target → 1."""
    if side < 1 or target < 1:
        raise VAEError(f"image side and target must be >= 1 pixel (got side={side}, target={target})")
    return max(1, math.ceil(target / side))


def _checked(images, ndims: tuple[int, ...]) -> torch.Tensor:
    """`images` as a float32 CPU tensor with C in {1, 3}, clamped to [0, 1]; a VAEError for the wrong
    shape or type, NaN, or values clearly outside [0, 1]."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if not isinstance(images, torch.Tensor):
        raise VAEError(f"images must be a tensor (got {type(images).__name__})")
    if images.ndim not in ndims:
        want = " or ".join({3: "(C, H, W)", 4: "(N, C, H, W)"}[n] for n in ndims)
        raise VAEError(f"images must be {want} (got shape {tuple(images.shape)})")
    if not images.is_floating_point():
        raise VAEError(f"images must be floats in [0, 1] (got {images.dtype})")
    channels = images.shape[-3]
    if channels not in (1, 3):
        raise VAEError(f"images must have 1 (grey) or 3 (RGB) channels (got {channels})")
    if images.numel() == 0:
        raise VAEError(f"images are empty (shape {tuple(images.shape)})")
    images = images.detach().cpu().float()
    if torch.isnan(images).any():
        raise VAEError("images contain NaN values")
    low, high = float(images.min()), float(images.max())
    if low < -RANGE_SLACK or high > 1 + RANGE_SLACK:
        raise VAEError(f"image values must lie in [0, 1] (got {low:.4g} to {high:.4g})")
    return images.clamp(0.0, 1.0)


def _upscaled_uint8(images: torch.Tensor, scale: int | None) -> np.ndarray:
    """(N, C, H, W) floats → (N, H·s, W·s, C) uint8, nearest-neighbour."""
    if scale is None:
        scale = upscale_factor(max(images.shape[-2:]))
    if scale < 1:
        raise VAEError(f"scale must be >= 1 (got {scale})")
    if scale > 1:
        images = F.interpolate(images, scale_factor=scale, mode="nearest")
    return images.mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def to_display(images, scale: int | None = None) -> np.ndarray:
    """uint8 pixels for display: (H', W') for a grey image, (H', W', 3) for RGB, and a leading N
    for a batch ((N, H', W') or (N, H', W', 3)), so `list(array)` gives one image per item.

    `scale` is the nearest-neighbour factor; None picks `upscale_factor` of the longer side. For a
    grid of small tiles pass the tiles' factor (or build the grid with `make_grid(..., scale=s)`).
    """
    images = _checked(images, (3, 4))
    single = images.ndim == 3
    pixels = _upscaled_uint8(images.unsqueeze(0) if single else images, scale)
    if pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    return pixels[0] if single else pixels


def make_grid(images, nrow: int, padding: int = 2, pad_value: float = 1.0, *, scale: int = 1) -> torch.Tensor:
    """Tile a batch (N, C, H, W) into one image (C, H', W'), `nrow` images per row, with
    `padding` pixels of `pad_value` between them and around them, as torchvision.utils.make_grid
    tiles (a single image comes back as it is). Grey stays one channel. `scale` upscales the tiles
    first (nearest-neighbour), keeping the padding thin.

    Written here rather than called from torchvision: importing torchvision loads torch's compiler
    (its `ops` import torch._dynamo), 1.0 s and ~160 MB of a server's first grid on the 2-core
    machine, for a dozen lines of tiling. tests/test_images.py compares the two."""
    images = _checked(images, (3, 4))
    if images.ndim == 3:
        images = images.unsqueeze(0)
    if nrow < 1:
        raise VAEError(f"images per row must be >= 1 (got {nrow})")
    if padding < 0:
        raise VAEError(f"padding must be >= 0 pixels (got {padding})")
    if not 0.0 <= pad_value <= 1.0:
        raise VAEError(f"pad_value must be in [0, 1] (got {pad_value})")
    if scale < 1:
        raise VAEError(f"scale must be >= 1 (got {scale})")
    if scale > 1:
        images = F.interpolate(images, scale_factor=scale, mode="nearest")
    n, c, h, w = images.shape
    if n == 1:
        return images[0]
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    grid = images.new_full((c, rows * (h + padding) + padding, cols * (w + padding) + padding), pad_value)
    for k in range(n):
        top, left = padding + (k // cols) * (h + padding), padding + (k % cols) * (w + padding)
        grid[:, top:top + h, left:left + w] = images[k]
    return grid


def png_bytes(image, scale: int | None = None) -> bytes:
    """One image (C, H, W) as PNG bytes (grey or RGB), nearest-neighbour upscaled like `to_display`.
    For a batch, tile it with `make_grid` first."""
    pixels = to_display(_checked(image, (3,)), scale)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def gif_bytes(frames, duration_ms: int = 80, scale: int | None = None, boomerang: bool = True) -> bytes:
    """Frames (N, C, H, W) as an animated GIF that loops forever, `duration_ms` per frame.

    `boomerang` plays forward then back without repeating the ends (2N − 2 frames), so a latent
    walk returns smoothly to its start. RGB frames are quantized to the GIF's 256 colours; Pillow
    merges identical consecutive frames into one longer frame.
    """
    frames = _checked(frames, (4,))
    if duration_ms < MIN_GIF_FRAME_MS:
        raise VAEError(f"GIF frame duration must be >= {MIN_GIF_FRAME_MS} ms (got {duration_ms}); "
                       "browsers play shorter delays slowly")
    if boomerang:
        frames = torch.cat([frames, frames[1:-1].flip(0)])
    pictures = [Image.fromarray(p) for p in to_display(frames, scale)]
    buffer = io.BytesIO()
    pictures[0].save(buffer, format="GIF", save_all=True, append_images=pictures[1:],
                     duration=duration_ms, loop=0)
    return buffer.getvalue()


def grid_png(images, nrow: int, *, tile: int = DISPLAY_SIDE) -> bytes:
    """A PNG of a grid of images (N, C, H, W), each tile upscaled (nearest neighbour) to at least
    `tile` pixels so small images stay sharp; a grid shown small wants a small `tile` (fewer
    pixels to encode and send)."""
    images = _checked(images, (4,))
    return png_bytes(make_grid(images, nrow, scale=upscale_factor(max(images.shape[-2:]), tile)), scale=1)


def cost_overlay(images: torch.Tensor, costs: torch.Tensor, top: float | None = None,
                 alpha: float = 0.75) -> tuple[torch.Tensor, float]:
    """Per-pixel costs (N, C, H, W) (nats; summed over channels) drawn in red over the images (N, C, H, W)
    in grey: RGB images (N, 3, H, W) in [0, 1] where a pixel is the redder the more it costs, full red at
    `top` nats (default: the 99th percentile of the summed costs, so one bright pixel does not wash out
    the rest). Returns the overlays and the `top` used, for the legend."""
    images = _checked(images, (4,))
    costs = torch.as_tensor(costs, dtype=torch.float32)
    if costs.shape != images.shape:
        raise VAEError(f"costs must have the images' shape {tuple(images.shape)} (got {tuple(costs.shape)})")
    per_pixel = costs.sum(1, keepdim=True).clamp_min(0)  # (N, 1, H, W)
    if top is None:
        top = float(torch.quantile(per_pixel.flatten()[:1_000_000], 0.99)) if per_pixel.numel() else 1.0
    top = max(float(top), 1e-6)
    heat = (per_pixel / top).clamp(0, 1) * alpha
    grey = 0.3 + 0.5 * images.mean(1, keepdim=True)  # the image, dimmed, under the heat
    red = torch.cat([torch.ones_like(grey), torch.zeros_like(grey), torch.zeros_like(grey)], 1)
    return (grey * (1 - heat) + red * heat).clamp(0, 1), top


SPRITE_MAX_SIDE = 8192  # pixels: a sprite sheet's longer side at most (browsers decode larger ones slowly)


def sprite_sheet(images, max_side: int = SPRITE_MAX_SIDE) -> tuple[bytes, int, int]:
    """Every image (N, C, H, W) as one PNG, tile after tile row-major with no padding, for a browser to
    cut one image out by its index: (PNG bytes, tiles per row, tile side in pixels). Tiles are shrunk
    (area average) when the sheet would pass `max_side` pixels a side: 100,000 28-px digits tile at 14 px."""
    if isinstance(images, torch.Tensor):
        images = _checked(images, (4,))
    n, _, h, w = images.shape
    if h != w:
        raise VAEError(f"sprite tiles must be square (got {h}x{w})")
    cols = math.ceil(math.sqrt(n))
    side = min(h, max(1, max_side // cols))
    rows = math.ceil(n / cols)
    tiles = None
    for start in range(0, n, 4096):  # a batch at a time: a streamed dataset is decoded as it goes
        chunk = _checked(torch.as_tensor(images[start:start + 4096]), (4,))
        if side != h:
            chunk = F.interpolate(chunk, size=(side, side), mode="area")
        pixels = (chunk.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()  # (B, s, s, C)
        if tiles is None:
            tiles = np.zeros((rows * cols, side, side, pixels.shape[-1]), dtype=np.uint8)
        tiles[start:start + len(pixels)] = pixels
    c = tiles.shape[-1]
    sheet = tiles.reshape(rows, cols, side, side, c).transpose(0, 2, 1, 3, 4).reshape(rows * side, cols * side, c)
    buffer = io.BytesIO()
    Image.fromarray(sheet[..., 0] if sheet.shape[-1] == 1 else sheet).save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue(), cols, side


LINK_IMAGE_MAX = 4000  # characters: the most an image may take in a page's address (`image_to_text`)


def _levels(x: torch.Tensor) -> torch.Tensor:
    """x in [0, 1] as its 8-bit levels, 0..255 (float)."""
    return torch.round(torch.as_tensor(x, dtype=torch.float32).clamp(0, 1) * 255)


def quantized(x: torch.Tensor) -> torch.Tensor:
    """x in [0, 1] rounded to the 256 levels an 8-bit image holds (what `image_to_text` keeps exactly)."""
    return _levels(x) / 255


def image_to_text(x: torch.Tensor) -> str:
    """An image in [0, 1] as short URL-safe text: its 8-bit levels, deflated, in base64url (no padding).
    A 28×28 digit takes about 200–400 characters; `image_from_text` gives `quantized(x)` back."""
    levels = _levels(x).to(torch.uint8)
    packed = zlib.compress(levels.reshape(-1).numpy().tobytes(), 9)
    return base64.urlsafe_b64encode(packed).decode("ascii").rstrip("=")


def image_from_text(text: str, shape: tuple[int, ...]) -> torch.Tensor:
    """The image `image_to_text` wrote, shaped (1, *shape); ValueError (one line) for text that is not
    one, or is one of another size."""
    size = math.prod(shape)
    if len(text) > LINK_IMAGE_MAX:
        raise ValueError(f"longer than {LINK_IMAGE_MAX} characters")
    try:
        raw = zlib.decompressobj().decompress(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), size + 1)
    except (binascii.Error, zlib.error, ValueError):
        raise ValueError("not an image this app wrote") from None
    if len(raw) != size:
        raise ValueError(f"an image of {len(raw)} values, not this model's {size}")
    return (torch.frombuffer(bytearray(raw), dtype=torch.uint8).float() / 255).reshape(1, *shape)
