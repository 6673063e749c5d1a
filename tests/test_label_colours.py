"""No two labels share a colour on a map (issue 33, point 6): the map, the film (live, replay, GIF key)
and How it works' plane all take their colours from one engine palette, as many as there are labels."""

import numpy as np
import torch

from vae_core.film import Film, legend_strip, render_frame
from vae_core.images import PALETTE, label_colour, label_colours, label_hexes

TAB10 = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
         (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))
ELEVEN = ["actions", "benchmarks", "checkpoints", "docs", "pages", "shared", "static", "tests", "tools",
          "vae_core", "ui"]  # the 11 folder labels of the report, where "ui" took "actions"' blue


def test_n_labels_get_n_different_colours_and_the_first_ten_stay_tab10():
    assert tuple(PALETTE[:10]) == TAB10  # shipped pictures of up to 10 labels look as they did
    for n in (1, 10, 11, 20, 21, 64, 300):
        colours = label_colours(n)
        assert len(colours) == n and len(set(colours)) == n
        assert all(all(0 <= c <= 255 for c in rgb) for rgb in colours)
        assert [label_colour(k) for k in range(n)] == colours
    assert len(set(label_hexes(11))) == 11 and label_hexes(1) == ["#1f77b4"]


def test_the_map_gives_each_of_eleven_folder_labels_its_own_colour():
    from ui.map_figure import colours_for, scatter_figure

    values = np.arange(110) % 11
    fig = scatter_figure(np.random.default_rng(0).normal(size=(110, 2)), values, ELEVEN, "label")
    colours = {t.name: t.marker.color for t in fig.data}
    assert len(colours) == 11 and len(set(colours.values())) == 11, colours
    assert colours["actions"] != colours["ui"]
    assert len(set(colours_for(ELEVEN))) == 11  # the pointer view's and the Sliders' live map palette


def test_the_films_map_replay_and_gif_key_give_eleven_labels_eleven_colours():
    from ui.film_figures import map_figure

    n = 44
    labels = torch.arange(n) % 11
    fig = map_figure(np.random.default_rng(0).normal(size=(n, 2)), labels, 3.0, "t", 4, class_names=ELEVEN)
    assert len({t.marker.color for t in fig.data if t.name}) == 11

    film = Film.start(torch.rand(n, 1, 4, 4), labels, list(range(4)), 2, seed=0, max_frames=10)
    film.class_names = tuple(ELEVEN)
    key = legend_strip(film, 2000)  # one line: every swatch drawn in its label's colour
    for k in range(11):
        assert (key == label_colour(k)).all(axis=2).sum() >= 8 * 8, k
    frame = {"step": 1, "epoch": 0.5, "beta": 1.0, "samples": torch.zeros(4, 1, 4, 4, dtype=torch.uint8),
             "reconstructions": torch.zeros(4, 1, 4, 4, dtype=torch.uint8)}
    points = np.stack([np.linspace(-2, 2, n), np.zeros(n)], axis=1)
    picture = render_frame(film, frame, points, 3.0)[:240, :240]
    assert all((picture == label_colour(k)).all(axis=2).any() for k in range(11))


def test_how_it_works_plane_colours_eleven_labels_apart():
    from ui.explainer import plane_data

    data = plane_data(np.random.default_rng(0).normal(size=(22, 2)), np.arange(22) % 11)
    assert len(set(data["colors"])) == 11
