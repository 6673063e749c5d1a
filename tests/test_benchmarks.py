"""`python -m benchmarks`: the cheap sections on tiny sizes give their keys and sane figures; a failing section
loses only its own figures (its error, exit status 1); the peak-memory wrapper measures the child alone; the UMAP
warm-up the projection section measures. No timed asserts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.__main__ import QUICK, main, run
from benchmarks.machine import run_timed
from vae_core.presets import PRESETS

TINY = QUICK.__class__(train_images=512, test_images=128, epochs=1, repeats=1, gemm_seconds=0.2, conv_images=64,
                       conv_epochs=1, cli_repeats=1, umap_small=100, umap_large=200, umap_cold_large=False,
                       decode_repeats=3)


def test_training_section_on_tiny_files():
    r = run(TINY, ("training",), "cpu")
    for key in ("train_speedup", "train_images_per_s", "train_loop_speedup", "train_loop_gflops",
                "gemm_ceiling_gflops", "conv_images_per_s", "reference_peak_rss_mb", "train_peak_rss_mb"):
        assert r[key] > 0, key
    assert r["train_images"] == 512 and r["train_epochs"] == 1
    assert r["train_loop_fraction_of_gemm"] == pytest.approx(r["train_loop_gflops"] / r["gemm_ceiling_gflops"],
                                                             rel=1e-2)
    assert r["reference_peak_rss_mb"] > 100 and r["train_peak_rss_mb"] > 100  # both load torch
    assert r["device"].startswith("CPU") and r["load_average_by_section"]["training"] >= 0
    assert r["seconds_by_section"]["training"] > 0
    assert set(r["targets"]) >= {"train_speedup", "train_loop_fraction_of_gemm", "train_peak_rss_mb"}
    # the floor: the epoch's GEMMs and Adam alone, which the loop (doing both and more) cannot beat
    assert 0 < r["train_loop_floor_gemm_s"] < r["train_loop_floor_s"]
    assert r["train_loop_floor_s"] == pytest.approx(r["train_loop_floor_gemm_s"] + r["train_loop_floor_adam_s"],
                                                    abs=2e-4)  # each rounded to 4 decimals
    # (the floor against the loop's own time is a figure, not a check: on a loaded machine either is inflated)
    assert r["train_loop_floor_fraction_of_gemm"] > 0 and r["train_loop_fraction_of_gemm"] > 0


def test_json_of_the_serving_sections(capsys):
    main(["--json", "--quick", "--only", "decode,memory"])
    r = json.loads(capsys.readouterr().out)
    assert {"decode_ms_p50", "server_peak_rss_mb", "device"} <= set(r)
    assert set(r["decode"]) == set(PRESETS)  # every shipped model
    assert all(0 < d["p50_ms"] <= d["p95_ms"] for d in r["decode"].values())
    assert r["server_models_opened"] == len(PRESETS) and r["server_peak_rss_mb"] > 100
    assert 0 < r["first_grid_s"] < r["seconds_by_section"]["decode"]  # timed inside the section's child


def test_unknown_section_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["--only", "training,nonsense"])
    assert "nonsense" in capsys.readouterr().err


def test_peak_memory_is_the_childs_own():
    held = np.ones(400 * 2**20 // 8)  # 400 MiB in this process: a child's ru_maxrss would carry it over
    child = run_timed(["-m", "json.tool", "--help"])
    assert held.sum() > 0
    assert 1 < child.peak_rss_mb < 200 and "json.tool" in child.stdout


def test_umap_warm_up_runs_once_in_a_daemon_thread():
    from vae_core import projection

    thread = projection.warm_up_in_background()
    assert thread.daemon and thread.name == "umap-warm-up"
    assert projection.warm_up_in_background() is thread  # a Streamlit rerun starts nothing new
    thread.join(timeout=600)
    assert not thread.is_alive()
    import pynndescent.pynndescent_ as nnd
    import umap.layouts

    assert umap.layouts._nb_optimize_layout_euclidean_single_epoch.signatures  # the seeded layout, compiled
    assert nnd.nn_descent.signatures  # and NNDescent's, used above 4,096 codes


def test_scaling_figures_on_a_tiny_folder(tmp_path):
    from benchmarks.scaling import processes, streamed_folder

    r = processes(tmp_path, procs=2, epochs=1)
    assert r["scaling_one_process"]["images_per_s"] > 0 and r["scaling_2_processes"]["images_per_s"] > 0
    assert r["scaling_speedup"] == pytest.approx(r["scaling_2_processes"]["images_per_s"]
                                                 / r["scaling_one_process"]["images_per_s"], rel=0.02)
    f = streamed_folder(tmp_path, n=40, budget="10KB")
    assert f["folder_images"] == 40 and f["folder_streamed"]["peak_rss_mb"] > 100
    # streamed or held, the run is the same: the same batches in the same order
    assert f["folder_streamed"]["test_nelbo"] == f["folder_resident"]["test_nelbo"]


def test_the_full_sprite_grid_trains_streamed_for_a_few_steps():
    from benchmarks.scaling import sprites_full

    r = sprites_full(steps=3, budget="256MB")["sprites_full"]  # three steps, the last of them logged
    assert r["steps"] == 3 < r["steps_per_point"] and "737,280 images" in r["loading"] and "streamed" in r["loading"]
    assert r["peak_rss_mb"] < 11_000  # the grid is 11.2 GB as float32: it was never held


# when a warm-up runs is what the two tests below check (test_umap_warm_up_runs_once_in_a_daemon_thread
# runs UMAP's real one): in their processes each method's warm-up is one that notes it ran, so neither
# compiles UMAP again
NOTED_WARM_UP = """
import dataclasses, sys, time
from vae_core import hosting, projection
ran = []
for name, spec in projection.PROJECTION_METHODS.items():
    if spec.warm_up is not None:
        projection.PROJECTION_METHODS[name] = dataclasses.replace(spec, warm_up=lambda n=name: ran.append(n))
"""


def test_a_delayed_warm_up_waits_unless_a_page_asks_for_it_at_once():
    import subprocess
    import sys

    script = NOTED_WARM_UP + """
thread = projection.warm_up_in_background(delay_s=600)
time.sleep(1.0)
print("waiting", thread.is_alive() and not ran)
assert projection.warm_up_in_background() is thread  # a page that may need UMAP: at once
thread.join(timeout=600)
print("done", not thread.is_alive() and ran == ["umap"])
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "waiting True" in out.stdout and "done True" in out.stdout


def test_a_warm_up_with_quiet_waits_until_no_page_runs():
    import subprocess
    import sys

    script = NOTED_WARM_UP + """
busy = [True]
thread = projection.warm_up_in_background(delay_s=0.1, quiet=lambda: not busy[0])
time.sleep(1.5)  # past the delay, but pages are running
print("waiting", thread.is_alive() and not ran)
hosting.page_thread_setup()
print("since", hosting.seconds_since_a_page_ran() < 1.0)
busy[0] = False
thread.join(timeout=600)
print("done", not thread.is_alive() and ran == ["umap"])
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "waiting True" in out.stdout and "since True" in out.stdout and "done True" in out.stdout


def test_the_load_benchmark_times_a_release_from_its_websocket_frames():
    import base64

    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    from benchmarks.load import Frames

    def frame(message, at: float, opcode: int = 2) -> dict:
        return {"timestamp": at, "response": {"opcode": opcode,
                                              "payloadData": base64.b64encode(message.SerializeToString()).decode()}}

    rerun, finished, delta = BackMsg(), ForwardMsg(), ForwardMsg()
    rerun.rerun_script.query_string = ""
    finished.script_finished = 1
    delta.delta.new_element.markdown.body = "z = [...]"
    frames = Frames()
    frames._seen(frame(finished, 9.0), "received")  # an earlier run's end
    mark = len(frames.events)
    assert frames.server_ms(mark) is None
    frames._seen(frame(rerun, 10.0), "sent")
    frames._seen(frame(delta, 10.05), "received")  # not counted
    frames._seen({"timestamp": 10.06, "response": {"opcode": 1, "payloadData": "text"}}, "received")
    assert frames.server_ms(mark) is None  # asked, not finished yet
    frames._seen(frame(finished, 10.125), "received")
    assert frames.server_ms(mark) == pytest.approx(125.0)


def test_the_apps_start_to_first_step_is_a_real_run(tmp_path):
    from benchmarks.startup import app_train_first_step, children_running

    seconds = app_train_first_step(tmp_path / "run.pt")
    assert 0.2 < seconds < 120  # a fresh interpreter imports torch first: never instant
    assert children_running(b"child_main") == []  # the run was stopped and its child has ended


# --- a failing section loses only its own figures


def _figures(sizes, work, device) -> dict:
    return {"train_speedup": 3.0, "train_peak_rss_mb": 100.0, "first_paint_s": float("nan")}


def _broken(sizes, work, device) -> dict:
    raise RuntimeError("no browser here\nsecond line")


@pytest.fixture
def one_section_fails(monkeypatch):
    """Two cheap stand-in sections: training gives figures (no reference_peak_rss_mb, a NaN), decode raises."""
    import benchmarks.__main__ as bench

    monkeypatch.setitem(bench.SECTIONS, "training", _figures)
    monkeypatch.setitem(bench.SECTIONS, "decode", _broken)


def test_a_failing_section_gives_its_error_the_others_figures_and_status_1(one_section_fails, capsys):
    status = main(["--json", "--only", "decode,training"])
    out = capsys.readouterr()
    r = json.loads(out.out)  # printed although a section failed
    assert status == 1
    assert r["errors"] == {"decode": "RuntimeError: no browser here (tests/test_benchmarks.py:"
                                     f"{_broken.__code__.co_firstlineno + 1} in _broken)"}
    assert r["train_speedup"] == 3.0 and r["first_paint_s"] is None
    assert set(r["seconds_by_section"]) == set(r["load_average_by_section"]) == {"decode", "training"}
    assert r["targets"] == {"train_speedup": {"target": ">= 2.3", "met": True}}  # no reference, no NaN target
    assert "the decode section failed" in out.err and "Traceback" in out.err and "second line" in out.err
    assert main(["--json", "--only", "training"]) == 0 and json.loads(capsys.readouterr().out)["errors"] == {}


def test_the_table_shows_a_failed_section(one_section_fails, capsys):
    assert main(["--only", "decode,training"]) == 1
    out = capsys.readouterr().out
    assert "train_speedup" in out and "FAILED decode" in out and "RuntimeError: no browser here" in out
    assert "1 of 2 sections failed" in out


def test_a_section_that_exits_is_a_failed_section(monkeypatch):
    import benchmarks.__main__ as bench

    def exits(sizes, work, device):
        raise SystemExit(3)

    monkeypatch.setitem(bench.SECTIONS, "memory", exits)
    monkeypatch.setitem(bench.SECTIONS, "training", _figures)
    r = run(TINY, ("memory", "training"), "cpu")
    assert r["errors"]["memory"].startswith("SystemExit: 3 (tests/test_benchmarks.py:")
    assert r["train_speedup"] == 3.0


def test_targets_of_missing_or_partial_figures():
    from benchmarks.__main__ import targets

    assert targets({}) == {}
    assert targets({"device": "CPU", "train_peak_rss_mb": 500.0}) == {}
    assert targets({"device": "CPU", "train_peak_rss_mb": 500.0, "reference_peak_rss_mb": 600.0,
                    "umap_cold_s": None, "first_paint_s": "n/a"}) == {
        "train_peak_rss_mb": {"target": "<= reference_peak_rss_mb", "met": True}}


def test_the_command_exits_1_and_prints_json_when_a_section_fails():
    """`python -m benchmarks` itself: the real sections' code, their measuring functions stood in for."""
    import subprocess
    import sys
    from pathlib import Path

    script = """
import runpy, sys
import benchmarks.serving as serving
def broken():
    raise MemoryError("server child died")
serving.server_memory = broken
serving.shipped = lambda: []
serving.decode_latency = lambda models, repeats: {"decode_ms_p50": 1.5, "decode": {}}
serving.first_grid = lambda: {"first_grid_s": 0.1}
sys.argv = ["python -m benchmarks", "--json", "--quick", "--only", "memory,decode"]
runpy.run_module("benchmarks", run_name="__main__", alter_sys=True)
"""
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]
    r = json.loads(proc.stdout)
    assert r["errors"]["memory"].startswith("MemoryError: server child died (<string>:")
    assert r["decode_ms_p50"] == 1.5 and r["first_grid_s"] == 0.1 and "server_peak_rss_mb" not in r


# --- the film's cost in whole processes (issue 32)

def test_the_film_benchmark_pairs_alternated_runs_and_a_failed_configuration_keeps_its_error(tmp_path):
    from benchmarks import film

    calls = []

    def fake_run(args):  # the film's run 10% slower than its pair; CPU 4% more; one configuration fails
        calls.append(args)
        if "conv" in args:
            raise RuntimeError("no memory for the conv model")
        with_film = "--film-frames" not in args
        return {"wall_s": 11.0 if with_film else 10.0, "cpu_s": 20.8 if with_film else 20.0}

    r = film.whole_process(("mlp-5k-1-epoch", "conv-5k-1-epoch", "mlp-5k-20-epochs"), repeats=3, work=tmp_path,
                           run=fake_run)
    runs = r["film_whole_process"]
    assert list(runs) == ["mlp-5k-1-epoch", "conv-5k-1-epoch", "mlp-5k-20-epochs"]
    assert runs["conv-5k-1-epoch"]["error"] == "RuntimeError: no memory for the conv model"
    mlp = runs["mlp-5k-1-epoch"]
    assert mlp["film_wall_s"] == 11.0 and mlp["no_film_wall_s"] == 10.0 and mlp["repeats"] == 3
    assert mlp["cost_fraction"] == pytest.approx(0.1) and mlp["cpu_cost_fraction"] == pytest.approx(0.04)
    assert r["film_whole_process_cost_max"] == pytest.approx(0.1)  # of those measured
    # alternated, each side first in turn: none, film | film, none | none, film
    first = [args for args in calls if "--epochs" in args and args[args.index("--epochs") + 1] == "1"
             and "mlp" in args]
    assert ["--film-frames" in a for a in first] == [True, False, False, True, True, False]
    # the film at its defaults on one side, --film-frames 0 on the other, the rest the same
    a, b = ([x for i, x in enumerate(args) if "--out" not in args[max(i - 1, 0):i + 1]] for args in first[:2])
    assert a[-2:] == ["--film-frames", "0"] and a[:-2] == b
    assert runs["mlp-5k-20-epochs"]["epochs"] == 20
    with pytest.raises(ValueError, match="MNIST files"):
        film.train_args("mlp-60k-3-epochs", None, tmp_path / "x.pt", True)


def test_the_film_benchmark_runs_real_processes_and_reads_the_runs_own_account(tmp_path, monkeypatch):
    from benchmarks import film

    tiny = ("--model", "mlp", "--hidden-sizes", "32", "--latent-dim", "4", "--batch-size", "64")
    monkeypatch.setitem(film.CONFIGS, "tiny", (("--dataset", "digits"), tiny, 2))
    whole = film.whole_process(("tiny", "no-such-configuration"), repeats=1, work=tmp_path)
    r = whole["film_whole_process"]["tiny"]
    assert "error" not in r, r
    assert r["film_wall_s"] > 0 and r["no_film_wall_s"] > 0 and r["cpu_cost_fraction"] is not None
    assert r["film_frames"] >= 2  # the frame before the first step and the run's last, at least
    assert r["film_seconds"] > 0 and 0 < r["film_seconds_fraction"] < 1
    assert whole["film_whole_process"]["no-such-configuration"]["error"].startswith("KeyError")
    assert whole["film_whole_process_accounted_max"] == whole["film_whole_process"]["tiny"]["film_seconds_fraction"]
    assert r["film_frames_skipped"] >= 0


def test_the_film_section_prints_each_configurations_cost(monkeypatch, capsys):
    import benchmarks.film as film
    import benchmarks.film_browser as film_browser

    seen = {}

    def fake_whole_process(names, repeats, work, device):
        seen.update(names=names, repeats=repeats)
        return {"film_whole_process": {"mlp-5k-1-epoch": {
            "film_wall_s": 5.2, "no_film_wall_s": 5.0, "cost_fraction": 0.04, "cost_fraction_worst": 0.06,
            "cpu_cost_fraction": 0.03, "film_frames": 7, "load_average": 3.1},
            "conv-5k-1-epoch": {"error": "RuntimeError: boom", "load_average": 3.0}},
            "film_whole_process_cost_max": 0.04}

    monkeypatch.setattr(film, "whole_process", fake_whole_process)
    monkeypatch.setattr(film, "film_cost", lambda **kw: {"film_cost_fraction": 0.03})
    monkeypatch.setattr(film_browser, "film_browser", lambda work, watch_s: {})
    assert main(["--quick", "--only", "film"]) == 0
    out = capsys.readouterr().out
    assert seen == {"names": film.QUICK_CONFIGS, "repeats": 2}
    assert "mlp-5k-1-epoch" in out and "5.20 s with, 5.00 s without: cost +4.0%" in out
    assert "conv-5k-1-epoch" in out and "FAILED RuntimeError: boom" in out
    assert "target film_whole_process_cost_max" in out
    # the quick set is short and long, MLP and conv, 5k and 60k images
    configs = [film.CONFIGS[n] for n in film.QUICK_CONFIGS]
    assert {c[2] > 1 for c in configs} == {True, False} and {"--model" in c[1] and c[1][1] for c in configs} == \
        {"mlp", "conv"} and {c[0] == film.SIXTY_K for c in configs} == {True, False}
