"""Data larger than memory: images decoded on demand, in `DataLoader` worker processes.

A dataset whose images (as float32) fit in the memory budget is loaded as one resident tensor, as
always. One that does not becomes `LazyImages`: a view of a source (a torch `Dataset` that decodes or
renders one image by index: a folder's files, the sprite grid) that behaves like the images tensor
where the engine uses it (`len`, `shape`, indexing by a tensor of indices, `split` into batches), and
decodes only the batch being used, in `DataLoader` workers with pinned memory.

The budget: `$VAE_MEMORY_BUDGET` (bytes, or with a unit: `512MB`, `8GB`), else half of the memory that
is free now (the smaller of free RAM and, on a machine with a CUDA GPU, where resident data would go,
free GPU memory; the data is loaded before the run's device is chosen, so this errs on the safe side).
"""

from __future__ import annotations

import os
import re

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from vae_core.errors import VAEError

BUDGET_ENV = "VAE_MEMORY_BUDGET"
FREE_FRACTION = 0.5  # of free memory, the default budget
UNITS = {"": 1, "B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30, "TB": 2**40}


def parse_size(text: str) -> int:
    """`'512MB'`, `'8GB'`, `'1.5 GB'` or a number of bytes, as bytes (units are powers of 1,024)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?B?)\s*", str(text), flags=re.IGNORECASE)
    if not m or float(m.group(1)) <= 0:
        raise VAEError(f"memory budget must be a positive size such as 512MB or 8GB (got {text!r})")
    return int(float(m.group(1)) * UNITS[m.group(2).upper()])


def free_ram() -> int:
    """Bytes of RAM available now (Linux MemAvailable; elsewhere the free pages)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def memory_budget() -> int:
    """Bytes the images of a dataset may take as one resident tensor (see the module docstring)."""
    if os.environ.get(BUDGET_ENV):
        return parse_size(os.environ[BUDGET_ENV])
    free = free_ram()
    if torch.cuda.is_available():
        free = min(free, torch.cuda.mem_get_info()[0])
    return int(free * FREE_FRACTION)


def worker_count() -> int:
    """DataLoader workers per process: the cores this process may use less one for the training loop,
    shared among the processes torchrun started on this machine."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    per_process = cores // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(1, per_process - 1)


def plan(n: int, shape: tuple[int, int, int], budget: int | None = None) -> dict:
    """Resident or streamed, for `n` images of `shape` as float32; with the line that reports it."""
    budget = memory_budget() if budget is None else budget
    need = n * shape[0] * shape[1] * shape[2] * 4
    streamed = need > budget
    how = (f"streamed through a DataLoader ({_count(worker_count(), 'worker')})" if streamed
           else "resident in memory")
    return {"loading": "streamed" if streamed else "resident", "image_bytes": need, "budget": budget,
            "loading_line": f"data: {n:,} images, {_size(need)} as float32, {how} "
                            f"(memory budget {_size(budget)}: --memory-budget or ${BUDGET_ENV})"}


def loading_of(images) -> dict:
    """The report `plan` gives, for images held in memory whatever the budget (the datasets that are
    never streamed)."""
    n, c, h, w = images.shape
    report = plan(n, (c, h, w), max(memory_budget(), n * c * h * w * 4))
    if isinstance(images, ByteImages):
        report["loading_line"] = report["loading_line"].replace(
            "resident in memory", f"held in memory as bytes ({_size(n * c * h * w)}), converted per batch")
    return report


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _size(n: int) -> str:
    for unit in ("TB", "GB", "MB", "KB"):
        if n >= UNITS[unit]:
            return f"{n / UNITS[unit]:.1f} {unit}"
    return f"{n} B"


class LazyImages:
    """Images (N, C, H, W) float32 in [0, 1], decoded on demand from `source` (a `Dataset` whose item i
    is image i as (C, H, W)); `index` picks and orders the images this view shows."""

    resident = False  # decoded per batch by DataLoader workers (see ByteImages for held bytes)

    def __init__(self, source: Dataset, shape: tuple[int, int, int], index: torch.Tensor | None = None,
                 convert: tuple[int | None, int | None] = (None, None)):
        self.source, self.item_shape, self.conv = source, tuple(shape), convert
        self.index = torch.arange(len(source)) if index is None else index

    # --- what the engine uses of a tensor
    def __len__(self) -> int:
        return len(self.index)

    @property
    def shape(self) -> tuple[int, ...]:
        size, channels = self.conv
        c, h, w = self.item_shape
        return (len(self), channels or c, size or h, size or w)

    def __getitem__(self, which):
        """An int gives that image, decoded, as (C, H, W), as a tensor would; a tensor of indices or a
        slice gives a view (nothing decoded)."""
        if isinstance(which, int):
            return self._converted(self.source[int(self.index[which])].unsqueeze(0))[0]
        return self._view(self.index[which], self.conv)

    def _view(self, index: torch.Tensor, convert: tuple[int | None, int | None]) -> LazyImages:
        return LazyImages(self.source, self.item_shape, index, convert)

    def split(self, batch_size: int, *, workers: int | None = None, pin: bool = False):
        """The images in batches of `batch_size`, in this view's order, decoded by DataLoader workers."""
        return self.batches(torch.arange(len(self)).split(batch_size), workers=workers, pin=pin)

    def batches(self, positions, *, workers: int | None = None, pin: bool = False):
        """Yield one tensor per tensor of view positions in `positions` (e.g. an epoch's shuffled
        batches), decoded in `workers` DataLoader processes (default `worker_count()`)."""
        loader = DataLoader(self.source, batch_sampler=[self.index[p].tolist() for p in positions],
                            num_workers=worker_count() if workers is None else workers, pin_memory=pin,
                            collate_fn=torch.stack)
        try:
            for x in loader:
                yield self._converted(x)
        except VAEError as e:  # raised in a worker: DataLoader wraps it in the worker's traceback
            raise VAEError(str(e).strip().splitlines()[-1].removeprefix(f"{VAEError.__module__}.VAEError: ")) from None

    def load(self) -> torch.Tensor:
        """This view as one tensor (only for small views: previews, a gallery)."""
        return torch.cat(list(self.split(max(1, len(self)), workers=0))) if len(self) else torch.empty(self.shape)

    def convert(self, size: int | None, channels: int | None) -> LazyImages:
        """A view whose batches are resized / converted as `convert_images` does."""
        return self._view(self.index, (size, channels))

    def _converted(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv == (None, None):
            return x
        return convert_images(x, *self.conv)


_BYTE_MAX = torch.tensor(255.0)  # a float32 scalar: the quotient is float32 whatever torch's default dtype


def _unit(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels as float32 in [0, 1], as torchvision's `ToTensor` gives them (the same bits as
    `.float().div_(255)`, in one pass)."""
    return torch.div(pixels, _BYTE_MAX)


class _Bytes(Dataset):
    def __init__(self, pixels: torch.Tensor):
        self.pixels = pixels

    def __len__(self) -> int:
        return len(self.pixels)

    def __getitem__(self, i: int) -> torch.Tensor:
        return _unit(self.pixels[i])


class ByteImages(LazyImages):
    """8-bit images held in memory as they were read, uint8 (N, C, H, W): a quarter of the float32
    tensor. Each batch is indexed and converted to float32 in [0, 1] when it is read, as torchvision's
    `ToTensor` does, in this process (no workers); views index without copying, like LazyImages."""

    resident = True

    def __init__(self, pixels: torch.Tensor, index: torch.Tensor | None = None,
                 convert: tuple[int | None, int | None] = (None, None)):
        if pixels.dtype != torch.uint8 or pixels.ndim != 4:
            raise VAEError(f"ByteImages holds uint8 (N, C, H, W) pixels (got {pixels.dtype}, {tuple(pixels.shape)})")
        super().__init__(_Bytes(pixels), tuple(pixels.shape[1:]), index, convert)
        self.pixels = pixels

    def _view(self, index: torch.Tensor, convert: tuple[int | None, int | None]) -> ByteImages:
        return ByteImages(self.pixels, index, convert)

    def batches(self, positions, *, workers: int | None = None, pin: bool = False):
        for p in positions:
            x = _unit(self.pixels.index_select(0, self.index[p].to(self.pixels.device)))  # faster than [...]
            yield self._converted(x.pin_memory() if pin else x)

    def to(self, device) -> ByteImages:
        """The same images with their bytes on `device` (a GPU holds a quarter of what float32 takes)."""
        return ByteImages(self.pixels.to(device), self.index, self.conv)


def streamed(images) -> bool:
    """Whether `images` are decoded per batch from their source (over the memory budget), rather than
    held in memory (a tensor, or ByteImages)."""
    return isinstance(images, LazyImages) and not images.resident


def as_tensor(images) -> torch.Tensor:
    """Resident images as they are; a `LazyImages` view decoded (keep such views small)."""
    return images.load() if isinstance(images, LazyImages) else images


def convert_images(images: torch.Tensor, size: int | None, channels: int | None) -> torch.Tensor:
    """Resize (antialiased bilinear) and convert grey↔RGB; a no-op when nothing changes. Streamed
    images (`LazyImages`) are converted batch by batch as they are decoded."""
    if isinstance(images, LazyImages):
        return images.convert(size, channels)
    if channels is not None and images.shape[1] != channels:
        if channels == 3:
            images = images.expand(-1, 3, -1, -1)
        else:  # ITU-R 601 luma, as Pillow's "L" mode
            weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            images = (images * weights).sum(1, keepdim=True)
    if size is not None and tuple(images.shape[-2:]) != (size, size):
        images = F.interpolate(images, size=(size, size), mode="bilinear", antialias=True,
                               align_corners=False).clamp_(0, 1)
    return images.contiguous().float()
