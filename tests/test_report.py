import json
import shutil

from vae_core.report import END, START, write_report


def test_report_measures_shipped_names_and_updates_the_readme(tmp_path, tiny_checkpoint):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    shutil.copy(tiny_checkpoint, folder / "digits-mlp.pt")  # a preset's name: the report picks it up
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START}\nold\n{END}\noutro\n")
    path = write_report(folder, tmp_path / "docs", iw_samples=8, baseline_epochs=0, readme=readme, log=lambda _: None)
    text = path.read_text()
    assert "| digits-mlp (β=1) | digits | Bernoulli on grey levels |" in text
    data = json.loads((tmp_path / "docs" / "report.json").read_text())
    row = data["rows"][0]
    assert row["iw_nll"] <= row["test_nelbo"] + 1.0  # the IW bound is no looser than the ELBO
    assert set(row["probe"]) == {"10", "100", "1000"}
    updated = readme.read_text()
    assert updated.startswith("intro\n") and updated.endswith("outro\n") and "old" not in updated
    assert "digits-mlp (β=1)" in updated


def test_report_keeps_the_last_anomaly_benchmark_unless_given_a_new_one(tmp_path, tiny_checkpoint):
    folder, docs = tmp_path / "checkpoints", tmp_path / "docs"
    folder.mkdir()
    docs.mkdir()
    shutil.copy(tiny_checkpoint, folder / "digits-mlp.pt")
    recorded = {"mean_auroc": 0.912, "per_class_auroc": {str(d): 0.9 for d in range(10)}, "score": "nelbo"}
    (docs / "report.json").write_text(json.dumps({"rows": [], "baseline": None, "anomaly": recorded}))
    path = write_report(folder, docs, iw_samples=4, baseline_epochs=0, readme=None, log=lambda _: None)
    assert json.loads((docs / "report.json").read_text())["anomaly"] == recorded
    assert "mean AUROC **0.912**" in path.read_text()
    new = tmp_path / "anomaly.json"
    new.write_text(json.dumps({**recorded, "mean_auroc": 0.5}))
    path = write_report(folder, docs, iw_samples=4, baseline_epochs=0, anomaly_json=new, readme=None,
                        log=lambda _: None)
    assert "mean AUROC **0.500**" in path.read_text()


def test_report_names_a_beta_zero_model_a_plain_autoencoder():
    from vae_core.report import _model_name

    assert _model_name({"name": "ae", "beta": 0.0}) == "ae (β=0: a plain autoencoder, the KL reported, never paid)"
    assert _model_name({"name": "tc", "beta": 4.0, "objective": "beta-tcvae"}) == "tc (β-TCVAE, β=4)"
