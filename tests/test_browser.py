"""What a person sees: a real `streamlit run app.py` in Debian's Chromium (Playwright).

Skipped with a reason when Chromium or Playwright is missing, except under CI (CI=true), where a
missing browser is a failure.
"""

import json
import os
import shutil
import time

import pytest

from tests.browser import (
    PAGES,
    ROOT,
    browser_page,
    chromium_available,
    exceptions,
    overflowing,
    settle,
    streamlit_server,
)
from tests.test_importers import _pythae_trained
from ui.display import IMAGE_ROW
from vae_core import Trainer, VAEConfig
from vae_core.importers import import_model

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _browser_missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -r requirements-dev.txt)"
    if not chromium_available():
        return "Chromium is not installed (apt-get install -y chromium)"
    return None


MISSING = _browser_missing()
pytestmark = pytest.mark.skipif(MISSING is not None and not IN_CI, reason=str(MISSING))


@pytest.fixture(scope="module")
def folder(tmp_path_factory, mnist5k):
    """A checkpoint folder with one small trained model; in CI a missing browser is a failure."""
    if MISSING:
        pytest.fail(f"browser test cannot run in CI: {MISSING}")
    folder = tmp_path_factory.mktemp("browser-checkpoints")
    cfg = VAEConfig(dataset="mnist5k", model="mlp", latent_dim=4, hidden_sizes=(128,), epochs=2, device="cpu")
    Trainer(cfg, bundle=mnist5k, out_path=folder / "smoke.pt").fit()
    # a VAE trained elsewhere (pythae, its own code) and imported: listed after smoke, opened by its name
    _pythae_trained(folder / "pythae-vae", "bce", mnist5k.split("train").images[:1000])
    import_model(folder / "pythae-vae", "mnist5k", folder / IMPORTED, download=False)
    return folder


@pytest.fixture(scope="module")
def served(folder):
    with streamlit_server(folder) as url, browser_page() as page:
        yield url, page


@pytest.mark.parametrize("name", PAGES)
def test_no_page_overflows_a_phones_width(served, name):
    """Issue 33: at 390 × 844 nothing on any page passes the screen's right edge (a component's canvas
    included), and a grid of images stays a row of images (pairs stay pairs) instead of stacking one
    image a row."""
    url, page = served
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        page.goto(f"{url}/{name}")
        settle(page)
        page.wait_for_timeout(1500)  # components draw their canvases at their shown size
        assert exceptions(page) == [] and overflowing(page, 390) == []
        rows = page.evaluate("""(grids) => [...document.querySelectorAll(grids)]
          .map((b) => [...b.querySelectorAll('[data-testid="stImage"] img')]
            .map((i) => Math.round(i.getBoundingClientRect().top)))
          .filter((tops) => tops.length > 1)""", IMAGE_ROW)
        for tops in rows:  # every image of a grid's row (a row of images and no control) on one line
            assert len(set(tops)) == 1, f"a row of {len(tops)} images stacked: tops {tops}"
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})


# --- the live decoder (ui/live_decoder.js): dragging repaints in the browser before any release


# Components render in a shadow root: Playwright's locators reach into it, document.querySelector does not.


def _pixels(page, root: str, canvas: str = "canvas.vae-live-image") -> str:
    """The decoded canvas of the live decoder `root`, as a data URL (its pixels)."""
    return page.locator(f"{root} {canvas}").first.evaluate("c => c.toDataURL()")


def _first_frame(page, root: str, timeout_s: float = 60) -> None:
    canvas = page.locator(f"{root} canvas.vae-live-image").first
    for _ in range(int(timeout_s * 4)):
        if int(canvas.get_attribute("data-frames") or 0) > 0:
            return
        page.wait_for_timeout(250)
    status = page.locator(f"{root} .vae-live-status").first.inner_text()
    raise AssertionError(f"no frame decoded in {timeout_s:g} s ({status})")


def _drag(page, root: str, target, points: list[tuple[float, float]], held=None,
          canvas: str = "canvas.vae-live-image") -> int:
    """Press the mouse on `target` at the first of `points` (fractions of its box), move through
    the others without releasing, and count how often the canvas changed between moves; `held()`
    runs just before the button is released. Nothing may be reported to Python while it is down."""
    target.scroll_into_view_if_needed()
    box = target.bounding_box()
    at = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    page.wait_for_timeout(150)
    changes, last = 0, _pixels(page, root, canvas)
    for x, y in at[1:]:
        page.mouse.move(x, y, steps=3)
        page.wait_for_timeout(120)
        now = _pixels(page, root, canvas)
        changes += now != last
        last = now
    reported = page.locator(root).first.get_attribute("data-reported")
    if held is not None:
        held()
    page.mouse.up()
    assert reported is None, "the component reported to Python before the mouse was released"
    return changes


ACROSS = [(0.1 + 0.08 * i, 0.5) for i in range(11)]  # left to right through the middle


def test_dragging_a_pad_slider_repaints_before_release_and_the_page_follows(served):
    url, page = served
    page.goto(f"{url}/sliders")
    settle(page)
    root = ".vae-live.vae-live-sliders"
    _first_frame(page, root)
    slider = page.locator(f"{root} input[data-dim]").first  # a raw dimension's (named directions come first)
    star = page.locator(".vae-live-marker canvas.vae-live-map").first  # the map beside the pad
    star.wait_for(timeout=60_000)
    grid = page.locator(".vae-live-traversal canvas.vae-live-traversal").first  # the traversals below
    grid.wait_for(timeout=60_000)
    page.wait_for_function("g => Number(g.dataset.frames) > 0", arg=grid.element_handle(), timeout=60_000)
    placed, swept = [star.get_attribute("data-at")], [(grid.get_attribute("data-z"), grid.get_attribute("data-frames"))]

    def held():
        placed.append(star.get_attribute("data-at"))
        swept.append((grid.get_attribute("data-z"), grid.get_attribute("data-frames")))

    changes = _drag(page, root, slider, ACROSS, held=held)
    assert changes >= 5, f"the decoded image changed {changes} times in 10 moves with the button held"
    assert placed[0] != placed[1], "the map's star did not follow the drag before the release"
    assert swept[0][0] != swept[1][0] and int(swept[1][1]) > int(swept[0][1]), \
        "the traversal grid did not follow the drag before the release"

    dim, value = int(slider.get_attribute("data-dim")), float(slider.input_value())
    # the grid ends on the released z (decoded in the browser: its batch runs after the last move)
    page.wait_for_function("([g, dim, v]) => Math.abs(JSON.parse(g.dataset.z || '[]')[dim] - v) < 1e-3",
                           arg=[grid.element_handle(), dim, value], timeout=30_000)
    page.wait_for_function(
        "([dim, v]) => [...document.querySelectorAll('[data-testid=stCaptionContainer]')].some(c => {"
        " const m = c.innerText.match(/z = \\[([^\\]]*)\\]/);"
        " return m && Math.abs(Number(m[1].split(',')[dim]) - v) < 0.006; })", arg=[dim, value], timeout=60_000)
    settle(page)
    assert exceptions(page) == []


@pytest.mark.parametrize("size", [(390, 844), (1280, 720), (1920, 1080)])
@pytest.mark.parametrize("name", ["sliders", "interpolate"])
def test_the_decoded_picture_stays_in_view_while_a_slider_is_dragged(served, name, size):
    """Issue 33: with the page scrolled until the component's last slider sits at the screen's bottom
    edge, the decoded image is still wholly on screen while that slider is dragged, at a phone's, a
    laptop's and a projector's size (it sticks to the top of the screen)."""
    url, page = served
    page.set_viewport_size({"width": size[0], "height": size[1]})
    try:
        page.goto(f"{url}/{name}")
        settle(page)
        root = f".vae-live.vae-live-{'sliders' if name == 'sliders' else 'path'}"
        _first_frame(page, root)
        image = page.locator(f"{root} canvas.vae-live-image").first
        slider = page.locator(f"{root} input[type=range]").last
        # scroll as a person reaching for the last slider does: until it sits at the screen's bottom edge
        box = slider.bounding_box()
        page.evaluate("d => { const m = document.querySelector('[data-testid=stMain]'); m.scrollTop += d; }",
                      box["y"] + box["height"] - (size[1] - 12))
        page.wait_for_timeout(300)
        seen = []

        def held():
            box = image.bounding_box()
            seen.append((box["y"], box["y"] + box["height"]))

        _drag(page, root, slider, ACROSS, held=held)
        (y0, y1), = seen
        assert y0 >= -1 and y1 <= size[1] + 1, f"the decoded image spans {y0:.0f}–{y1:.0f} px of a {size[1]} px screen"
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})


_FOCUSED = """() => {
  let e = document.activeElement;
  while (e && e.shadowRoot && e.shadowRoot.activeElement) e = e.shadowRoot.activeElement;
  return { tag: e.tagName, label: e.getAttribute("aria-label") || e.innerText?.slice(0, 40) || "",
           dim: e.dataset ? e.dataset.dim ?? null : null, direction: e.dataset ? e.dataset.direction ?? null : null,
           main: !!(e.closest && (e.closest('[data-testid="stMain"]') || (e.getRootNode().host &&
                   e.getRootNode().host.closest('[data-testid="stMain"]')))),
           sidebar: !!(e.closest && e.closest('[data-testid="stSidebar"]')) };
}"""


def test_the_keyboard_reaches_the_page_before_a_collapsed_sidebars_links_and_z_past_the_named_sliders(served):
    """Issue 33: from the page's start, Tab reaches the page's own controls without walking the links of
    a collapsed sidebar; on Sliders the named directions are one stop of the Tab key (↑ ↓ move within
    them), so the first z slider is one Tab past them."""
    url, page = served
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: the sidebar starts collapsed
    try:
        page.goto(f"{url}/sliders")
        settle(page)
        _first_frame(page, ".vae-live.vae-live-sliders")
        seen = []
        for _ in range(6):
            page.keyboard.press("Tab")
            seen.append(page.evaluate(_FOCUSED))
            if seen[-1]["main"]:
                break
        assert seen[-1]["main"] and not any(f["sidebar"] for f in seen), seen
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"{url}/sliders")
    settle(page)
    root = ".vae-live.vae-live-sliders"
    _first_frame(page, root)
    named = page.locator(f"{root} input[data-direction]")
    if named.count() > 1:
        named.first.focus()
        page.keyboard.press("ArrowDown")  # within the group: the next named slider
        assert page.evaluate(_FOCUSED)["direction"] == named.nth(1).get_attribute("data-direction")
        page.keyboard.press("Tab")  # out of the group: the first dimension of z
        assert page.evaluate(_FOCUSED)["dim"] is not None
    first = page.locator(f"{root} input[data-dim]").first
    first.focus()
    page.keyboard.press("ArrowDown")
    assert page.evaluate(_FOCUSED)["dim"] == page.locator(f"{root} input[data-dim]").nth(1).get_attribute("data-dim")


def test_a_named_attribute_slider_changes_the_image_while_dragged_and_moves_z(served):
    url, page = served
    page.goto(f"{url}/sliders")
    settle(page)
    root = ".vae-live.vae-live-sliders"
    named = page.locator(f'{root} input[data-direction="more like an 8"]')
    named.wait_for(timeout=60_000)  # the pad mounts again with its named sliders once the data is encoded
    _first_frame(page, root)
    raw = page.locator(f"{root} input[data-dim]")
    before = [raw.nth(i).input_value() for i in range(raw.count())]
    changes = _drag(page, root, named, ACROSS)
    assert changes >= 5, f"the decoded image changed {changes} times in 10 moves of 'more like an 8'"
    after = [raw.nth(i).input_value() for i in range(raw.count())]
    assert after != before, "the raw sliders did not follow the named one"
    reported = json.loads(page.locator(root).first.get_attribute("data-reported"))
    assert [round(v, 2) for v in reported] != [0.0] * len(reported)  # the released z, heard by Python
    page.wait_for_function("() => new URL(location.href).searchParams.has('z')", timeout=30_000)  # in the address
    assert exceptions(page) == []


POINT_ON_SCREEN = """([trace, point]) => {
  const gd = document.querySelector('.st-key-map_chart .js-plotly-plot');
  const t = gd._fullData[trace], xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const box = gd.getBoundingClientRect();
  const x = xa.l2p(Number(t.x[point])) + xa._offset + box.left, y = ya.l2p(Number(t.y[point])) + ya._offset + box.top;
  const c = t.customdata[point];
  return [x, y, Array.isArray(c) ? c[0] : Number(c)];
}"""


NEAREST_ON_SCREEN = """([x, y]) => {
  const gd = document.querySelector('.st-key-map_chart .js-plotly-plot');
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
  let best = Infinity, index = null;
  for (const t of gd._fullData) for (let i = 0; i < t.x.length; i++) {
    const dx = xa.l2p(Number(t.x[i])) + xa._offset + box.left - x;
    const dy = ya.l2p(Number(t.y[i])) + ya._offset + box.top - y;
    const d = dx * dx + dy * dy;
    if (d < best) { best = d; const c = t.customdata[i]; index = Array.isArray(c) ? c[0] : Number(c); }
  }
  return index;
}"""


def test_hovering_a_map_point_shows_its_image_at_once(served):
    url, page = served
    page.goto(url)
    settle(page)
    page.wait_for_selector(".st-key-map_chart .js-plotly-plot", timeout=60_000)
    page.wait_for_function("() => document.querySelector('.st-key-map_chart .js-plotly-plot')._fullData?.length",
                           timeout=60_000)
    tip = page.locator(".vae-live-hovertip")
    seen = []
    for trace, point in ((0, 3), (1, 5), (2, 0)):
        x, y, _ = page.evaluate(POINT_ON_SCREEN, [trace, point])
        page.mouse.move(x - 30, y - 30)
        page.mouse.move(x, y, steps=2)
        page.wait_for_timeout(300)  # hover events come from plotly's own throttled handler
        page.wait_for_function("t => t.style.display === 'block'", arg=tip.element_handle(), timeout=5_000)
        shown = int(tip.get_attribute("data-index"))
        seen.append((shown, page.evaluate(NEAREST_ON_SCREEN, [x, y])))  # the point nearest the pointer, on screen
        # the tile drawn is the point's own image: non-blank (a digit has ink)
        ink = page.evaluate("t => { const c = t.querySelector('canvas'); const d = c.getContext('2d')"
                            ".getImageData(0, 0, c.width, c.height).data; let s = 0; for (let i = 0; i < d.length;"
                            " i += 4) s += d[i]; return s; }", tip.element_handle())
        assert ink > 0, "the hovered point's image is blank"
    assert all(shown == hovered for shown, hovered in seen), seen
    assert len({shown for shown, _ in seen}) == 3  # three points, three images
    latencies = page.evaluate("() => window.__vaeLiveDecoder.stats.hover.latencies")
    assert latencies and max(latencies) < 1000  # a frame after the pointer's event (figures: the benchmark)
    assert exceptions(page) == []


def test_dragging_the_temperature_redraws_every_sample_before_release(served):
    url, page = served
    page.goto(f"{url}/generate")
    settle(page)
    root, canvas = ".vae-live.vae-live-samples", "canvas.vae-live-grid"
    grid = page.locator(f"{root} {canvas}").first
    grid.wait_for(timeout=60_000)
    page.wait_for_function("g => Number(g.dataset.frames) > 0", arg=grid.element_handle(), timeout=60_000)
    temperature = page.locator(f"{root} input[type=range]").first
    changes = _drag(page, root, temperature, ACROSS, canvas=canvas)
    assert changes >= 5, f"the samples changed {changes} times in 10 moves with the button held"
    value = float(temperature.input_value())
    # the grid ends on the released temperature, and the page is told it (for its download)
    page.wait_for_function("([g, v]) => Math.abs(JSON.parse(g.dataset.t || '-1') - v) < 1e-3",
                           arg=[grid.element_handle(), value], timeout=30_000)
    assert float(page.locator(root).first.get_attribute("data-reported")) == value
    settle(page)
    assert exceptions(page) == []


def test_the_runtime_and_the_decoder_arrive_uncompressed(served):
    """Streamlit gzips an app's static files on every request (seconds of a busy server's CPU for the
    14 MB .wasm); the component asks for the byte range 0-, which the server sends as it is."""
    url, page = served
    page.goto(f"{url}/sliders")
    settle(page)
    _first_frame(page, ".vae-live.vae-live-sliders")
    sizes = page.evaluate("() => performance.getEntriesByType('resource').filter(e => /\\.(wasm|onnx)$/.test(e.name))"
                          ".map(e => [e.name.split('.').pop(), e.encodedBodySize, e.decodedBodySize])")
    kinds = {kind for kind, _, _ in sizes}
    assert {"wasm", "onnx"} <= kinds, sizes
    assert all(encoded == decoded > 0 for _, encoded, decoded in sizes), sizes


def test_the_interpolation_scrubber_and_corner_pad_repaint_as_they_move(served):
    url, page = served
    page.goto(f"{url}/interpolate")
    settle(page)
    views = ((".vae-live.vae-live-path", "input[type=range]"), (".vae-live.vae-live-plane", "canvas.vae-live-pad"))
    for root, target in views:
        _first_frame(page, root)
        diagonal = [(0.05 + 0.09 * i, 0.05 + 0.09 * i) for i in range(11)]
        moves = ACROSS if target.startswith("input") else diagonal
        changes = _drag(page, root, page.locator(f"{root} {target}").first, moves)
        assert changes >= 5, f"{root}: the image changed {changes} times in 10 moves"
    assert exceptions(page) == []


def test_the_map_decodes_the_point_under_the_pointer(served):
    url, page = served
    page.goto(url)
    settle(page)
    page.get_by_text("Decode under the pointer", exact=True).click()
    settle(page)
    root = ".vae-live.vae-live-plane"
    _first_frame(page, root)
    pad = page.locator(f"{root} canvas.vae-live-pad").first
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    seen = set()
    for i in range(8):  # hovering, no button: the picture follows the pointer
        page.mouse.move(box["x"] + box["width"] * (0.1 + 0.1 * i), box["y"] + box["height"] * (0.9 - 0.1 * i))
        page.wait_for_timeout(120)
        seen.add(_pixels(page, root))
    assert len(seen) >= 5
    assert exceptions(page) == []


def test_without_webassembly_the_page_says_so_and_decodes_on_the_server(served):
    url, page = served
    context = page.context.browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script("delete globalThis.WebAssembly")  # as in a browser with WebAssembly turned off
    try:
        plain = context.new_page()
        plain.goto(f"{url}/sliders")
        settle(plain)
        note = plain.locator('[data-testid="stCaptionContainer"]', has_text="Decoding on the server").first
        note.wait_for(timeout=60_000)
        assert "WebAssembly turned off" in note.inner_text()
        # the sidebar's runtime line and the pad both report the failure: the page may rerun once more
        plain.locator('[data-testid="stSlider"]').nth(3).wait_for(timeout=60_000)  # the model's four sliders
        settle(plain)
        assert plain.locator('[data-testid="stImage"]', has_text="decoded on the server").count() == 1
        assert exceptions(plain) == []
    finally:
        context.close()


def test_the_chart_bundle_is_warmed_before_a_page_draws_a_chart(served):
    url, page = served
    page.goto(f"{url}/sliders")  # a page with no plotly chart (the live pad's map is a canvas)
    settle(page)
    page.wait_for_function("() => performance.getEntriesByName('vae-live:charts-warmed').length > 0",
                           timeout=60_000)
    fetched = page.evaluate("() => performance.getEntriesByType('resource').map(r => r.name)"
                            ".filter(n => n.includes('/static/js/PlotlyChart.'))")
    assert len(fetched) == 1  # Streamlit's own bundle, by the name this Streamlit gave it
    page.get_by_role("link", name="Latent map").click()
    page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot').first.wait_for(timeout=60_000)
    settle(page)
    again = page.evaluate("() => performance.getEntriesByType('resource').map(r => r.name)"
                          ".filter(n => n.includes('/static/js/PlotlyChart.'))")
    assert again == fetched  # the chart used the module already loaded: not fetched a second time
    assert exceptions(page) == []


IMPORTED = "zz-imported-pythae.pt"  # the folder's imported model (sorted after smoke: not the default)


def test_a_model_imported_from_pythae_is_decoded_and_encoded_in_the_browser_and_checked_up(served):
    """Issue 35: a pythae VAE, imported, drives Sliders' decoder while a slider is dragged and How it works'
    encoder and decoder while a stroke is drawn (both in the browser), and opens on the map, Generate and
    the Check-up."""
    url, page = served
    model = IMPORTED.removesuffix(".pt")
    page.goto(f"{url}/sliders?model={model}")
    settle(page)
    root = ".vae-live.vae-live-sliders"
    _first_frame(page, root)
    changes = _drag(page, root, page.locator(f"{root} input[data-dim]").first, ACROSS)
    assert changes >= 5, f"the imported model's image changed {changes} times in 10 moves"

    _, pad = _cleared_pad(page, f"{url}/how-it-works?model={model}")
    before = _reconstruction(page)
    _stroke(page, pad, [(0.3 + 0.04 * i, 0.3 + 0.05 * i) for i in range(10)])
    page.wait_for_timeout(500)
    assert _reconstruction(page) != before
    for name in ("", "generate", "checkup"):
        page.goto(f"{url}/{name}?model={model}")
        settle(page)
        assert page.locator('[data-testid="stMainBlockContainer"] h2').first.inner_text().strip() == PAGES[name]
        sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
        assert exceptions(page) == [] and "z=6 · β=1 · test nELBO" in sidebar and "imported" in sidebar
    assert "Test nELBO" in page.locator('[data-testid="stMain"]').inner_text()


RAW_FILE_LIST = {"app", "map", "beta study"}  # Streamlit's own navigation from the file names in pages/
# the pages opened as the first request of a fresh server: the default page, a live decoder's and the
# Train page's (every other page takes the same way there: the static test below holds them to it)
FRESH_SERVER_PAGES = ("", "sliders", "train")


def test_every_page_begins_with_the_routers_header_before_its_imports():
    """What makes a deep link on a fresh server show the app's navigation (ui/routing.page_header): it is
    the first statement of every page, after the docstring, before any other import."""
    import ast

    for name in PAGES:
        path = ROOT / "pages" / f"{name or 'map'}.py"
        body = [node for node in ast.parse(path.read_text()).body
                if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))]
        first, call = body[0], body[1]
        assert isinstance(first, ast.ImportFrom) and first.module == "ui.routing", path.name
        assert [a.name for a in first.names] == ["page_header"], path.name
        assert isinstance(call, ast.Expr) and getattr(call.value.func, "id", None) == "page_header", path.name


@pytest.mark.parametrize("name", PAGES)
def test_every_page_renders_on_a_desktop(served, name):
    """Each page as a person opens it from the navigation: its heading, the sidebar's model picker, no
    exception, no Deploy button."""
    url, page = served
    page.goto(f"{url}/{name}")
    settle(page)
    heading = page.locator('[data-testid="stMainBlockContainer"] h2').first.inner_text()
    sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
    assert heading.strip() == PAGES[name] and "Model" in sidebar and exceptions(page) == []
    assert page.get_by_role("button", name="Deploy").count() == 0  # nobody deploys from this app


@pytest.mark.parametrize("name", FRESH_SERVER_PAGES)
def test_a_deep_link_on_a_fresh_server_shows_the_apps_navigation_and_the_page_at_once(folder, served, name, tmp_path):
    # a page opened as a bookmarked lesson link: the first request a new server sees. The app's own
    # navigation and the page's heading come first, before the sidebar's model picker (drawn once torch is
    # imported), Streamlit's raw list of files in pages/ never shows, and then the whole page renders with
    # no exception. (How soon: deep_link_heading_s, a benchmark.)
    _, page = served  # one browser per module: Playwright's sync API does not nest
    with streamlit_server(folder) as url:
        page.goto(f"{url}/{name}")
        t0, seen = time.monotonic(), []
        while time.monotonic() - t0 < 60.0:
            nav = [t.split("\n")[-1] for t in page.locator('[data-testid="stSidebarNav"] a').all_inner_texts()]
            heading = page.locator('[data-testid="stMainBlockContainer"] h2').all_inner_texts()
            picker = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').count()
            seen.append((round(time.monotonic() - t0, 2), nav, heading, picker))
            assert not RAW_FILE_LIST & set(nav), seen[-1]
            if nav == list(PAGES.values()) and heading[:1] == [PAGES[name]]:
                break
            page.wait_for_timeout(50)
        else:
            page.screenshot(path=str(tmp_path / f"deep-link-{name or 'root'}.png"))
            pytest.fail(f"after 60 s: {seen[-1]} (screenshot in {tmp_path})")
        assert seen[-1][3] == 0, seen  # the heading was there before the page's slow imports were done
        settle(page)  # and then the whole page renders: its heading, the sidebar, no exception
        heading = page.locator('[data-testid="stMainBlockContainer"] h2').first.inner_text()
        sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
        assert heading.strip() == PAGES[name] and "Model" in sidebar and exceptions(page) == []


def test_a_link_naming_a_model_opens_it_and_a_reload_keeps_it(folder, served, tmp_path):
    _, page = served
    shutil.copyfile(folder / "smoke.pt", tmp_path / "smoke.pt")
    shutil.copyfile(folder / "smoke.pt", tmp_path / "zz-other.pt")  # listed second: not the one opened by default
    with streamlit_server(tmp_path) as url:
        page.goto(f"{url}/sliders?model=zz-other")  # a fresh server's first request, as a shared link is
        settle(page)
        assert page.url.endswith("/sliders?model=zz-other") and exceptions(page) == []
        page.locator('[data-testid="stSidebarNav"] a', has_text="Generate").click()
        settle(page)
        page.reload()
        settle(page)
        assert page.url.endswith("/generate?model=zz-other")  # had the picker fallen back, it would say smoke


def test_map_pan_drags_the_map_and_counts_its_frames(served):
    """benchmarks.map_pan raises if the drag did not move the map's axes; its figures are frames seen."""
    from benchmarks.map_pan import run

    (only,) = run((500,), seconds=1.0, page=served[1])["maps"]
    assert only["points"] == 500 and only["mouse_moves"] > 5
    assert only["pan_fps"] > 0 and 0 < only["frame_interval_ms_p50"] <= only["frame_interval_ms_p95"]


def test_a_copied_address_reopens_each_pages_view(served):
    url, page = served
    # Generate: change the seed, then open the address the page wrote in a fresh load
    page.goto(f"{url}/generate?t=0.5")
    settle(page)
    seed = page.get_by_label("Seed")
    seed.fill("17")
    seed.press("Enter")
    page.wait_for_function("() => new URL(location.href).searchParams.get('seed') === '17'", timeout=30_000)
    link = page.url
    page.goto("about:blank")
    page.goto(link)
    settle(page)
    assert page.get_by_label("Seed").input_value() == "17"
    temperature = page.locator(".vae-live-samples input[type=range]").first
    temperature.wait_for(timeout=60_000)
    assert float(temperature.input_value()) == 0.5 and "t=0.5" in page.url
    # the other pages: each address's view, and a bad value is one line, not an error page
    views = {
        "anomalies?threshold=90&score=recon": ("Threshold (percentile of test scores)", "90.00"),
        "interpolate?steps=7&path=linear": ("Steps", "7"),
    }
    for address, (label, value) in views.items():
        page.goto(f"{url}/{address}")
        settle(page)
        slider = page.locator('[data-testid="stSlider"]', has_text=label).locator("input[type=range]").first
        assert float(slider.get_attribute("value")) == float(value), address
        assert exceptions(page) == []
    page.goto(f"{url}/sliders?z=0.5,-1.25,2,0")
    settle(page)
    pad = ".vae-live.vae-live-sliders"
    page.locator(f"{pad} input[data-dim]").first.wait_for(timeout=60_000)
    inputs = page.locator(f"{pad} input[data-dim]").all()
    values = {int(e.get_attribute("data-dim")): float(e.input_value()) for e in inputs}
    assert values == {0: 0.5, 1: -1.25, 2: 2.0, 3: 0.0}
    page.goto(f"{url}/?split=nowhere&view=Decoded%20grid")
    settle(page)
    assert page.get_by_text("Ignored ?split=nowhere in the address").count() == 1
    # the map's projection may still be computing when the script first looks idle (UMAP compiles)
    page.get_by_text("Grid cells per side").first.wait_for(timeout=120_000)
    assert page.get_by_text("Grid cells per side").count() == 1 and exceptions(page) == []


def test_map_hover_shows_images_and_times_them(served):
    """benchmarks.map_hover raises when no image is shown; its figures are delays the page measured."""
    from benchmarks.map_hover import run

    (only,) = run((500,), moves=20, page=served[1])["maps"]
    assert only["points"] == 500 and only["images_shown"] > 5 and only["sprite_mb"] > 0
    assert 0 < only["hover_ms_p50"] <= only["hover_ms_p95"]


# --- How it works (ui/explainer.js): the five steps follow the pen


def _explained(page, timeout_s: float = 60):
    root = page.locator(".vae-live-explain").first
    root.wait_for(timeout=timeout_s * 1000)
    page.wait_for_function("r => Number(r.dataset.frames) > 0", arg=root.element_handle(), timeout=timeout_s * 1000)
    return root


def _reconstruction(page) -> str:
    return page.locator('.vae-live-explain canvas[aria-label^="the reconstruction"]').evaluate("c => c.toDataURL()")


def _cleared_pad(page, address: str):
    """How it works at `address`, its drawing pad in view and cleared (Clear reports the blank input, as a
    finished stroke would): the component's root and the pad."""
    page.goto(address)
    settle(page)
    root = _explained(page)
    pad = page.locator('canvas[aria-label="Draw here"]')
    pad.scroll_into_view_if_needed()
    page.get_by_role("button", name="Clear").click()
    return root, pad


def test_how_it_works_follows_the_pen_resamples_and_reweights_by_beta(served):
    url, page = served
    root, pad = _cleared_pad(page, f"{url}/how-it-works")
    cleared = root.get_attribute("data-reported")
    box = pad.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
    page.mouse.down()
    pictures = [_reconstruction(page)]
    for i in range(1, 11):  # a stroke down and across, the button held
        x, y = box["x"] + box["width"] * (0.3 + 0.04 * i), box["y"] + box["height"] * (0.3 + 0.05 * i)
        page.mouse.move(x, y, steps=2)
        page.wait_for_timeout(120)
        pictures.append(_reconstruction(page))
    assert root.get_attribute("data-reported") == cleared, "the component reported before the pen was lifted"
    page.mouse.up()
    changes = sum(a != b for a, b in zip(pictures, pictures[1:], strict=False))
    assert changes >= 4, f"the reconstruction changed {changes} times in 10 moves with the pen down"
    page.wait_for_function("([r, c]) => r.dataset.reported !== c", arg=[root.element_handle(), cleared], timeout=10_000)
    drawn = json.loads(root.get_attribute("data-reported"))
    assert len(drawn) == 28 * 28 and max(drawn) > 0.5  # the stroke, at the model's size

    z, picture = root.get_attribute("data-z"), _reconstruction(page)
    page.get_by_role("button", name="Resample ε").click()
    page.wait_for_function("([r, z]) => r.dataset.z !== z", arg=[root.element_handle(), z], timeout=10_000)
    assert _reconstruction(page) != picture

    before = json.loads(root.get_attribute("data-loss"))
    beta = page.get_by_role("slider", name="β")
    beta.focus()
    for _ in range(10):
        page.keyboard.press("ArrowRight")  # +0.1 each
    after = json.loads(root.get_attribute("data-loss"))
    assert after["beta"] == pytest.approx(before["beta"] + 1.0)
    assert after["recon"] == before["recon"] and after["total"] == pytest.approx(after["recon"] + after["beta"]
                                                                                 * after["kl"], abs=1e-2)
    assert exceptions(page) == []


def _stroke(page, pad, points) -> None:
    """One stroke on the drawing pad with the button held, through `points` (fractions of its box)."""
    box = pad.bounding_box()
    at = lambda fx, fy: (box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
    page.mouse.move(*at(*points[0]))
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*at(*point), steps=3)
        page.wait_for_timeout(40)
    page.mouse.up()


def test_a_lesson_link_reproduces_the_drawing_epsilon_and_loss_in_another_browser(served):
    """Issue 33: the sender draws, resamples ε, sets β and ticks nothing else; the address then holds the
    drawing (`draw`), ε's seed (`seed`) and β, and a fresh browser opening it shows the same loss."""
    url, page = served
    root, pad = _cleared_pad(page, f"{url}/how-it-works?input=5")
    _stroke(page, pad, [(0.35, 0.25), (0.55, 0.3), (0.5, 0.5), (0.45, 0.75)])
    page.wait_for_function("() => new URL(location.href).searchParams.has('draw')", timeout=30_000)
    z = root.get_attribute("data-z")
    page.get_by_role("button", name="Resample ε").click()
    page.wait_for_function("([r, z]) => r.dataset.z !== z", arg=[root.element_handle(), z], timeout=10_000)
    seed = root.get_attribute("data-seed")
    page.wait_for_function("s => new URL(location.href).searchParams.get('seed') === s", arg=seed, timeout=30_000)
    beta = page.get_by_role("slider", name="β")
    beta.focus()
    for _ in range(7):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("() => new URL(location.href).searchParams.has('beta')", timeout=30_000)
    settle(page)
    sent = json.loads(root.get_attribute("data-loss"))
    link = page.url
    assert f"seed={seed}" in link and "input=5" in link
    context = page.context.browser.new_context(viewport={"width": 1400, "height": 1000})
    try:  # another browser context: no cookies or storage shared, a new session that knows only the address
        other = context.new_page()
        other.goto(link)
        settle(other)
        theirs = _explained(other)
        other.wait_for_function("r => r.dataset.loss", arg=theirs.element_handle(), timeout=60_000)
        got = json.loads(theirs.get_attribute("data-loss"))
        assert got["beta"] == sent["beta"]
        for term in ("recon", "kl", "total"):
            assert abs(got[term] - sent[term]) <= 0.01, (term, got, sent)
        assert json.loads(theirs.get_attribute("data-z")) == pytest.approx(json.loads(root.get_attribute("data-z")),
                                                                          abs=1e-3)
        assert exceptions(other) == []
    finally:
        context.close()


def test_presenter_mode_fills_a_projectors_screen_at_every_step(served, tmp_path):
    """Issue 33: at 1920 × 1080 each of the six presenter steps uses the screen: the step spans most of
    its width, its text is >= 24 px, its picture is large, and the bar says which step of six it is
    (each step's screenshot is kept in the test's folder, for a person to look at)."""
    url, page = served
    page.set_viewport_size({"width": 1920, "height": 1080})
    try:
        page.goto(f"{url}/how-it-works?present=1&step=1")
        settle(page)
        root = _explained(page)
        for step in range(1, 7):
            if step > 1:
                page.locator("body").press("ArrowRight")
                settle(page)
            section = root.locator(f'section.vae-ex-step[data-step="{step}"]')
            assert section.is_visible() and root.locator(".vae-ex-where").inner_text() == f"Step {step} of 6"
            box = section.bounding_box()
            assert box["width"] >= 0.6 * 1920, f"step {step} spans {box['width']:.0f} px"
            text = float(section.locator(".vae-ex-text").evaluate("e => parseFloat(getComputedStyle(e).fontSize)"))
            assert text >= 24, f"step {step}'s text is {text} px"
            if step < 6:
                pictures = [b["width"] for b in (e.bounding_box() for e in section.locator("canvas").all()) if b]
                assert pictures and max(pictures) >= 400, f"step {step}'s largest picture is {max(pictures or [0])} px"
            else:  # the page's own pictures, under the component: the two models' samples and lines, drawn
                # where the shipped autoencoder is in the library (this test's folder has only its own model)
                sizes = [b["width"] for b in (e.bounding_box() for e in page.locator(
                    '[data-testid="stImage"] img').all()) if b]
                shown = len([w for w in sizes if w >= 150]) >= 16
                assert shown or page.get_by_text("one of them is not in the library").count() == 1, sizes
            page.screenshot(path=str(tmp_path / f"presenter-step-{step}.png"))
        assert exceptions(page) == []
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})


def test_how_it_works_presenter_mode_steps_with_the_arrow_keys_and_the_address_keeps_it(served):
    url, page = served
    page.goto(f"{url}/how-it-works?present=1&step=2&beta=2.5&input=3")
    settle(page)
    root = _explained(page)
    shown = lambda: [s.get_attribute("data-step") for s in root.locator("section.vae-ex-step").all() if s.is_visible()]
    assert shown() == ["2"]
    assert json.loads(root.get_attribute("data-loss"))["beta"] == 2.5
    page.locator("body").press("ArrowRight")
    assert shown() == ["3"]
    settle(page)
    assert "step=3" in page.url and "present=1" in page.url and "input=3" in page.url
    page.reload()
    settle(page)
    root = _explained(page)
    assert shown() == ["3"] and json.loads(root.get_attribute("data-loss"))["beta"] == 2.5
