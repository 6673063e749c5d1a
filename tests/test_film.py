"""The film (vae_core.film): frames recorded while a run trains, kept in its checkpoint, replayable."""

import copy
import io
import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

from vae_core import Trainer, VAEError, load_checkpoint
from vae_core.film import (
    FILM_BYTES,
    FILM_TIME_SHARE,
    PALETTE,
    Film,
    FilmBudget,
    film_gif,
    film_of,
    frame_points,
    label_name,
    legend_strip,
    plane,
    plane_frames,
    process_age_s,
    to_uint8,
)
from vae_core.latent import encode
from vae_core.library import summary

from .browser import ROOT
from .conftest import tiny_config


def _weights(trainer):
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def every_frame(trainer: Trainer) -> Trainer:
    """The trainer with no time budget for its film: every frame its plan asks for (`frame_points`), so
    the frames do not depend on this machine's speed or load."""
    trainer.film_budget = FilmBudget(None)
    return trainer


def test_recording_the_film_changes_nothing_in_the_run(digits):
    with_film = every_frame(Trainer(tiny_config(epochs=3), bundle=digits))
    without = Trainer(tiny_config(epochs=3, film_frames=0), bundle=digits)
    a, b = with_film.fit(), without.fit()
    assert with_film.film is not None and len(with_film.film.frames) == 9
    assert without.film is None
    wa, wb = _weights(with_film), _weights(without)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    keys = ("recon", "kl", "loss", "beta", "step", "epoch")
    assert [[r[k] for k in keys] for r in with_film.history["steps"]] == \
        [[r[k] for k in keys] for r in without.history["steps"]]
    assert a["test_nelbo"] == b["test_nelbo"]
    # recording puts the model back in the mode it found it in
    model, film = with_film.model, with_film.film
    for mode in (True, False):
        model.train(mode)
        film.record(model, with_film._film_images, step=0, epoch=0.0, beta=1.0)
        assert model.training is mode


def test_frame_points_are_logged_points_spread_as_the_cost_affords():
    # a short epoch: one frame, at its last step
    assert frame_points(23, 1, 64, 360) == [22]
    # a long one (mnist's 469 steps of 128): several, each a logged point, the last step among them
    points = frame_points(469, 23, 128, 1000)
    assert 1 < len(points) <= 20 and points[-1] == 468
    assert all((i + 1) % 23 == 0 or i == 468 for i in points)
    gaps = np.diff([-1, *points])
    assert gaps.max() - gaps.min() <= 2 * 23  # evenly spread, to within the logging intervals
    # a run's first epoch, where the codes move most, adds logged points at powers of two steps
    assert frame_points(23, 1, 64, 360, first_epoch=True) == [0, 1, 3, 7, 15, 22]
    assert frame_points(125, 6, 32, 1000, first_epoch=True) == [5, 11, 17, 35, 65, 124]


def test_a_run_has_its_frames_and_each_holds_the_codes_of_that_moment(digits, tmp_path):
    seen = []

    def check(trainer, frame):  # the model as it is when the frame is taken
        model = copy.deepcopy(trainer.model).eval()
        seen.append(torch.equal(encode(model, trainer._film_images)[0].half(), frame["codes"]))

    trainer = every_frame(Trainer(tiny_config(epochs=3), bundle=digits, out_path=tmp_path / "f.pt"))
    trainer.add_callback("on_frame", check)
    trainer.fit()
    film = trainer.film
    expected = 1 + sum(len(frame_points(trainer.steps_per_epoch, 1, 64, len(film.indices), first_epoch=e == 0))
                       for e in range(3))
    assert len(film.frames) == expected == len(seen) and all(seen)
    assert [f["step"] for f in film.frames] == [0, 1, 2, 4, 8, 16, 23, 46, 69]
    assert film.frames[0]["recon"] is None and film.frames[-1]["nelbo"] > 0
    f = film.frames[-1]
    assert f["codes"].dtype == torch.float16 and f["codes"].shape == (len(film.indices), 4)
    assert f["samples"].dtype == torch.uint8 and f["samples"].shape == (8, 1, 8, 8)
    assert f["reconstructions"].shape == film.originals.shape == (8, 1, 8, 8)
    # the frames' codes are those of the fixed test images, labels alongside
    test = digits.split("test")
    assert torch.equal(film.labels, test.labels[film.indices])
    ckpt = load_checkpoint(tmp_path / "f.pt")
    stored = film_of(ckpt.film)
    assert stored.class_names == digits.class_names == tuple("0123456789")  # the legend's names
    assert len(stored.frames) == expected
    assert torch.equal(stored.frames[-1]["codes"], encode(ckpt.model, test.images[stored.indices])[0].half())
    assert summary(ckpt)["film_frames"] == expected
    # the images change as the model learns
    assert not torch.equal(film.frames[0]["samples"], film.frames[-1]["samples"])


def test_a_resumed_run_continues_the_film(digits, tmp_path):
    full = every_frame(Trainer(tiny_config(epochs=4), bundle=digits))
    full.fit()
    path = tmp_path / "half.pt"
    every_frame(Trainer(tiny_config(epochs=2), bundle=digits, out_path=path)).fit()
    ckpt = load_checkpoint(path)
    assert len(ckpt.film["frames"]) == 8
    resumed = every_frame(Trainer(ckpt.config.replace(epochs=4), bundle=digits, out_path=path, resume=ckpt))
    resumed.fit()
    film = film_of(load_checkpoint(path).film)
    assert [f["step"] for f in film.frames] == [f["step"] for f in full.film.frames] == [0, 1, 2, 4, 8, 16, 23,
                                                                                          46, 69, 92]
    assert [f["index"] for f in film.frames] == list(range(10))
    for got, want in zip(film.frames, full.film.frames, strict=True):
        assert (got["codes"].float() - want["codes"].float()).abs().max() < 1e-2


def test_a_checkpoint_without_a_film_opens_as_before(tmp_path, digits):
    path = tmp_path / "nofilm.pt"
    Trainer(tiny_config(epochs=1, film_frames=0), bundle=digits, out_path=path).fit()
    ckpt = load_checkpoint(path)
    assert ckpt.film is None and film_of(ckpt.film) is None
    assert summary(ckpt)["film_frames"] == 0
    out = subprocess.run([sys.executable, "-m", "vae_core", "info", str(path), "--json"], capture_output=True,
                         text=True, cwd=ROOT, timeout=120, check=True)
    assert json.loads(out.stdout)["film_frames"] == 0
    # resuming it starts a film at the step it resumes from
    resumed = every_frame(Trainer(ckpt.config.replace(epochs=2, film_frames=240), bundle=digits, resume=ckpt))
    resumed.fit()
    assert [f["step"] for f in resumed.film.frames] == [23, 46]


def test_a_bad_film_is_a_clear_error():
    with pytest.raises(VAEError, match="film cannot be read"):
        Film.from_dict({"version": 1, "indices": torch.arange(3)})
    with pytest.raises(VAEError, match="film cannot be read"):
        Film.from_dict({"version": 99})


def test_a_film_keeps_its_labels_names_and_one_made_before_names_reads_as_numbers(tmp_path):
    film = Film.start(torch.rand(30, 1, 4, 4), torch.arange(30) % 3, [0, 1], 2, seed=0, max_frames=10,
                      class_names=("square", "ellipse", "heart"))
    torch.save(film.to_dict(), tmp_path / "film.pt")
    stored = torch.load(tmp_path / "film.pt", weights_only=True)
    assert Film.from_dict(stored).class_names == ("square", "ellipse", "heart")
    del stored["class_names"]  # as a film saved before names were kept
    assert Film.from_dict(stored).class_names == ()
    assert [label_name(v, ("square", "ellipse")) for v in (0, 1, 2)] == ["square", "ellipse", "2"]


def _film(n=50, d=6, max_frames=240) -> Film:
    images = torch.rand(n, 1, 4, 4)
    return Film.start(images, torch.arange(n) % 3, list(range(4)), d, seed=0, max_frames=max_frames)


def test_thinning_keeps_the_film_within_its_frames_evenly_and_the_latest():
    film = _film(max_frames=8)
    for k in range(37):
        film.add({"index": k, "step": k, "codes": torch.zeros(1), "samples": torch.zeros(1),
                  "reconstructions": torch.zeros(1)})
        assert len(film.frames) <= 8 and film.frames[-1]["index"] == k and film.frames[0]["index"] == 0
    kept = [f["index"] for f in film.frames]
    assert kept[:-1] == list(range(0, 37, film.stride)) and film.stride == 8


def test_a_film_stays_within_its_byte_budget():
    images = torch.rand(1000, 1, 28, 28)
    film = Film.start(images, None, list(range(8)), 16, seed=0, max_frames=10_000)
    for k in range(300):
        film.add({"index": k, "step": k, "codes": torch.zeros(1000, 16, dtype=torch.float16),
                  "samples": torch.zeros(8, 1, 28, 28, dtype=torch.uint8),
                  "reconstructions": torch.zeros(8, 1, 28, 28, dtype=torch.uint8)})
    assert 20 <= len(film.frames) and film.nbytes() <= FILM_BYTES
    # a large latent size films fewer images rather than keeping too few frames
    assert len(Film.start(images, None, [0], 512, seed=0, max_frames=240).indices) < 1000


def test_aligned_frames_of_codes_that_do_not_change_are_identical():
    g = torch.Generator().manual_seed(0)
    z = (torch.randn(200, 6, generator=g) * torch.tensor([3.0, 2.0, 1.0, 0.5, 0.2, 0.1])).numpy()
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(6, 6)))
    # the same codes, and the same codes in a rotated or mirrored latent basis: PCA alone would flip
    # or turn the picture between such frames; aligned, they are the same picture
    frames = [z, z, -z, z @ q, z]
    pictures = plane_frames(frames)
    for p in pictures[1:]:
        np.testing.assert_allclose(p, pictures[0], atol=1e-5)  # float32 codes
    assert not np.allclose(plane(z @ q), pictures[0], atol=1e-3)  # unaligned, it differs
    # a 2-D model's codes are drawn as they are, a 1-D model's on a line
    z2 = z[:, :2]
    assert np.array_equal(plane_frames([z2, -z2])[1], -z2)
    assert np.array_equal(plane(z[:, :1])[:, 1], np.zeros(200))


def test_a_film_of_one_code_is_drawn_on_a_line_and_makes_a_gif(digits):
    assert plane(np.array([[0.5, -1.0, 2.0]])).shape == (1, 2)  # one code, 3-D: one principal axis
    trainer = every_frame(Trainer(tiny_config(epochs=1), bundle=digits))
    trainer.fit()
    film = trainer.film
    for frame in film.frames:  # a 5-image folder's test split: one image
        frame["codes"], frame["labels"] = frame["codes"][:1], None
    film.labels = film.labels[:1] if film.labels is not None else None
    gif = Image.open(io.BytesIO(film_gif(film)))
    assert gif.format == "GIF" and gif.n_frames == len(film.frames)


def test_pca_picture_keeps_the_prior_about_the_origin():
    z = np.random.default_rng(1).normal(size=(500, 8)) + 3.0  # codes away from the origin
    points = plane(z)
    assert abs(np.linalg.norm(points.mean(axis=0)) - np.linalg.norm(z.mean(axis=0) @ _top2(z))) < 1e-9


def _top2(z):
    _, _, vt = np.linalg.svd(z - z.mean(axis=0), full_matrices=False)
    return vt[:2].T


def test_the_film_exports_as_a_gif(digits):
    trainer = every_frame(Trainer(tiny_config(epochs=2), bundle=digits))
    trainer.fit()
    data = film_gif(trainer.film)
    gif = Image.open(io.BytesIO(data))
    assert gif.format == "GIF" and gif.n_frames == len(trainer.film.frames) == 8
    assert film_gif(trainer.film, upto=1) != data


def test_the_gifs_key_names_each_label_in_its_colour_and_wraps_long_names():
    film = _film(n=30)  # labels 0, 1, 2
    one_line = legend_strip(film, 240)
    assert one_line.shape == (16, 240, 3)
    for label in range(3):  # each label's swatch is drawn in its map colour
        assert (one_line == PALETTE[label]).all(axis=2).sum() >= 8 * 8
    film.class_names = ("a very long first name", "a very long second name", "a third")
    assert len(legend_strip(film, 240)) > len(one_line)  # wrapped onto more lines
    film.labels = None
    assert legend_strip(film, 240).shape == (0, 240, 3)


def test_one_step_and_one_epoch_while_paused(digits):
    trainer = Trainer(tiny_config(epochs=2), bundle=digits)
    frames = []
    trainer.add_callback("on_frame", lambda t, f: frames.append(f["step"]))
    trainer.pause()
    thread = threading.Thread(target=trainer.fit, daemon=True)
    thread.start()

    def settles(step, epochs=None):  # an epoch's test pass follows its last step: wait for it too
        for _ in range(200):
            thread.join(0.05)
            if trainer.step == step and trainer.paused and epochs in (None, len(trainer.history["epochs"])):
                return True
        return False

    assert settles(0)
    trainer.advance(1)
    assert settles(1) and frames[-1] == 1  # the step is logged and filmed
    assert trainer.history["steps"][-1]["step"] == 1
    trainer.advance(2)
    assert settles(3) and frames[-1] == 3
    trainer.advance_epoch()
    assert settles(trainer.steps_per_epoch, epochs=1)
    trainer.advance_epoch()
    assert settles(2 * trainer.steps_per_epoch)
    thread.join(10)
    assert not thread.is_alive() and trainer.status == "finished"


def test_slow_motion_logs_and_films_every_step(digits):
    trainer = Trainer(tiny_config(epochs=1), bundle=digits)
    trainer.film_budget = FilmBudget(head_start_s=0)  # the steps a person asked to see bypass the budget
    trainer.set_delay(0.01)
    trainer.fit()
    assert len(trainer.film.frames) == min(trainer.film.max_frames, 1 + trainer.steps_per_epoch)
    assert [r["step"] for r in trainer.history["steps"]] == list(range(1, 24))
    with pytest.raises(VAEError):
        trainer.set_delay(-1)


def test_uint8_images_round_trip_to_within_a_level():
    x = torch.rand(3, 1, 5, 5)
    assert (to_uint8(x).float() / 255 - x).abs().max() <= 0.5 / 255 + 1e-6


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_a_job_hands_over_the_latest_frame_and_steps_while_paused(kind, tmp_path):
    from vae_core.job import ProcessTrainingJob, TrainingJob

    cls = ProcessTrainingJob if kind == "process" else TrainingJob
    job = cls(tiny_config(epochs=200), tmp_path / "job.pt")
    job.pause()  # before it starts: it waits at its first step
    job.start()
    try:
        def settled(step):
            deadline = time.time() + 300  # a child process first imports torch: slow while other tests run
            while time.time() < deadline:
                snap = job.snapshot()
                if snap.frame is not None and snap.frame["step"] == step and snap.step == step:
                    return snap
                time.sleep(0.05)
            raise AssertionError(f"no frame at step {step}: {job.snapshot().step}")

        snap = settled(0)  # the untrained codes, before any step
        assert snap.status == "paused" and snap.frames_recorded == 1
        assert snap.frame["codes"].shape[1] == 4 and snap.frame["labels"] is not None
        assert list(snap.frame["class_names"]) == list("0123456789")
        assert snap.frame["originals"].shape == snap.frame["reconstructions"].shape
        job.advance(1)
        snap = settled(1)  # one step on: its frame and its logged point
        assert snap.status == "paused" and snap.history["steps"][-1]["step"] == 1
        job.advance_epoch()
        settled(23)
        for _ in range(600):  # its test pass follows the epoch's last step
            if job.snapshot().epoch == 1:
                break
            time.sleep(0.05)
        assert job.snapshot().epoch == 1 and job.snapshot().status == "paused"
        job.set_delay(0.05)
        assert job.snapshot().delay_s == 0.05
    finally:
        job.stop()
        job.join(timeout=60)


def test_the_cli_reports_a_film_and_writes_its_gif(digits, tmp_path, capsys):
    from vae_core.cli import main

    path, bare = tmp_path / "f.pt", tmp_path / "bare.pt"
    every_frame(Trainer(tiny_config(epochs=2), bundle=digits, out_path=path)).fit()
    Trainer(tiny_config(epochs=1, film_frames=0), bundle=digits, out_path=bare).fit()
    assert main(["film", str(path), "--gif", str(tmp_path / "f.gif"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["film_frames"] == 8 and out["steps"] == [0, 1, 2, 4, 8, 16, 23, 46]
    assert Image.open(tmp_path / "f.gif").n_frames == 8
    assert main(["film", str(bare)]) == 2
    assert "has no film" in capsys.readouterr().err


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_budget_affords_a_frame_while_the_film_stays_within_its_share():
    clock = FakeClock()
    budget = FilmBudget(0.03, head_start_s=2.0, clock=clock)  # the process ran 2 s before the trainer
    assert budget.affords()  # nothing spent, no frame measured yet
    clock.now = 0.5
    budget.charge(0.1, frame="encoded")  # a 0.1 s frame (the one before the first step): 0.1 s of 2.5 s so far
    assert budget.frame_s == {"encoded": 0.1, "from_test": 0.0} and budget.frames == 1
    # a second frame would make 0.2 s: the film affords it once the run has taken 0.2 / 0.03 = 6.67 s
    clock.now = 4.6
    assert not budget.affords()
    clock.now = 4.7
    assert budget.affords()
    assert budget.affords("from_test")  # a frame from the test pass's codes: none measured yet
    budget.charge(0.05)  # a checkpoint's film: seconds that are no frame
    assert budget.frame_s["encoded"] == 0.1 and not budget.affords()
    assert budget.fraction() == pytest.approx(0.15 / 6.7)
    budget.charge(0.002, frame="from_test")
    assert budget.affords("from_test") and not budget.affords("encoded") and budget.frames == 2
    assert FilmBudget(None, clock=clock).affords()  # no limit
    with pytest.raises(VAEError, match="share"):
        FilmBudget(1.5)
    # by default the run's time counts from the process's start, at most HEAD_START_CAP_S before
    age = process_age_s()
    assert age is not None and age > 0
    default = FilmBudget()
    assert 0 < time.perf_counter() - default.started <= 10.0 + 1


def test_a_frame_comes_at_least_every_few_seconds_so_a_watched_map_never_freezes():
    clock = FakeClock()
    budget = FilmBudget(0.03, head_start_s=0.0, clock=clock)
    budget.charge(0.01, frame="encoded")
    budget.charge(10.0)  # checkpoint saves carrying the film: far over its share for a long while
    clock.now = 4.9
    assert not budget.affords()
    clock.now = 5.0  # FRAME_FLOOR_S after the last frame: one more, whatever the share says
    assert budget.affords()
    budget.charge(1.0, frame="encoded")  # an expensive frame: the floor then waits 40 times its cost
    clock.now = 5.0 + 39.0
    assert not budget.affords()
    clock.now = 5.0 + 40.0
    assert budget.affords()


def test_expensive_frames_are_recorded_only_while_the_film_stays_within_its_share(digits, monkeypatch):
    # each frame made to cost at least 50 ms, against a tiny model's ~1 ms steps: the plan asks for 10
    # frames, the budget (counted from the trainer's start) affords far fewer
    record = Film.record

    def slow_record(self, *args, **kwargs):
        time.sleep(0.05)
        return record(self, *args, **kwargs)

    monkeypatch.setattr(Film, "record", slow_record)
    trainer = Trainer(tiny_config(epochs=4), bundle=digits)
    trainer.film_budget = FilmBudget(head_start_s=0)
    trainer.fit()
    budget, frames = trainer.film_budget, trainer.film.frames
    planned = 1 + sum(len(frame_points(trainer.steps_per_epoch, 1, 64, len(trainer.film.indices),
                                       first_epoch=e == 0)) for e in range(4))
    assert planned == 10 and len(frames) == budget.frames
    # the first frame and the run's last are always there: the film shows where it began and ended
    assert frames[0]["step"] == 0 and frames[-1]["step"] == trainer.step == 4 * trainer.steps_per_epoch
    # the others: only while the film's seconds stay within its share of the run's (one frame's slack:
    # a frame is expected to cost what the latest did)
    optional = len(frames) - 2
    assert optional <= FILM_TIME_SHARE * budget.elapsed_s() / 0.05 + 1
    assert budget.skipped == planned - len(frames) > 0
    assert trainer.history["epochs"][-1]["film_frames_skipped"] == budget.skipped
    assert trainer.history["epochs"][-1]["film_seconds"] >= 0.05 * len(frames)
    # and the run is the same as without the film
    without = Trainer(tiny_config(epochs=4, film_frames=0), bundle=digits)
    without.fit()
    wa, wb = _weights(trainer), _weights(without)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_a_saved_film_keeps_each_kind_of_frame_tensor_in_one_storage(digits, tmp_path):
    # torch.save writes a storage once: a film whose frames view one stacked tensor per kind saves in
    # about half the time of one storage per frame's tensor (the checkpoint is saved every epoch)
    path = tmp_path / "f.pt"
    trainer = every_frame(Trainer(tiny_config(epochs=2), bundle=digits, out_path=path))
    trainer.fit()
    stored = load_checkpoint(path).film
    frames = stored["frames"]
    assert len(frames) == 8
    for key in ("codes", "samples", "reconstructions"):
        assert len({f[key].untyped_storage().data_ptr() for f in frames}) == 1, key
    film = film_of(stored)
    for got, want in zip(film.frames, trainer.film.frames, strict=True):
        assert all(torch.equal(got[k], want[k]) for k in ("codes", "samples", "reconstructions"))
        assert got["step"] == want["step"]
    # the recording film's own frames are untouched (each its own tensor, still growing and thinning)
    assert len({f["codes"].untyped_storage().data_ptr() for f in trainer.film.frames}) == 8


SHIPPED = ROOT / "checkpoints" / "mnist5k-conv-z16.pt"


def _text_lines(picture: np.ndarray, rows: slice, cols: slice) -> list[int]:
    """The heights (pixels) of the runs of rows holding dark ink (the type's lines, ascenders to
    descenders) in a region of an RGB picture."""
    dark = (picture[rows, cols] < 90).all(axis=2).any(axis=1)
    runs, n = [], 0
    for d in [*dark.tolist(), False]:
        if d:
            n += 1
        elif n:
            runs, n = [*runs, n], 0
    return runs


def _gif_frame(data: bytes, k: int = 0) -> np.ndarray:
    gif = Image.open(io.BytesIO(data))
    gif.seek(k)
    return np.asarray(gif.convert("RGB"))


def test_the_gif_has_a_presentation_size_with_readable_type_and_keeps_the_small_one():
    """Issue 33: "Make a GIF" gave 240×364 px with ~8 px type; a presentation size is a 1280×720 slide
    whose lines of type measure >= 24 px as drawn, and the web size stays as it was."""
    film = film_of(load_checkpoint(SHIPPED).film)
    web, slide = film_gif(film, upto=1), film_gif(film, size="presentation", upto=1)
    assert Image.open(io.BytesIO(web)).size == (240, 364)
    assert Image.open(io.BytesIO(slide)).size == (1280, 720) and Image.open(io.BytesIO(slide)).n_frames == 2
    # the web GIF's key and caption, under its 240 px map: lines of about 8 px
    small = _text_lines(_gif_frame(web), slice(240, 240 + len(legend_strip(film, 240)) + 20), slice(0, 240))
    assert small and max(small) <= 11
    # the slide's step, epoch and β, right of its 720 px map: lines of 24 px and more
    big = _text_lines(_gif_frame(slide), slice(0, 120), slice(724, 1280))
    assert len(big) == 2 and min(big) >= 24, big
    # each frame shows its own step
    assert not np.array_equal(_gif_frame(slide, 0)[:60, 724:], _gif_frame(slide, 1)[:60, 724:])
    with pytest.raises(VAEError, match="presentation, web"):
        film_gif(film, size="huge")


def test_the_cli_writes_the_presentation_gif(tmp_path, capsys):
    from vae_core.cli import main

    out = tmp_path / "slides.gif"
    assert main(["film", str(SHIPPED), "--gif", str(out), "--size", "presentation", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["gif_bytes"] == out.stat().st_size
    gif = Image.open(out)
    assert gif.size[0] >= 1080 and gif.n_frames == 21


def test_an_epochs_last_frame_takes_its_codes_from_the_epochs_test_pass(digits, monkeypatch):
    import vae_core.film as film_module

    encoded = []
    encode_as_before = film_module.encode

    def counting_encode(model, images, *args, **kwargs):
        encoded.append(len(images))
        return encode_as_before(model, images, *args, **kwargs)

    monkeypatch.setattr(film_module, "encode", counting_encode)
    trainer = every_frame(Trainer(tiny_config(epochs=3), bundle=digits))
    frames = []
    trainer.add_callback("on_frame", lambda t, f: frames.append(
        (f["step"], torch.equal(encode(copy.deepcopy(t.model).eval(), t._film_images)[0].half(), f["codes"]))))
    trainer.fit()
    n = len(trainer.film.indices)
    assert [step for step, _ in frames] == [0, 1, 2, 4, 8, 16, 23, 46, 69] and all(same for _, same in frames)
    # the filmed images were encoded for every frame but the three epochs' last (steps 23, 46, 69)
    assert encoded.count(n) == len(frames) - 3
    # the test pass that gives them its codes scores the model as it did without keeping them
    from vae_core.evaluate import evaluate

    x_test = digits.split("test").images
    kept, plain = evaluate(trainer.model, x_test, keep_codes=True), evaluate(trainer.model, x_test)
    assert kept.pop("mu").shape == (len(x_test), 4) and kept == plain and "mu" not in plain


def test_an_epochs_checkpoint_leaves_the_film_out_when_writing_it_would_pass_its_share(digits, tmp_path,
                                                                                      monkeypatch):
    import vae_core.train as train_module

    written = []
    save_as_before = train_module.save_checkpoint

    def recording_save(path, **kwargs):
        written.append(kwargs["film"] is not None)
        return save_as_before(path, **kwargs)

    to_dict = Film.to_dict

    def slow_to_dict(self):  # a film that takes 0.2 s to make ready for a checkpoint, against ~50 ms epochs
        time.sleep(0.2)
        return to_dict(self)

    monkeypatch.setattr(train_module, "save_checkpoint", recording_save)
    monkeypatch.setattr(Film, "to_dict", slow_to_dict)
    path = tmp_path / "f.pt"
    trainer = Trainer(tiny_config(epochs=4), bundle=digits, out_path=path)
    trainer.film_budget = FilmBudget(head_start_s=0)
    trainer.fit()
    # four epochs' checkpoints and the run's last save: the epochs' carry the film only while writing it
    # stays within the share (once at most: none is measured before the first), the last always has it
    assert len(written) == 5 and sum(written[:4]) <= 1 and written[-1]
    stored = load_checkpoint(path).film
    assert [f["step"] for f in stored["frames"]] == [f["step"] for f in trainer.film.frames]
    assert trainer.film_budget.spent_s >= 0.2 * sum(written)  # each film written, charged
