"""The dataset registry: offline datasets, the torchvision path on tiny real files, folders of images."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import vae_core.data as data_mod
from vae_core import DATASETS, VAEError, load_dataset
from vae_core.sprites import render_sprites
from vae_core.streaming import ByteImages, as_tensor, convert_images

# --- shared checks


def assert_split(bundle, n_train: int, n_test: int) -> None:
    n = bundle.images.shape[0]
    train, test = bundle.train_idx, bundle.test_idx
    assert train.dtype == torch.int64 and test.dtype == torch.int64
    assert (len(train), len(test)) == (n_train, n_test)
    assert len(set(train.tolist()) | set(test.tolist())) == n  # disjoint and covering
    assert int(train.min()) >= 0 and int(test.max()) < n


def assert_images(images: torch.Tensor, shape: tuple) -> None:
    assert tuple(images.shape) == shape
    assert images.dtype == torch.float32
    assert images.is_contiguous()
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0


# --- mnist5k and digits


def test_mnist5k_shape_range_and_labels(mnist5k):
    assert mnist5k.name == "mnist5k"
    assert_images(mnist5k.images, (5000, 1, 28, 28))
    assert float(mnist5k.images.max()) == 1.0  # scaled by 255, not left in 0..255 nor squeezed
    assert mnist5k.image_shape == (1, 28, 28)
    assert mnist5k.labels.dtype == torch.int64 and mnist5k.labels.shape == (5000,)
    assert torch.bincount(mnist5k.labels).tolist() == [500] * 10
    assert mnist5k.class_names == tuple(str(d) for d in range(10))


def test_mnist5k_split_is_stratified(mnist5k):
    assert_split(mnist5k, 4000, 1000)
    assert torch.bincount(mnist5k.labels[mnist5k.test_idx], minlength=10).tolist() == [100] * 10
    test = mnist5k.split("test")
    assert len(test) == 1000 and torch.equal(test.images, mnist5k.images[mnist5k.test_idx])
    assert torch.equal(test.labels, mnist5k.labels[mnist5k.test_idx])
    assert test.factors is None
    with pytest.raises(VAEError):
        mnist5k.split("validation")


def test_mnist5k_is_deterministic(mnist5k):
    again = load_dataset("mnist5k")
    assert torch.equal(again.images, mnist5k.images)
    assert torch.equal(again.labels, mnist5k.labels)
    assert torch.equal(again.train_idx, mnist5k.train_idx)
    assert torch.equal(again.test_idx, mnist5k.test_idx)


def test_mnist5k_ships_the_split_scikit_learn_draws(mnist5k):
    train, test = data_mod.split_indices(5000, 1000, mnist5k.labels.numpy())
    assert torch.equal(mnist5k.train_idx, train) and torch.equal(mnist5k.test_idx, test)
    assert data_mod.shipped_split("mnist5k", mnist5k.labels.numpy(), 1000) is not None  # it came from the file


def test_a_shipped_split_is_not_used_for_other_labels_or_sizes(mnist5k):
    labels = mnist5k.labels.numpy()
    assert data_mod.shipped_split("mnist5k", labels[::-1], 1000) is None  # labels it was not drawn for
    assert data_mod.shipped_split("mnist5k", labels, 500) is None
    assert data_mod.shipped_split("digits", labels, 1000) is None  # no file


def test_loading_mnist5k_does_not_import_scikit_learn():
    script = ("import sys\nfrom vae_core.data import load_dataset\nload_dataset('mnist5k')\n"
              "print('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "False", out.stderr[-500:]


def test_digits(digits):
    assert digits.name == "digits"
    assert_images(digits.images, (1797, 1, 8, 8))
    assert float(digits.images.max()) == 1.0
    assert digits.labels.shape == (1797,) and set(digits.labels.tolist()) == set(range(10))
    assert_split(digits, 1437, 360)


def test_resize_and_channels_apply_to_any_dataset():
    b = load_dataset("digits", image_size=16, channels=3)
    assert_images(b.images, (1797, 3, 16, 16))
    assert torch.equal(b.images[:, 0], b.images[:, 2])  # grey expanded to RGB
    assert b.spec["image_size"] == 16 and b.spec["channels"] == 3


# --- sprites


@pytest.fixture(scope="module")
def sprites():
    return load_dataset("sprites")


def test_render_sprites_small_grid():
    grid = render_sprites(32, 4, 4)
    sizes = (3, 6, 4, 4, 4)
    n = int(np.prod(sizes))
    assert_images(grid.images, (n, 1, 32, 32))
    assert set(torch.unique(grid.images).tolist()) == {0.0, 1.0}  # binary
    assert bool((grid.images.sum((1, 2, 3)) > 0).all())  # every sprite is visible
    assert tuple(grid.factor_names) == ("shape", "scale", "orientation", "pos_x", "pos_y")
    assert [len(v) for v in grid.factor_values] == list(sizes)
    assert grid.factors.dtype == torch.int64 and grid.factors.shape == (n, 5)
    # row-major order, the last factor fastest, as in dSprites
    expected = torch.from_numpy(np.stack(np.unravel_index(np.arange(n), sizes), 1).astype(np.int64))
    assert torch.equal(grid.factors, expected)
    # distinct factors draw distinct images (two positions, two shapes)
    assert not torch.equal(grid.images[0], grid.images[1])
    assert not torch.equal(grid.images[0], grid.images[n // 3])


def test_render_sprites_is_byte_identical():
    a, b = render_sprites(32, 4, 4), render_sprites(32, 4, 4)
    assert torch.equal(a.images, b.images)
    assert torch.equal(a.factors, b.factors)
    assert a.factor_values == b.factor_values


def test_sprites_bundle(sprites):
    n = 3 * 6 * 10 * 16 * 16
    assert sprites.name == "sprites"
    assert_images(sprites.images, (n, 1, 32, 32))
    assert set(torch.unique(sprites.images).tolist()) == {0.0, 1.0}
    assert sprites.factors.dtype == torch.int64 and sprites.factors.shape == (n, 5)
    assert sprites.factor_names == ("shape", "scale", "orientation", "pos_x", "pos_y")
    assert len(sprites.factor_values) == 5
    for j, values in enumerate(sprites.factor_values):
        col = sprites.factors[:, j]
        assert int(col.min()) == 0 and int(col.max()) == len(values) - 1
        assert len(torch.unique(col)) == len(values)
    assert [len(v) for v in sprites.factor_values] == [3, 6, 10, 16, 16]
    assert torch.equal(sprites.labels, sprites.factors[:, 0])
    assert sprites.class_names == tuple(str(v) for v in sprites.factor_values[0])
    assert_split(sprites, n - n // 10, n // 10)
    test = sprites.split("test")
    assert torch.equal(test.factors, sprites.factors[sprites.test_idx])


def test_sprites_bundle_matches_the_renderer(sprites):
    grid = render_sprites()
    assert torch.equal(sprites.images, grid.images)
    assert torch.equal(sprites.factors, grid.factors)


# --- torchvision datasets on tiny real IDX files


def write_idx_images(path: Path, images: np.ndarray) -> None:
    n, h, w = images.shape
    path.write_bytes(struct.pack(">iiii", 2051, n, h, w) + images.astype(np.uint8).tobytes())


def write_idx_labels(path: Path, labels: np.ndarray) -> None:
    path.write_bytes(struct.pack(">ii", 2049, len(labels)) + labels.astype(np.uint8).tobytes())


def make_idx_set(raw: Path, n_train: int = 20, n_test: int = 10, seed: int = 0):
    """Write the four uncompressed MNIST files into `raw`; returns the images and labels written."""
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n_train + n_test, 28, 28), dtype=np.uint8)
    x[0] = 0
    x[0, 3, 5] = 255  # one known bright pixel
    y = (np.arange(n_train + n_test) * 7 + seed) % 10
    write_idx_images(raw / "train-images-idx3-ubyte", x[:n_train])
    write_idx_labels(raw / "train-labels-idx1-ubyte", y[:n_train])
    write_idx_images(raw / "t10k-images-idx3-ubyte", x[n_train:])
    write_idx_labels(raw / "t10k-labels-idx1-ubyte", y[n_train:])
    return x, y


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a socket fails the test (the tests must never reach the network)."""
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to use the network")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_torchvision_reads_local_files(tmp_path, no_network, name, folder):
    x, y = make_idx_set(tmp_path / folder / "raw", seed=1 if name == "mnist" else 2)
    b = load_dataset(name, data_root=tmp_path, download=False)
    assert b.name == name
    # held as the files' bytes (a quarter of float32), float32 in [0, 1] when read, as ToTensor gives
    assert isinstance(b.images, ByteImages) and b.images.pixels.dtype == torch.uint8
    assert b.images.pixels.shape == (30, 1, 28, 28) and "held in memory as bytes" in b.spec["loading_line"]
    assert_images(as_tensor(b.images), (30, 1, 28, 28))
    assert torch.equal(as_tensor(b.images), torch.from_numpy(x).float().div(255.0).unsqueeze(1))
    assert b.images[0][0, 3, 5] == 1.0 and float(b.images[0].sum()) == 1.0
    assert torch.equal(as_tensor(b.split("test").images), as_tensor(b.images)[20:])
    assert b.labels.dtype == torch.int64 and b.labels.tolist() == y.tolist()
    assert b.train_idx.tolist() == list(range(20))  # the official split, in order
    assert b.test_idx.tolist() == list(range(20, 30))
    assert len(b.class_names) == 10
    assert b.spec["dataset"] == name and b.spec["data_root"] == str(tmp_path)


def test_torchvision_name_maps_to_its_own_folder(tmp_path, no_network):
    make_idx_set(tmp_path / "FashionMNIST" / "raw")
    with pytest.raises(VAEError, match="train-images-idx3-ubyte"):
        load_dataset("mnist", data_root=tmp_path, download=False)  # MNIST/ is not there


def test_torchvision_data_root_from_environment(tmp_path, monkeypatch, no_network):
    make_idx_set(tmp_path / "MNIST" / "raw")
    monkeypatch.setenv("VAE_DATA_ROOT", str(tmp_path))
    assert load_dataset("mnist", download=False).images.shape == (30, 1, 28, 28)


def test_torchvision_offline_error_names_the_files(tmp_path, no_network):
    root = tmp_path / "data"
    root.mkdir()
    with pytest.raises(VAEError) as e:
        load_dataset("mnist", data_root=root, download=False)
    msg = str(e.value)
    assert "\n" not in msg
    for f in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
              "t10k-labels-idx1-ubyte"):
        assert f in msg
    assert "mnist5k" in msg
    assert str(root / "MNIST" / "raw") in msg
    assert list(root.iterdir()) == []


def test_torchvision_truncated_file_is_a_clear_error(tmp_path, no_network):
    raw = tmp_path / "MNIST" / "raw"
    make_idx_set(raw)
    path = raw / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:1000])  # header says 20 images; far fewer bytes follow
    with pytest.raises(VAEError, match="could not be read"):
        load_dataset("mnist", data_root=tmp_path, download=False)


def test_torchvision_garbage_file_is_a_clear_error(tmp_path, no_network):
    raw = tmp_path / "MNIST" / "raw"
    make_idx_set(raw)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"this is not an IDX file at all")
    with pytest.raises(VAEError, match="could not be read"):
        load_dataset("mnist", data_root=tmp_path, download=False)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "kmnist"])
def test_idx_family_is_read_as_torchvision_reads_it(tmp_path, no_network, name):
    # the MNIST family is read without torchvision (its import loads torch's compiler): the same file
    # names, class names, images and labels as torchvision.datasets gives
    import torchvision.datasets as tvd

    cls = getattr(tvd, data_mod.DATASETS[name].torchvision)
    root = tmp_path / "data"
    make_idx_set(root / cls.__name__ / "raw", seed=3)
    theirs = [p.name for p in data_mod.expected_files(name, root)]
    assert theirs == [os.path.splitext(os.path.basename(url))[0] for url, _ in cls.resources]
    b = load_dataset(name, data_root=root, download=False)
    assert b.class_names == tuple(cls.classes)
    parts = [cls(str(root), train=t, download=False) for t in (True, False)]
    assert torch.equal(b.images.pixels, torch.cat([p.data for p in parts]).unsqueeze(1))
    assert torch.equal(b.labels, torch.cat([p.targets for p in parts]))


@pytest.mark.parametrize("damage, says", [
    (lambda raw: (raw / "train-images-idx3-ubyte").write_bytes(
        (raw / "train-images-idx3-ubyte").read_bytes() + b"\0"),
     "train-images-idx3-ubyte holds 15,681 bytes after its header, which promises 15,680 (20 x 28 x 28)"),
    (lambda raw: (raw / "t10k-labels-idx1-ubyte").write_bytes(
        (raw / "t10k-images-idx3-ubyte").read_bytes()),
     "t10k-labels-idx1-ubyte is not an IDX file of 1-dimensional unsigned bytes"),
    (lambda raw: write_idx_labels(raw / "train-labels-idx1-ubyte", np.zeros(19, dtype=np.uint8)),
     "train-images-idx3-ubyte holds 20 images but train-labels-idx1-ubyte 19 labels"),
    (lambda raw: (raw / "train-labels-idx1-ubyte").write_bytes(b""),
     "train-labels-idx1-ubyte is not an IDX file"),
])
def test_damaged_idx_files_are_named(tmp_path, no_network, damage, says):
    raw = tmp_path / "MNIST" / "raw"
    make_idx_set(raw)
    damage(raw)
    before = {p: p.read_bytes() for p in raw.iterdir()}
    with pytest.raises(VAEError) as e:
        load_dataset("mnist", data_root=tmp_path, download=False)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"mnist files under {tmp_path} could not be read: ")
    assert says in msg
    assert {p: p.read_bytes() for p in raw.iterdir()} == before  # nothing on disk is touched


def test_failed_download_leaves_nothing_behind(tmp_path, monkeypatch, no_network):
    import torchvision.datasets.mnist as tv_mnist

    calls = []

    def failing_download(url, download_root, filename=None, md5=None, **kwargs):
        calls.append((url, Path(download_root)))
        Path(download_root).mkdir(parents=True, exist_ok=True)
        (Path(download_root) / (filename or "partial")).write_bytes(b"\x1f\x8b half an archive")
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", failing_download)
    root = tmp_path / "data"
    root.mkdir()
    with pytest.raises(VAEError) as e:
        load_dataset("mnist", data_root=root, download=True)
    assert calls, "the patched torchvision download was never called"
    assert all(root in d.parents for _, d in calls)  # it downloaded under the data root ...
    msg = str(e.value)
    assert "\n" not in msg
    assert "download failed" in msg and "no network" in msg  # the reason, not just the fact
    assert "train-images-idx3-ubyte" in msg and "mnist5k" in msg
    assert list(root.rglob("*")) == []  # ... and left no partial file and no .download-* folder


def test_successful_download_is_moved_into_place(tmp_path, monkeypatch, no_network):
    import torchvision.datasets.mnist as tv_mnist

    staged = tmp_path / "staged"
    x, y = make_idx_set(staged)

    def fake_download(url, download_root, filename=None, md5=None, **kwargs):
        name = filename[: -len(".gz")]  # what extraction would leave
        Path(download_root).mkdir(parents=True, exist_ok=True)
        (Path(download_root) / name).write_bytes((staged / name).read_bytes())

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", fake_download)
    root = tmp_path / "data"
    b = load_dataset("mnist", data_root=root, download=True)
    assert torch.equal(as_tensor(b.images), torch.from_numpy(x).float().div(255.0).unsqueeze(1))
    assert b.labels.tolist() == y.tolist()
    assert sorted(p.name for p in root.iterdir()) == ["MNIST"]  # no .download-* folder left over
    assert (root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").is_file()
    # now it works offline
    assert torch.equal(load_dataset("mnist", data_root=root, download=False).images.pixels, b.images.pixels)


# --- folders of the user's own images


def save(path: Path, mode: str, size: tuple[int, int], color, fmt: str = "PNG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path, fmt)


@pytest.fixture
def pets(tmp_path):
    root = tmp_path / "pets"
    save(root / "cats" / "a.png", "RGB", (20, 30), (255, 0, 0))
    save(root / "cats" / "b.jpg", "L", (40, 40), 128, "JPEG")
    save(root / "cats" / "c.png", "RGBA", (16, 16), (0, 255, 0, 255))
    save(root / "dogs" / "d.jpeg", "RGB", (64, 48), (0, 0, 255), "JPEG")
    save(root / "dogs" / "e.png", "P", (10, 12), 3)
    save(root / "dogs" / "f.png", "L", (8, 8), 255)
    (root / "cats" / "bad.png").write_bytes(np.random.default_rng(0).bytes(300))
    (root / "dogs" / "notes.txt").write_text("not an image")
    return root


def test_folder_dataset(pets):
    b = load_dataset(f"folder:{pets}", image_size=16, channels=3)
    assert b.name == f"folder:{pets}"
    assert_images(b.images, (6, 3, 16, 16))
    assert b.class_names == ("cats", "dogs")
    # files in sorted order: cats/a.png, cats/b.jpg, cats/c.png, dogs/d.jpeg, dogs/e.png, dogs/f.png
    assert b.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert b.spec["skipped_files"] == 1
    assert b.spec["image_files"] == 6
    assert b.spec["dataset"] == f"folder:{pets}"
    red = b.images[0]  # a solid red PNG stays exactly red after resizing
    assert torch.equal(red[0], torch.ones(16, 16)) and float(red[1:].abs().max()) == 0.0
    green = b.images[2]
    assert torch.equal(green[1], torch.ones(16, 16)) and float(green[[0, 2]].abs().max()) == 0.0
    grey = b.images[1]  # a grey JPEG becomes three equal channels
    assert torch.allclose(grey[0], grey[1]) and torch.allclose(grey[1], grey[2])
    assert abs(float(grey.mean()) - 128 / 255) < 0.02
    assert torch.equal(b.images[5], torch.ones(3, 16, 16))
    assert_split(b, 5, 1)


def test_folder_channel_default_detection(pets, tmp_path):
    assert load_dataset(f"folder:{pets}", image_size=8).images.shape == (6, 3, 8, 8)  # mixed: RGB
    grey = tmp_path / "grey"
    save(grey / "a.png", "L", (12, 12), 10)
    save(grey / "b.jpg", "L", (30, 20), 200, "JPEG")
    save(grey / "c.png", "L", (5, 9), 0)
    b = load_dataset(f"folder:{grey}", image_size=8)
    assert_images(b.images, (3, 1, 8, 8))
    assert b.labels is None and b.class_names == ()  # no subfolders: no labels
    assert b.spec["skipped_files"] == 0
    assert torch.equal(b.images[2], torch.zeros(1, 8, 8))


def test_folder_default_size_is_64(tmp_path):
    root = tmp_path / "imgs"
    save(root / "a.png", "RGB", (100, 50), (1, 2, 3))
    save(root / "b.png", "RGB", (7, 7), (4, 5, 6))
    assert load_dataset(f"folder:{root}").images.shape == (2, 3, 64, 64)


def test_empty_folder_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(VAEError, match="no images"):
        load_dataset(f"folder:{tmp_path / 'empty'}")


def test_folder_with_only_unreadable_images_is_an_error(tmp_path):
    root = tmp_path / "broken"
    root.mkdir()
    (root / "x.png").write_bytes(b"not a png")
    (root / "y.jpg").write_bytes(b"")
    with pytest.raises(VAEError, match="readable"):
        load_dataset(f"folder:{root}")


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(VAEError, match="not found"):
        load_dataset(f"folder:{tmp_path / 'nope'}")


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(VAEError) as e:
        load_dataset("imagenet")
    msg = str(e.value)
    assert "imagenet" in msg
    for name in ("mnist5k", "digits", "sprites", "mnist", "fashion-mnist", "folder:PATH"):
        assert name in msg
    assert set(DATASETS) >= {"mnist5k", "digits", "sprites", "mnist", "fashion-mnist", "cifar10"}


# --- convert_images


def test_convert_grey_to_rgb_and_back():
    grey = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    rgb = convert_images(grey, None, 3)
    assert rgb.shape == (4, 3, 8, 8) and rgb.is_contiguous()
    for c in range(3):
        assert torch.equal(rgb[:, c], grey[:, 0])
    back = convert_images(rgb, None, 1)
    assert back.shape == (4, 1, 8, 8)
    assert torch.allclose(back, grey, atol=1e-6)  # luma weights sum to 1
    pure_red = torch.zeros(1, 3, 2, 2)
    pure_red[:, 0] = 1.0
    assert torch.allclose(convert_images(pure_red, None, 1), torch.full((1, 1, 2, 2), 0.299))


def test_convert_resize_shapes_and_range():
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    up = convert_images(x, 32, None)
    assert_images(up, (3, 1, 32, 32))
    assert_images(convert_images(x, 14, 3), (3, 3, 14, 14))
    solid = torch.full((2, 3, 10, 10), 0.25)
    assert torch.allclose(convert_images(solid, 5, None), torch.full((2, 3, 5, 5), 0.25))


def test_convert_is_a_noop_when_nothing_changes():
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    assert torch.equal(convert_images(x, None, None), x)
    assert torch.equal(convert_images(x, 8, 3), x)


def test_torchvision_entries_carry_their_class_name():
    assert data_mod.DATASETS["mnist"].torchvision == "MNIST"
    assert data_mod.DATASETS["fashion-mnist"].torchvision == "FashionMNIST"
    assert [n for n, d in data_mod.DATASETS.items() if d.torchvision] == ["mnist", "fashion-mnist", "kmnist", "cifar10"]
    names = [p.name for p in data_mod.expected_files("fashion-mnist", Path("/r"))]
    assert names == ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                     "t10k-labels-idx1-ubyte"]


def test_varied_defaults_take_one_image_of_each_class_in_turn():
    from vae_core.data import Split

    labels = torch.tensor([2, 2, 2, 0, 0, 1, 1, 1, 1])  # stored class by class, as mnist5k is
    split = Split(torch.zeros(9, 1, 2, 2), labels, None)
    assert split.varied(3) == [3, 5, 0]  # the first 0, the first 1, the first 2
    assert split.varied(5) == [3, 5, 0, 4, 6]  # then the second of each
    assert sorted(split.varied(50)) == list(range(9))  # never more than the split holds, each once


def test_varied_defaults_of_an_unlabelled_split_are_spread_evenly():
    from vae_core.data import Split

    split = Split(torch.zeros(101, 1, 2, 2), None, None)
    assert split.varied(5) == [0, 25, 50, 75, 100]
    assert Split(torch.zeros(1, 1, 2, 2), None, None).varied(4) == [0]


def test_the_training_preview_shows_test_images_of_different_classes(mnist5k):
    from vae_core import Trainer, VAEConfig

    cfg = VAEConfig(dataset="mnist5k", model="mlp", latent_dim=2, hidden_sizes=(16,), epochs=1, batch_size=500)
    trainer = Trainer(cfg, bundle=mnist5k)
    trainer.fit()
    test = mnist5k.split("test")
    originals = trainer.health_images["originals"]
    picked = [next(i for i in range(len(test)) if torch.equal(test.images[i], img)) for img in originals]
    assert len(set(test.labels[picked].tolist())) == len(originals) == 8
