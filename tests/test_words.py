"""Words that match the picture (issue 33, point 6): the Anomalies page's default does not teach the
wrong lesson. On the shipped mnist5k-conv-z16, trained on every digit, "normal = 0" alone gave AUROC
0.279, below chance, with nothing saying why; the default view is now each class in turn as the only
normal one, which shows what the score tracks, and a choice at or below chance says why in one line."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tests.test_app import ROOT, by_label, open_app
from ui.display import plain
from vae_core import VAEError
from vae_core.anomaly import auroc, class_aurocs

SHIPPED = ROOT / "checkpoints" / "mnist5k-conv-z16.pt"


def test_class_aurocs_take_each_class_alone_as_normal():
    scores = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    labels = np.array([0, 0, 1, 1, 2, 2])
    got = class_aurocs(scores, labels)
    assert got == {0: 1.0, 1: pytest.approx(auroc(scores[2:4], scores[[0, 1, 4, 5]])), 2: 0.0}  # lowest: most normal
    assert class_aurocs(scores, np.zeros(6)) == {}  # one class: nothing to tell it from
    with pytest.raises(VAEError, match="6 scores but 5 labels"):
        class_aurocs(scores, labels[:5])


def _captions(at) -> str:
    return " ".join(c.value for c in at.caption)


def test_anomalies_default_shows_what_the_score_tracks_and_a_below_chance_choice_says_why(checkpoint_dir):
    shutil.copyfile(SHIPPED, checkpoint_dir / SHIPPED.name)
    at = open_app(checkpoint_dir, page="anomalies")
    normal = by_label(at.multiselect, "Normal classes (the rest count as anomalies)")
    assert normal.value == []  # no class is this model's normal: no below-chance ROC as the first thing seen
    charts = [c.proto.id for c in at.get("plotly_chart")]
    assert any("anom_classes" in k for k in charts) and not any("anom_roc" in k for k in charts)
    words = _captions(at)
    assert plain("this model has no normal class") in words
    assert plain("1 looks most normal (AUROC 0.993) and 0 least (0.279, below chance)") in words, words
    assert not at.warning

    normal.set_value([0]).run()  # the report's choice: now it says why
    assert not at.exception
    assert [w.value for w in at.warning] == [
        "AUROC 0.279 is at or below chance: to this model the chosen classes cost more to reconstruct than "
        "the rest; trained on every class, it scores how hard an image is to reconstruct, not its class."]
    by_label(at.multiselect, "Normal classes (the rest count as anomalies)").set_value([1]).run()
    assert not at.warning and "not a one-class detector" in _captions(at)
