"""The film of a run: the latent space forming while a VAE trains, recorded so it can be watched live
and replayed afterwards.

A `Film` holds a fixed, seeded set of up to FILM_IMAGES test images (with their labels, to colour
them) and, at each frame, the codes μ of that set (float16), a few decoded prior samples and
reconstructions of fixed test images (uint8), and the step, epoch, β and the logged training losses
(nats per example). The trainer records a frame before its first step and at its last, and between them
at chosen logged points (`frame_points`: as many per epoch as cost at most COST_SHARE of the training
compute by a cost model, and a few more early in the first epoch, where the codes move most) while its
`FilmBudget` affords them: the film's measured time (its frames, the frames' callbacks, its part of the
checkpoint saves) stays within FILM_TIME_SHARE of the run's wall time so far. An epoch's last frame takes
its codes from the epoch's test pass (the same weights; the filmed images are test images), so it costs
only its samples and reconstructions. Recording never changes the
run: it runs without gradients, in eval mode (the model's mode is restored), and draws no random
numbers (the prior samples decode z drawn once, from a generator of their own). Frames are kept
compact and thinned (every other one dropped, and the recording stride doubled) so a film stays
within `max_frames` frames and FILM_BYTES.

`plane_frames` draws the frames' codes in 2-D: a 2-D model's plane itself; else each frame's PCA
plane, projected without centring (the prior's circles stay circles about the origin) and rotated or
reflected (orthogonal Procrustes) onto the previous frame's picture so the film moves smoothly.
`film_gif` renders a film as an animated GIF.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from vae_core.errors import VAEError
from vae_core.images import PALETTE, gif_bytes, label_colour, label_colours  # noqa: F401 (PALETTE: for importers)
from vae_core.latent import decode, encode
from vae_core.streaming import as_tensor

FILM_VERSION = 1
FILM_IMAGES = 1000  # test images whose codes each frame holds, at most
FILM_SEED = 0  # picks them: the same images for every run on the same data
SAMPLES = 8  # decoded prior samples per frame
RECONSTRUCTIONS = 8  # reconstructed test images per frame
FILM_BYTES = 2 * 2**20  # a checkpoint's film stays under this many bytes (about)
MIN_FRAMES_IN_BUDGET = 16  # a large latent size stores fewer codes rather than fewer frames than this
# the cost model that spaces frames out: encoding an image costs about ENCODE_COST of training on one
# (forward and backward through encoder and decoder; measured ~0.1 for the conv model on a CPU)
ENCODE_COST = 1 / 6
COST_SHARE = 0.03  # the film's share of a run's training compute, at most (by the model above)
# a frame encodes its images this many at a time on a CPU: the conv model's 1,000 codes took 77 ms in
# batches of 128-256 against 100 ms in encode's default 512 (178 ms in one batch), 2 cores
CPU_ENCODE_BATCH = 256
# the film's measured share of a run's wall time, at most (`FilmBudget`): frames and their callbacks, and
# its part of each checkpoint save; the frame before the first step and the one at the last are always
# recorded, the others only while the share affords them (issue 32: <= 5% of a whole process)
FILM_TIME_SHARE = 0.03
# the run's time counts from its process's start (the interpreter, torch's import and the data are the
# run's as much as its steps: the issue times whole processes), but at most this many seconds before the
# trainer was made (a long-lived process, a server or a notebook, gives the film no more head start)
HEAD_START_CAP_S = 10.0
# a frame at least this often, whatever the share says, so a watched run's live map never freezes (a run of
# short epochs whose checkpoint saves carry the film spent its share on them and filmed nothing more); such a
# frame also waits FLOOR_COST_RATIO times its expected cost, so floor frames cost at most 1/40 of the time
FRAME_FLOOR_S = 5.0
FLOOR_COST_RATIO = 40.0


def process_age_s() -> float | None:
    """Seconds since this process started (Linux: /proc), or None where that cannot be read."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # after the command's name, which may hold spaces
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"))  # field 22: starttime, in ticks
    except (OSError, ValueError, IndexError, AttributeError):
        return None


class FilmBudget:
    """What a run's film may spend: at most `share` of the run's wall time so far, by measurement.

    The run's time counts from `head_start_s` seconds before the budget was made (default: the process's
    age, `process_age_s`, capped at HEAD_START_CAP_S). The trainer `charge`s the film's measured seconds
    and asks `affords(kind)` before an optional frame: whether the film's seconds so far plus the latest
    frame's of that kind ("encoded": its images encoded for it; "from_test": its codes from an epoch's
    test pass) would stay within the share. `share` None: no limit (every planned frame; tests use it for
    a film that does not depend on the machine's speed). `clock` is a seconds counter (tests pass a fake)."""

    def __init__(self, share: float | None = FILM_TIME_SHARE, *, head_start_s: float | None = None,
                 clock=time.perf_counter):
        if share is not None and not 0 < share < 1:
            raise VAEError(f"the film's share of a run's time must be in (0, 1) (got {share})")
        if head_start_s is None:
            head_start_s = min(process_age_s() or 0.0, HEAD_START_CAP_S)
        self.share, self.clock = share, clock
        self.started = clock() - max(0.0, float(head_start_s))
        self.spent_s = 0.0  # the film's measured seconds
        self.frame_s = {"encoded": 0.0, "from_test": 0.0}  # the latest frame's of each kind: the next's expected
        self.frames = 0  # frames recorded (charged)
        self.skipped = 0  # frames the plan asked for that the budget did not afford
        self.last_frame_at = self.started + max(0.0, float(head_start_s))  # when the latest frame was charged

    def elapsed_s(self) -> float:
        return max(self.clock() - self.started, 1e-9)

    def affords(self, kind: str = "encoded") -> bool:
        """Whether one more frame of `kind` keeps the film within its share of the run's time so far, or the
        last frame is long enough ago (FRAME_FLOOR_S, and FLOOR_COST_RATIO times this frame's expected cost)."""
        if self.share is None or self.spent_s + self.frame_s[kind] <= self.share * self.elapsed_s():
            return True
        return self.clock() - self.last_frame_at >= max(FRAME_FLOOR_S, FLOOR_COST_RATIO * self.frame_s[kind])

    def within(self, seconds: float) -> bool:
        """Whether `seconds` more keep the film within its share (no floor: for what is no frame, such as
        writing the film into an epoch's checkpoint)."""
        return self.share is None or self.spent_s + seconds <= self.share * self.elapsed_s()

    def charge(self, seconds: float, *, frame: str | None = None) -> None:
        """Count `seconds` of the film's; `frame`: they were a frame of that kind."""
        self.spent_s += seconds
        if frame is not None:
            self.frame_s[frame] = seconds
            self.frames += 1
            self.last_frame_at = self.clock()

    def fraction(self) -> float:
        """The film's seconds so far against the run's."""
        return self.spent_s / self.elapsed_s()

    def summary(self) -> dict:
        return {"film_seconds": self.spent_s, "film_fraction": self.fraction(), "film_frames_recorded": self.frames,
                "film_frames_skipped": self.skipped}


def frame_points(steps_per_epoch: int, log_every: int, batch_size: int, n_codes: int,
                 first_epoch: bool = False) -> list[int]:
    """The steps of an epoch (0-based positions) after which a frame is recorded: logged points
    (every `log_every` steps, and the epoch's last), spread evenly, as many as the cost model affords
    (at least one an epoch: its last step, when the epoch is short). In a run's `first_epoch`, where the
    codes move most, also the first logged point at or after each power of two steps (1, 2, 4, 8, ...)."""
    logged = [i for i in range(steps_per_epoch) if (i + 1) % log_every == 0 or i + 1 == steps_per_epoch]
    affordable = int(steps_per_epoch * batch_size * COST_SHARE / max(n_codes * ENCODE_COST, 1e-9))
    per_epoch = max(1, min(len(logged), affordable))
    points = {logged[math.ceil((j + 1) * len(logged) / per_epoch) - 1] for j in range(per_epoch)}
    if first_epoch:
        powers = (2**k for k in range(steps_per_epoch.bit_length()) if 2**k < steps_per_epoch)
        points |= {next(i for i in logged if i + 1 >= p) for p in powers}
    return sorted(points)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] as uint8 (0-255), on the CPU."""
    return (images.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8)


def from_uint8(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 255


@dataclass
class Film:
    """The frames of one run and what they are of; `to_dict` / `from_dict` give the checkpoint's plain
    form (tensors, numbers, lists), which `torch.load(weights_only=True)` reads back."""

    indices: torch.Tensor  # (N,) positions in the test split of the images whose codes are filmed
    labels: torch.Tensor | None  # (N,) their labels, to colour them
    originals: torch.Tensor  # (R, C, H, W) uint8: the reconstructed test images
    prior_z: torch.Tensor  # (S, D) the prior samples' codes
    max_frames: int
    frames: list[dict] = field(default_factory=list)
    stride: int = 1  # frames kept: those whose index is a multiple of this (and the latest)
    recorded: int = 0  # frames recorded so far (kept or thinned away): the next frame's index
    class_names: tuple[str, ...] = ()  # the labels' names ("square", "ellipse", "heart"); () for their numbers

    @classmethod
    def start(cls, images: torch.Tensor, labels: torch.Tensor | None, recon_pick: list[int], latent_dim: int,
              *, seed: int, max_frames: int, class_names: tuple[str, ...] = ()) -> Film:
        """A film of the test split `images` (N, C, H, W) (a tensor, or anything indexable by a tensor of
        positions that gives one): a seeded set of FILM_IMAGES of them (fewer for a large latent size, so
        MIN_FRAMES_IN_BUDGET frames fit FILM_BYTES), reconstructions of those at `recon_pick`, and
        SAMPLES prior samples drawn from a generator seeded by `seed`."""
        n_test = len(images)
        per_code = 2 * latent_dim
        n = min(FILM_IMAGES, n_test, max(100, FILM_BYTES // (MIN_FRAMES_IN_BUDGET * per_code)))
        order = torch.randperm(n_test, generator=torch.Generator().manual_seed(FILM_SEED))
        indices = order[:n].sort().values
        originals = to_uint8(as_tensor(images[torch.tensor(recon_pick[:RECONSTRUCTIONS], dtype=torch.long)]))
        prior_z = torch.randn(SAMPLES, latent_dim, generator=torch.Generator().manual_seed(seed))
        frame_bytes = n * per_code + (SAMPLES + len(originals)) * originals[0].numel() + 1024
        cap = max(2, min(max_frames, FILM_BYTES // frame_bytes))
        return cls(indices, None if labels is None else labels[indices].clone(), originals, prior_z, cap,
                   class_names=tuple(str(c) for c in class_names))

    def record(self, model, images: torch.Tensor, *, step: int, epoch: float, beta: float,
               losses: dict | None = None, codes: torch.Tensor | None = None) -> dict:
        """Encode the filmed images (`images`: the fixed set, `fixed_images`' output) and make a frame;
        keep it (thinning the film if it is over `max_frames`) and return it. `codes`: the filmed images'
        posterior means, computed already by the same model (an epoch's test pass); then they are not
        encoded again. The model's mode is restored; nothing is drawn from any random generator."""
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                if codes is not None:
                    mu = codes
                else:
                    mu, _ = encode(model, images, CPU_ENCODE_BATCH if images.device.type == "cpu" else None)
                recon_mu, _ = encode(model, from_uint8(self.originals))
                reconstructions = decode(model, torch.cat([recon_mu, self.prior_z]))
        finally:
            model.train(was_training)
        losses = losses or {}
        frame = {
            "index": self.recorded, "step": int(step), "epoch": float(epoch), "beta": float(beta),
            **{k: (None if losses.get(k) is None else float(losses[k])) for k in ("recon", "kl", "nelbo")},
            "codes": mu.to(torch.float16),
            "reconstructions": to_uint8(reconstructions[:len(recon_mu)]),
            "samples": to_uint8(reconstructions[len(recon_mu):]),
        }
        self.add(frame)
        return frame

    def add(self, frame: dict) -> None:
        """Keep `frame` as the latest; the previous latest stays only if it is on the stride; over
        `max_frames`, the stride doubles and the frames off it go (the latest always stays)."""
        if self.frames and self.frames[-1]["index"] % self.stride:
            self.frames.pop()
        self.frames.append(frame)
        self.recorded = frame["index"] + 1
        while len(self.frames) > self.max_frames:
            self.stride *= 2
            self.frames = [f for f in self.frames[:-1] if f["index"] % self.stride == 0] + [self.frames[-1]]

    def fixed_images(self, test_images) -> torch.Tensor:
        """The filmed images out of the test split's images (a tensor, or indexable by positions)."""
        return as_tensor(test_images[self.indices])

    def drop_after(self, step: int) -> None:
        """Forget frames past `step` (a run resumed from an earlier point repeats those steps)."""
        self.frames = [f for f in self.frames if f["step"] <= step]

    def to_dict(self) -> dict:
        """The checkpoint's form. The frames' codes, samples and reconstructions are views of one tensor
        each (stacked): `torch.save` writes a storage once however many tensors view it, so a checkpoint
        with a film saves in about half the time of one storage per frame's tensor (its bytes the same)."""
        frames = [dict(f) for f in self.frames]
        for key in ("codes", "samples", "reconstructions"):
            if frames and len({tuple(f[key].shape) for f in frames}) == 1:
                for f, view in zip(frames, torch.stack([f[key] for f in frames]).unbind(0), strict=True):
                    f[key] = view
        return {"version": FILM_VERSION, "indices": self.indices, "labels": self.labels, "originals": self.originals,
                "prior_z": self.prior_z, "max_frames": self.max_frames, "stride": self.stride,
                "recorded": self.recorded, "frames": frames, "class_names": list(self.class_names)}

    @classmethod
    def from_dict(cls, d: dict) -> Film:
        """The film a checkpoint stored; a `VAEError` when it is not one this version reads."""
        try:
            if d.get("version") != FILM_VERSION:
                raise ValueError(f"version {d.get('version')!r}")
            film = cls(d["indices"], d["labels"], d["originals"], d["prior_z"], int(d["max_frames"]),
                       [dict(f) for f in d["frames"]], int(d["stride"]), int(d["recorded"]),
                       tuple(str(c) for c in d.get("class_names", ())))  # films made before names: ()
            n = len(film.indices)
            for f in film.frames:
                if f["codes"].shape[0] != n:
                    raise ValueError(f"a frame holds {f['codes'].shape[0]} codes for {n} images")
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise VAEError(f"the checkpoint's film cannot be read ({e})") from None
        return film

    @property
    def latent_dim(self) -> int:
        return int(self.prior_z.shape[1])

    def nbytes(self) -> int:
        """The bytes its tensors take (what it adds to a checkpoint, near enough)."""
        tensors = [self.indices, self.originals, self.prior_z] + ([self.labels] if self.labels is not None else [])
        tensors += [f[k] for f in self.frames for k in ("codes", "samples", "reconstructions")]
        return sum(t.numel() * t.element_size() for t in tensors)


def label_name(label: int, class_names: tuple[str, ...] | list[str] = ()) -> str:
    """A label's name from `class_names` where it has one, else its number."""
    return str(class_names[label]) if 0 <= label < len(class_names) else str(label)


def film_of(stored: dict | None) -> Film | None:
    """A checkpoint's film (`Checkpoint.film`), or None when it has none."""
    return None if not stored else Film.from_dict(stored)


# --- drawing the codes in 2-D


def _procrustes(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The orthogonal R (2×2, a rotation or a reflection) minimising ||a R − b|| (Schönemann 1966)."""
    u, _, vt = np.linalg.svd(a.T @ b)
    return u @ vt


def plane(codes: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray:
    """One frame's codes (N, D) in 2-D (N, 2): the codes themselves for D = 2, (z, 0) for D = 1; else
    their projection on the top two principal axes (not centred: the origin stays the prior's mean and
    N(0, I) projects to N(0, I)), rotated or reflected onto `previous` (the previous frame's picture)."""
    codes = np.asarray(codes, dtype=np.float64)
    d = codes.shape[1]
    if d == 2:
        return codes.copy()
    if d == 1:
        return np.concatenate([codes, np.zeros_like(codes)], axis=1)
    centred = codes - codes.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    points = codes @ vt[:2].T
    if points.shape[1] < 2:  # fewer codes than two principal axes (a test split of one image): (p, 0)
        points = np.concatenate([points, np.zeros((len(points), 2 - points.shape[1]))], axis=1)
    if previous is not None and len(previous) == len(points):
        points = points @ _procrustes(points, previous)
    return points


def plane_frames(frames: list) -> list[np.ndarray]:
    """Every frame's picture (N, 2), each aligned to the one before (`plane`)."""
    out: list[np.ndarray] = []
    for f in frames:
        codes = f["codes"] if isinstance(f, dict) else f
        out.append(plane(np.asarray(torch.as_tensor(codes).float()), out[-1] if out else None))
    return out


def extent(pictures: list[np.ndarray], at_least: float = 2.5) -> float:
    """A half-width that holds every picture's points (and the prior's 2σ circle): fixed axes for a replay."""
    biggest = max((float(np.abs(p).max()) for p in pictures if p.size), default=0.0)
    return max(at_least, math.ceil(biggest * 1.05 * 2) / 2)


# --- the film as an animated GIF



def _tiles(images: torch.Tensor, side: int) -> np.ndarray:
    """uint8 images (K, C, H, W) as one row of RGB tiles `side` pixels high (nearest neighbour)."""
    scale = max(1, side // images.shape[-2])
    x = images.repeat_interleave(scale, -2).repeat_interleave(scale, -1)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    row = torch.cat(list(x), dim=2)  # (3, H, K·W)
    return row.permute(1, 2, 0).numpy()


def legend_strip(film: Film, width: int) -> np.ndarray:
    """The colours' key as RGB rows (H, width, 3) uint8: a swatch and the name of each label the film
    holds (`label_name`), wrapped onto as many lines as the width needs; no rows for a film without labels."""
    from PIL import Image, ImageDraw

    if film.labels is None:
        return np.zeros((0, width, 3), dtype=np.uint8)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    items, x, line = [], 4, 0
    for label in np.unique(film.labels.numpy()).tolist():
        name = label_name(int(label), film.class_names)
        w = 11 + int(math.ceil(measure.textlength(name))) + 5
        if x + w > width and x > 4:
            x, line = 4, line + 1
        items.append((x, line, int(label), name))
        x += w
    strip = Image.new("RGB", (width, 14 * (line + 1) + 2), "white")
    draw = ImageDraw.Draw(strip)
    for x, line, label, name in items:
        y = 2 + 14 * line
        draw.rectangle([x, y + 2, x + 7, y + 9], fill=label_colour(label))
        draw.text((x + 11, y), name, fill=(0, 0, 0))
    return np.asarray(strip)


def render_frame(film: Film, frame: dict, points: np.ndarray, half_width: float, size: int = 240) -> np.ndarray:
    """One frame as an RGB picture (H, W, 3) uint8: the map (prior 1σ/2σ circles, the codes coloured by
    label), the colours' key, a caption, and beneath them the prior samples, the fixed test images and
    their reconstructions at that moment."""
    from PIL import Image, ImageDraw

    scale = size / (2 * half_width)
    canvas = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(canvas)
    c = size / 2
    for r in (1, 2):
        draw.ellipse([c - r * scale, c - r * scale, c + r * scale, c + r * scale], outline=(190, 190, 190))
    labels = film.labels.numpy() if film.labels is not None else np.zeros(len(points), dtype=np.int64)
    colours = label_colours(int(labels.max()) + 1 if len(labels) else 1)
    for (x, y), label in zip(points, labels, strict=True):
        px, py = c + x * scale, c - y * scale
        draw.rectangle([px - 1, py - 1, px + 1, py + 1], fill=colours[int(label)])
    side = size // max(SAMPLES, len(film.originals))
    rows = [_tiles(frame["samples"], side), _tiles(film.originals, side), _tiles(frame["reconstructions"], side)]
    width = max(size, *(r.shape[1] for r in rows))
    key = legend_strip(film, width)
    out = np.full((size + len(key) + 20 + sum(r.shape[0] for r in rows) + 4, width, 3), 255, dtype=np.uint8)
    out[:size, :size] = np.asarray(canvas)
    out[size:size + len(key)] = key
    y = size + len(key)
    caption = Image.new("RGB", (width, 20), "white")
    ImageDraw.Draw(caption).text((4, 4), f"step {frame['step']}  epoch {frame['epoch']:.2f}  beta {frame['beta']:g}",
                                 fill=(0, 0, 0))
    out[y:y + 20] = np.asarray(caption)
    y += 20
    for r in rows:
        out[y:y + r.shape[0], :r.shape[1]] = r
        y += r.shape[0] + 2
    return out


# the GIF's sizes: "web" (`render_frame`, the map `size` pixels wide, ~8 px type) and "presentation"
# (`render_slide`: a 16:9 slide, the map filling its height, type readable from the back of a room)
GIF_SIZES = ("presentation", "web")
SLIDE = (1280, 720)  # the presentation GIF's width and height, pixels
SLIDE_TYPE = 30  # its type's size (pixels: the font's em); the caption's first line is larger


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)  # Pillow's own TrueType font (FreeType), no file to find


def render_slide(film: Film, frame: dict, points: np.ndarray, half_width: float,
                 width: int = SLIDE[0], height: int = SLIDE[1]) -> np.ndarray:
    """One frame as a presentation slide (height, width, 3) uint8: the map (prior 1σ/2σ circles, the
    codes coloured by label) a square filling the height on the left; on the right the step, epoch
    and β in large type, the colours' key, and the prior samples, the fixed test images and their
    reconstructions at that moment, each row named."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    side = height
    scale = side / (2 * half_width)
    c = side / 2
    for r in (1, 2):
        draw.ellipse([c - r * scale, c - r * scale, c + r * scale, c + r * scale], outline=(170, 170, 170),
                     width=2)
    labels = film.labels.numpy() if film.labels is not None else np.zeros(len(points), dtype=np.int64)
    colours = label_colours(int(labels.max()) + 1 if len(labels) else 1)
    dot = max(1, side // 300)
    for (x, y), label in zip(points, labels, strict=True):
        px, py = c + x * scale, c - y * scale
        draw.rectangle([px - dot, py - dot, px + dot, py + dot], fill=colours[int(label)])
    draw.line([(side, 0), (side, height)], fill=(220, 220, 220), width=2)

    left, right, y = side + 24, width - 16, 20
    big, text, small = _font(round(SLIDE_TYPE * 1.3)), _font(SLIDE_TYPE), _font(round(SLIDE_TYPE * 0.85))
    draw.text((left, y), f"step {frame['step']}", font=big, fill=(0, 0, 0))
    y += round(SLIDE_TYPE * 1.3 * 1.25)
    draw.text((left, y), f"epoch {frame['epoch']:.2f} · beta {frame['beta']:g}", font=text, fill=(0, 0, 0))
    y += round(SLIDE_TYPE * 1.6)
    if film.labels is not None:  # the colours' key, wrapped to the column
        x, line, swatch = left, round(SLIDE_TYPE * 1.3), round(SLIDE_TYPE * 0.7)
        for label in np.unique(labels).tolist():
            name = label_name(int(label), film.class_names)
            w = swatch + 8 + int(math.ceil(draw.textlength(name, font=small))) + 18
            if x + w > right and x > left:
                x, y = left, y + line
            top = y + (line - swatch) // 2 - 2
            draw.rectangle([x, top, x + swatch, top + swatch], fill=colours[int(label)])
            draw.text((x + swatch + 8, y), name, font=small, fill=(0, 0, 0))
            x += w
        y += line + round(SLIDE_TYPE * 0.6)
    n = max(SAMPLES, len(film.originals), len(frame["samples"]))
    tile = max(film.originals.shape[-2], (right - left) // n // film.originals.shape[-2] * film.originals.shape[-2])
    for caption, rows in (("samples from the prior", [frame["samples"]]),
                          ("test images / reconstructions", [film.originals, frame["reconstructions"]])):
        draw.text((left, y), caption, font=small, fill=(60, 60, 60))
        y += round(SLIDE_TYPE * 1.15)
        for images in rows:
            strip = _tiles(images, tile)
            h, w = strip.shape[0], min(strip.shape[1], width - left)
            if y + h <= height:
                img.paste(Image.fromarray(np.ascontiguousarray(strip[:, :w])), (left, y))
            y += h + 4
        y += round(SLIDE_TYPE * 0.5)
    return np.asarray(img)


def film_gif(film: Film, *, size: str = "web", duration_ms: int = 120, upto: int | None = None) -> bytes:
    """The film (up to frame `upto`, all by default) as an animated GIF that loops: each frame's map,
    samples and reconstructions, with the axes fixed over the whole film. `size` "web": small
    (`render_frame`, 240 px map, ~8 px type); "presentation": a 1280×720 slide (`render_slide`)."""
    if size not in GIF_SIZES:
        raise VAEError(f"the GIF's size is one of {', '.join(GIF_SIZES)} (got {size!r})")
    frames = film.frames[: None if upto is None else upto + 1]
    if not frames:
        raise VAEError("the film has no frames")
    pictures = plane_frames(frames)
    half = extent(pictures)
    if size == "web":
        rendered = np.stack([render_frame(film, f, p, half) for f, p in zip(frames, pictures, strict=True)])
        images = torch.from_numpy(rendered).permute(0, 3, 1, 2).float() / 255
        return gif_bytes(images, duration_ms=duration_ms, scale=1, boomerang=False)
    return _slides_gif([render_slide(film, f, p, half) for f, p in zip(frames, pictures, strict=True)], duration_ms)


def _slides_gif(slides: list[np.ndarray], duration_ms: int) -> bytes:
    """RGB slides as a looping GIF, each quantized by Pillow's fast octree (1280×720: ~0.07 s a slide,
    where `gif_bytes`' default quantizer takes ~0.7 s)."""
    import io

    from PIL import Image

    from vae_core.images import MIN_GIF_FRAME_MS

    if duration_ms < MIN_GIF_FRAME_MS:
        raise VAEError(f"GIF frame duration must be >= {MIN_GIF_FRAME_MS} ms (got {duration_ms}); "
                       "browsers play shorter delays slowly")
    pictures = [Image.fromarray(s).quantize(colors=256, method=Image.Quantize.FASTOCTREE) for s in slides]
    buffer = io.BytesIO()
    pictures[0].save(buffer, format="GIF", save_all=True, append_images=pictures[1:], duration=duration_ms, loop=0)
    return buffer.getvalue()
