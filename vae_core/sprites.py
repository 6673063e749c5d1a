"""Procedural dSprites-style images: binary 2-D shapes over a full grid of generative factors.

`render_sprites` draws every combination of shape, scale, orientation and position, in the
row-major order of dSprites (shape, scale, orientation, pos_x, pos_y; the last varies fastest),
together with the factor index of each image. No randomness is involved: the output depends only
on the arguments and is byte-identical from run to run.

Geometry, in fractions of the image side S at scale 1.0:

* square: side 0.32 S;
* ellipse: axes 0.42 S x 0.21 S (2:1), long axis horizontal at orientation 0;
* heart: the implicit curve (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, one curve unit = 0.16 S
  (about 0.36 S wide and tall), upright at orientation 0.

Every sprite is drawn on a K x K canvas, K the smallest whole number of pixels that holds the
largest sprite at any rotation, and pasted at whole-pixel offsets round(p * (S - K)) for the
positions p in [0, 1]: position 0 puts the canvas against the left (pos_x) or top (pos_y) edge,
position 1 against the right or bottom edge. A sprite's centre is the same point for all shapes
and scales, so the position factors mean the same thing for every shape. A pixel is on when its
centre lies inside the rotated, scaled shape (no anti-aliasing). Orientation turns the shape
counter-clockwise on screen about its centre.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral

import numpy as np
import torch
import torch.utils.data

SHAPES = ("square", "ellipse", "heart")
FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")

MIN_IMAGE_SIZE = 16
MIN_SCALE = 0.5
MAX_SCALE = 1.0
SQUARE_HALF_SIDE = 0.16  # fraction of the image side at scale 1
ELLIPSE_SEMI_AXES = (0.21, 0.105)  # (along the orientation, across it)
HEART_UNIT = 0.16  # one unit of the heart curve, as a fraction of the image side
HEART_CENTRE_Y = 0.118  # middle of the curve's extent in y, [-1, 1.236] (curve units)
HEART_RADIUS = 1.34  # bound on the distance from (0, HEART_CENTRE_Y) (curve units)


@dataclass(frozen=True, eq=False)
class SpriteGrid:
    """Every image of a sprite grid and the factor indices that produced it.

    images: float32 (N, 1, S, S), each pixel exactly 0.0 or 1.0.
    factors: int64 (N, 5), per image the index into `factor_values` of each factor, columns in
        the order of `factor_names`.
    factor_values: per factor, the value behind each index (shape names, then floats).
    factor_names: ("shape", "scale", "orientation", "pos_x", "pos_y").
    """

    images: torch.Tensor
    factors: torch.Tensor
    factor_values: tuple[tuple[float | str, ...], ...]
    factor_names: tuple[str, ...] = FACTOR_NAMES


def _check_int(name: str, value: object, minimum: int) -> int:
    """`value` as an int, or ValueError when it is not an integer >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum} (got {value!r})")
    return int(value)


def _canvas_size(image_size: int) -> int:
    """Side K of the square canvas that holds every sprite at scale 1 and any rotation."""
    radius = max(
        SQUARE_HALF_SIDE * math.sqrt(2.0),
        max(ELLIPSE_SEMI_AXES),
        HEART_UNIT * HEART_RADIUS,
    )
    return math.ceil(2.0 * radius * image_size)


def _pixel_centres(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres of a K x K canvas from its centre, y up: x (1, K) and y (K, 1) float64."""
    c = np.arange(k, dtype=np.float64) + (0.5 - k / 2.0)
    return c[np.newaxis, :], -c[:, np.newaxis]


def _inside(shape: str, u: np.ndarray, v: np.ndarray, size: float) -> np.ndarray:
    """Bool mask of the points (u, v) in pixels, in the sprite's own frame, inside `shape`."""
    if shape == "square":
        half = SQUARE_HALF_SIDE * size
        return (np.abs(u) <= half) & (np.abs(v) <= half)
    if shape == "ellipse":
        a = ELLIPSE_SEMI_AXES[0] * size
        b = ELLIPSE_SEMI_AXES[1] * size
        return (u * u) * (b * b) + (v * v) * (a * a) <= (a * a) * (b * b)
    unit = HEART_UNIT * size
    x = u / unit
    y = v / unit + HEART_CENTRE_Y
    r = x * x + y * y - 1.0
    return r * r * r - (x * x) * (y * y * y) <= 0.0


def _sprite_mask(shape: str, size: float, angle: float, k: int) -> np.ndarray:
    """Bool (K, K) mask of one sprite; `size` is the image side times the scale, in pixels."""
    x, y = _pixel_centres(k)
    cos_a, sin_a = math.cos(angle), math.sin(angle)
    u = x * cos_a + y * sin_a  # rotate the sampling points by -angle
    v = y * cos_a - x * sin_a
    return _inside(shape, u, v, size)


def _offsets(positions: np.ndarray, free: int) -> np.ndarray:
    """Whole-pixel canvas offsets (n,) int for positions in [0, 1] over `free` pixels of play."""
    return np.rint(positions * free).astype(np.int64)


def _paste(block: np.ndarray, mask: np.ndarray, offsets: np.ndarray) -> None:
    """Write `mask` (K, K) into zeroed `block` (P, P, S, S) at every (pos_x, pos_y) offset pair."""
    k = mask.shape[0]
    image_size = block.shape[-1]
    column = np.zeros((len(offsets), image_size, k), dtype=block.dtype)  # one per pos_y
    for j, oy in enumerate(offsets):
        column[j, oy : oy + k, :] = mask
    for i, ox in enumerate(offsets):
        block[i, :, :, ox : ox + k] = column


def _factor_table(sizes: tuple[int, ...]) -> torch.Tensor:
    """int64 (prod(sizes), len(sizes)): all index tuples in row-major order, last fastest."""
    grid = np.indices(sizes, dtype=np.int64).reshape(len(sizes), -1).T
    return torch.from_numpy(np.ascontiguousarray(grid))


def _grid(image_size: int, n_orientations: int, n_positions: int, n_scales: int):
    """The checked grid parameters: (sizes, scales, angles, positions, canvas side K, offsets)."""
    image_size = _check_int("image_size", image_size, MIN_IMAGE_SIZE)
    n_orientations = _check_int("n_orientations", n_orientations, 1)
    n_positions = _check_int("n_positions", n_positions, 1)
    n_scales = _check_int("n_scales", n_scales, 1)
    scales = np.linspace(MIN_SCALE, MAX_SCALE, n_scales)
    angles = np.linspace(0.0, 2.0 * math.pi, n_orientations, endpoint=False)
    positions = np.linspace(0.0, 1.0, n_positions)
    k = _canvas_size(image_size)
    sizes = (len(SHAPES), n_scales, n_orientations, n_positions, n_positions)
    return sizes, scales, angles, positions, k, _offsets(positions, image_size - k)


def _values(scales, angles, positions) -> tuple[tuple, ...]:
    return (SHAPES, tuple(float(s) for s in scales), tuple(float(a) for a in angles),
            tuple(float(p) for p in positions), tuple(float(p) for p in positions))


def render_sprites(
    image_size: int = 32,
    n_orientations: int = 10,
    n_positions: int = 16,
    n_scales: int = 6,
) -> SpriteGrid:
    """Render the full grid of N = 3 * n_scales * n_orientations * n_positions**2 sprites.

    Returns a `SpriteGrid` with images float32 (N, 1, image_size, image_size) in {0, 1} and
    factors int64 (N, 5). Scales are linspace(0.5, 1, n_scales), orientations
    linspace(0, 2 pi, n_orientations, endpoint=False), positions linspace(0, 1, n_positions)
    (a single scale is 0.5 and a single position is 0). Images are written straight into the
    returned float32 buffer, so peak memory is about N * image_size**2 * 4 bytes.
    """
    sizes, scales, angles, positions, k, offsets = _grid(image_size, n_orientations, n_positions, n_scales)
    images = np.zeros((math.prod(sizes), 1, image_size, image_size), dtype=np.float32)
    blocks = images.reshape(-1, n_positions, n_positions, image_size, image_size)
    b = 0
    for shape in SHAPES:
        for scale in scales:
            for angle in angles:
                mask = _sprite_mask(shape, float(scale) * image_size, float(angle), k)
                _paste(blocks[b], mask, offsets)
                b += 1
    return SpriteGrid(torch.from_numpy(images), _factor_table(sizes), _values(scales, angles, positions))


class SpriteImages(torch.utils.data.Dataset):
    """The same grid as `render_sprites`, one image at a time: item i is image i of the grid as
    (1, S, S), drawn when asked (for grids too large to hold, such as the full 64 px dSprites grid)."""

    def __init__(self, image_size: int = 32, n_orientations: int = 10, n_positions: int = 16, n_scales: int = 6):
        self.image_size = image_size
        self.sizes, self.scales, self.angles, self.positions, self.k, self.offsets = _grid(
            image_size, n_orientations, n_positions, n_scales)

    def __len__(self) -> int:
        return math.prod(self.sizes)

    def __getitem__(self, i: int) -> torch.Tensor:
        shape, scale, angle, px, py = np.unravel_index(int(i), self.sizes)
        mask = _sprite_mask(SHAPES[shape], float(self.scales[scale]) * self.image_size,
                            float(self.angles[angle]), self.k)
        image = np.zeros((1, self.image_size, self.image_size), dtype=np.float32)
        ox, oy = self.offsets[px], self.offsets[py]
        image[0, oy:oy + self.k, ox:ox + self.k] = mask
        return torch.from_numpy(image)

    def factors(self) -> torch.Tensor:
        return _factor_table(self.sizes)

    def factor_values(self) -> tuple[tuple, ...]:
        return _values(self.scales, self.angles, self.positions)
