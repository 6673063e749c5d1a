// The live decoder: a Streamlit v2 component that runs a VAE decoder in the browser
// (onnxruntime-web, WebAssembly) so a slider, a scrubber or the pointer repaints at display rate
// with no server round trip. Python hears the final z (or t, or point) when a gesture ends.
//
// data (from ui/live_decoder.py):
//   key      the component's key in Python (a marker map follows a pad by it)
//   base     URL of the app's static folder ("/app/static/"), model: URL of the decoder's .onnx
//   shape    [C, H, W]; display: canvas side in CSS pixels; version: bumps when Python sets the value
//   mode     "sliders": dims [{index, label, note}], z, limit, step, visible; directions [{label, note,
//                       vector}] (named attribute sliders: each moves z along its vector), directionLimit
//            "path":    a, b (codes), method ("slerp" | "linear"), t
//            "plane":   origin, du, dv, duv (z = origin + u·du + v·dv + u·v·duv), extent
//                       [u0, u1, v0, v1], points [[u, v, colour], …], palette, legend, point, labels
//            "traversal": a grid that follows a pad's z with a batched decoder: follows, z, dims (one
//                       row each, swept over [-span, span] in `steps`), steps, span, tile, poster, rest
//            "samples": prior samples at temperature t: eps (n codes of N(0, I)), t, limit, step,
//                       per_row, tile, rest, poster; the grid follows a temperature range input
//            "marker":  a map that follows a pad's z with no decoder of its own: follows (the pad's
//                       key), z, offset, matrix (map = offset + matrix · z), extent, points, palette, title
//            "hover":   the image of a plotly chart's point under the pointer: chart (its key), n, images and
//                       reconstructions (sprite sheets {url, cols, side}), labels, classes

const ORT_DIR = "onnxruntime-web/";
const shared = (window.__vaeLiveDecoder ||= { ort: null, sessions: new Map(), stats: {}, lastZ: {} });

// a pad announces every z it decodes, so a map of the same page can follow a drag with no round trip
function announce(key, z) {
  shared.lastZ[key] = z.slice();
  window.dispatchEvent(new CustomEvent("vae-live-z", { detail: { key, z: shared.lastZ[key] } }));
}

// The whole file, asked for as the byte range 0- : Streamlit gzips an app's static files at level 9 on
// every request (14 MB of .wasm: 0.3 s of the server's CPU idle, over a second while it draws a page),
// and a partial (206) answer is sent as it is. A server that ignores the range answers 200: also fine.
async function whole(url, what) {
  const response = await fetch(url, { headers: { Range: "bytes=0-" } });
  if (!response.ok) throw new Error(`${what} answered HTTP ${response.status}`);
  return response.arrayBuffer();
}

function runtime(base) {
  if (typeof WebAssembly !== "object") {
    return Promise.reject(new Error("this browser has WebAssembly turned off"));
  }
  if (!shared.ort) {
    const at = (name) => new URL(base + ORT_DIR + name, window.location.href).href;
    // the .wasm (14 MB) downloads beside the JavaScript and the model, not after them as onnxruntime
    // would fetch it (at the first session): on a server busy drawing the first page it is the longest wait
    const binary = whole(at("ort-wasm-simd-threaded.wasm"), "the WebAssembly runtime");
    shared.ort = Promise.all([import(at("ort.wasm.bundle.min.mjs")), binary]).then(([ort, wasm]) => {
      ort.env.wasm.wasmBinary = wasm; // the bundle carries its own JavaScript glue: only the .wasm is needed
      ort.env.wasm.numThreads = 1; // no cross-origin isolation here; one thread is plenty
      performance.mark("vae-live:runtime-loaded");
      return ort;
    });
  }
  return shared.ort;
}

async function modelBytes(url) {
  return new Uint8Array(await whole(url, "the decoder file"));
}

function session(base, url) {
  if (!shared.sessions.has(url)) {
    // the model downloads while the runtime loads and compiles its WebAssembly
    const made = Promise.all([runtime(base), modelBytes(url)]).then(async ([ort, bytes]) => {
      performance.mark("vae-live:model-fetched");
      const run = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
      performance.mark("vae-live:session-ready"); // the WebAssembly is compiled with the first session
      return { ort, run };
    });
    made.catch(() => shared.sessions.delete(url)); // let a later mount try again
    shared.sessions.set(url, made);
  }
  return shared.sessions.get(url);
}

// --- latent paths, the same formulas as vae_core.latent (lerp, slerp, the bilinear corner grid)

function lerp(a, b, t) {
  return a.map((v, i) => (1 - t) * v + t * b[i]);
}

function norm(a) {
  return Math.sqrt(a.reduce((s, v) => s + v * v, 0));
}

function slerp(a, b, t) {
  const na = norm(a), nb = norm(b);
  if (na < 1e-8 || nb < 1e-8) return lerp(a, b, t);
  const cos = Math.min(1, Math.max(-1, a.reduce((s, v, i) => s + (v / na) * (b[i] / nb), 0)));
  const omega = Math.acos(cos);
  if (omega < 1e-4) return lerp(a, b, t);
  const wa = Math.sin((1 - t) * omega) / Math.sin(omega), wb = Math.sin(t * omega) / Math.sin(omega);
  const len = (1 - t) * na + t * nb;
  return a.map((v, i) => (wa * (v / na) + wb * (b[i] / nb)) * len);
}

function planeZ(d, u, v) {
  return d.origin.map((o, i) => o + u * d.du[i] + v * d.dv[i] + u * v * d.duv[i]);
}

// --- drawing

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

// (C·H·W floats in [0, 1], channel-major, from `start` in `values`) → a W×H picture drawn into the
// rectangle (x, y, w, h) of a 2-D context, nearest neighbour so small images stay crisp
function blitter(shape) {
  const [C, H, W] = shape;
  const small = new OffscreenCanvas(W, H);
  const sctx = small.getContext("2d");
  const pixels = sctx.createImageData(W, H);
  return (ctx, values, start, x, y, w, h) => {
    const px = pixels.data, plane = H * W;
    for (let p = 0; p < plane; p++) {
      for (let c = 0; c < 3; c++) px[4 * p + c] = 255 * values[start + (C === 1 ? 0 : c) * plane + p];
      px[4 * p + 3] = 255;
    }
    sctx.putImageData(pixels, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(small, x, y, w, h);
  };
}

function painter(canvas, shape) {
  const blit = blitter(shape);
  const ctx = canvas.getContext("2d");
  return (values) => blit(ctx, values, 0, 0, 0, canvas.width, canvas.height);
}

function paintPoster(canvas, url, stats, isLive) {
  // the server's decoding of the starting value, shown until the first live frame replaces it
  const picture = new Image();
  picture.onload = () => {
    if (isLive()) return;
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(picture, 0, 0, canvas.width, canvas.height);
    stats.posterAt ??= performance.now(); // page clock, for the benchmark
  };
  picture.src = url;
}

// latest value wins, one job at a time: `work(value)` (async) may return ms to rest before the next
function latestWins(work) {
  let wanted = null, busy = false;
  async function pump() {
    if (busy || wanted === null) return;
    busy = true;
    const value = wanted;
    wanted = null;
    let rest = 0;
    try {
      rest = (await work(value)) || 0;
    } finally {
      const next = () => { busy = false; pump(); };
      if (rest > 0) setTimeout(next, rest);
      else next(); // no timer hop on the drag's hot path
    }
  }
  return (value) => { wanted = value; pump(); };
}

// a map or a grid that follows the pad keyed data.follows: `onZ(z)` now (the pad's latest z, unless it
// was another model's, else data.z) and on every z the pad announces, until the root is replaced
function followPad(root, data, onZ) {
  const last = shared.lastZ[data.follows];
  onZ(last && last.length === data.z.length ? last : data.z);
  const stop = new AbortController();
  window.addEventListener("vae-live-z", (e) => { if (e.detail.key === data.follows) onZ(e.detail.z); },
    { signal: stop.signal });
  return stop;
}

// --- one decoder per mounted component: latest z wins, one inference at a time

function liveDecoder(root, data, onStatus) {
  const canvas = root.querySelector("canvas.vae-live-image");
  const paint = painter(canvas, data.shape);
  const stats = (shared.stats[root.dataset.key] ||= { frames: 0, latencies: [], decodeMs: [] });
  stats.mountedAt ??= performance.now(); // page clock, for the benchmark
  if (data.poster) paintPoster(canvas, data.poster, stats, () => canvas.dataset.frames !== "0");
  const ready = session(data.base, data.model);
  ready.catch((e) => onStatus(null, e));
  const submit = latestWins(async ({ z, at }) => {
    try {
      const { ort, run } = await ready;
      const t0 = performance.now();
      const out = await run.run({ z: new ort.Tensor("float32", Float32Array.from(z), [1, z.length]) });
      const t1 = performance.now();
      paint(out.image.data);
      stats.frames += 1;
      stats.firstFrameAt ??= performance.now(); // page clock: the benchmark compares it with first render
      stats.decodeMs.push(t1 - t0);
      stats.latencies.push(performance.now() - at);
      if (stats.latencies.length > 2000) stats.latencies.splice(0, 1000), stats.decodeMs.splice(0, 1000);
      canvas.dataset.frames = String(stats.frames);
      onStatus(`decoded in your browser · ${(t1 - t0).toFixed(1)} ms`);
    } catch (e) {
      onStatus(null, e);
    }
  });
  return (z, at = performance.now()) => submit({ z, at });
}

// --- the three ways to move through z

function fmt(v) {
  return (v >= 0 ? " " : "") + v.toFixed(2);
}

// a group of sliders as one stop of the Tab key (the ARIA "roving tabindex"): Tab enters the group at its
// first slider (or the one used last) and leaves it; ↑ and ↓ move between its sliders, ← and → move one
function tabGroup(box, label) {
  box.setAttribute("role", "group");
  box.setAttribute("aria-label", `${label} (↑ ↓ move between them, ← → change one)`);
  const inputs = () => [...box.querySelectorAll("input[type=range]")];
  const settle = (current) => inputs().forEach((i) => { i.tabIndex = i === current ? 0 : -1; });
  box.addEventListener("keydown", (e) => {
    if (e.key !== "ArrowUp" && e.key !== "ArrowDown") return;
    const all = inputs().filter((i) => i.offsetParent !== null), at = all.indexOf(e.target);
    if (at < 0) return;
    const next = all[at + (e.key === "ArrowDown" ? 1 : -1)];
    e.preventDefault();  // not the range's own step: ↑ ↓ walk the group
    if (next) { settle(next); next.focus(); }
  });
  box.addEventListener("focusin", (e) => { if (e.target.matches("input[type=range]")) settle(e.target); });
  settle(inputs()[0]);
  return box;
}

// named attribute directions (data.directions: [{label, note, vector}]): each range input moves z along its
// vector by how far it moved (t · vector, t in [-directionLimit, directionLimit]); the raw sliders follow
function buildDirections(z, data, rows, decode, report) {
  const box = el("div", { class: "vae-live-directions" });
  const limit = data.directionLimit || 2;
  for (const dir of data.directions || []) {
    let t = 0;
    const input = el("input", { type: "range", min: -limit, max: limit, step: 0.01, value: 0, "aria-label": dir.label,
      "data-direction": dir.label });
    const value = el("span", { class: "vae-live-value", text: fmt(0) });
    input.addEventListener("input", (e) => {
      const next = Number(input.value);
      dir.vector.forEach((v, d) => { z[d] += (next - t) * v; });
      t = next;
      value.textContent = fmt(t);
      for (const [d, row] of rows) {
        row.input.value = z[d];
        row.value.textContent = fmt(z[d]);
      }
      decode(z, e.timeStamp || performance.now());
      announce(data.key, z);
    });
    input.addEventListener("change", () => report("z", z.slice()));
    const label = el("span", { class: "vae-live-label", text: dir.label }, el("small", { text: dir.note || "" }));
    box.append(el("label", { class: "vae-live-row" }, label, input, value));
  }
  return tabGroup(box, "Named directions");
}

function buildSliders(root, data, decode, report) {
  const z = data.z.slice();
  const rows = new Map(); // dimension -> its range input and value label, for the directions to move
  const list = el("div", { class: "vae-live-sliders" });
  if ((data.directions || []).length) list.append(buildDirections(z, data, rows, decode, report));
  const more = el("details", { class: "vae-live-more" });
  const hidden = data.dims.length - data.visible;
  if (hidden > 0) more.append(el("summary", { text: `${hidden} more dimensions (less KL)` }));
  data.dims.forEach((dim, rank) => {
    const input = el("input", {
      type: "range", min: -data.limit, max: data.limit, step: data.step, value: z[dim.index],
      "aria-label": dim.label, "data-dim": dim.index,
    });
    const value = el("span", { class: "vae-live-value", text: fmt(z[dim.index]) });
    rows.set(dim.index, { input, value });
    input.addEventListener("input", (e) => {
      z[dim.index] = Number(input.value);
      value.textContent = fmt(z[dim.index]);
      decode(z, e.timeStamp || performance.now());
      announce(data.key, z);
    });
    input.addEventListener("change", () => report("z", z.slice()));
    const label = el("span", { class: "vae-live-label", text: dim.label }, el("small", { text: dim.note || "" }));
    const row = el("label", { class: "vae-live-row" }, label, input, value);
    (rank < data.visible ? list : more).append(row);
  });
  if (hidden > 0) list.append(more);
  const dims = el("div", { class: "vae-live-dims" }, ...[...list.children].filter((c) => c.matches(".vae-live-row, .vae-live-more")));
  list.append(tabGroup(dims, "Dimensions of z"));
  decode(z);
  announce(data.key, z);
  return list;
}

function buildPath(root, data, decode, report) {
  const along = data.method === "slerp" ? slerp : lerp;
  const input = el("input", {
    type: "range", min: 0, max: 1, step: 0.001, value: data.t, "aria-label": "position along the path (0 = A, 1 = B)",
  });
  const value = el("span", { class: "vae-live-value", text: `t = ${Number(data.t).toFixed(3)}` });
  input.addEventListener("input", (e) => {
    value.textContent = `t = ${Number(input.value).toFixed(3)}`;
    decode(along(data.a, data.b, Number(input.value)), e.timeStamp || performance.now());
  });
  input.addEventListener("change", () => report("t", Number(input.value)));
  decode(along(data.a, data.b, Number(data.t)));
  return el("label", { class: "vae-live-row vae-live-scrub" }, el("span", { class: "vae-live-label", text: "A" }), input,
    el("span", { class: "vae-live-label", text: "B" }), value);
}

// a map's points on a canvas, drawn once: (u, v) in extent [u0, u1, v0, v1] to canvas pixels
function mapBackdrop(width, height, data) {
  const [u0, u1, v0, v1] = data.extent;
  const toPx = (u, v) => [((u - u0) / (u1 - u0)) * width, (1 - (v - v0) / (v1 - v0)) * height];
  const backdrop = new OffscreenCanvas(width, height);
  const ctx = backdrop.getContext("2d");
  ctx.fillStyle = "#fafafa";
  ctx.fillRect(0, 0, width, height);
  for (const [u, v, c] of data.points) {
    const [x, y] = toPx(u, v);
    ctx.fillStyle = data.palette[c % data.palette.length] || "#1f77b4";
    ctx.fillRect(x - 1.5, y - 1.5, 3, 3);
  }
  return { backdrop, toPx };
}

function buildMarker(root, data) {
  // no decoder here: the map's points and a star at offset + matrix · z, moved by the pad's events
  const width = data.width || 300, height = data.height || 220;
  const canvas = el("canvas", { class: "vae-live-map", width, height, role: "img",
    "aria-label": data.title || "z on the map" });
  const { backdrop, toPx } = mapBackdrop(width, height, data);
  const ctx = canvas.getContext("2d");
  const place = (z) => {
    const [u, v] = data.matrix.map((row, k) => row.reduce((s, w, i) => s + w * z[i], data.offset[k]));
    const [x, y] = toPx(u, v);
    ctx.drawImage(backdrop, 0, 0);
    ctx.beginPath();
    for (let k = 0; k < 10; k++) { // a five-pointed star
      const r = k % 2 ? 4 : 10, a = -Math.PI / 2 + (k * Math.PI) / 5;
      ctx.lineTo(Math.min(Math.max(x, 0), width) + r * Math.cos(a), Math.min(Math.max(y, 0), height) + r * Math.sin(a));
    }
    ctx.closePath();
    ctx.fillStyle = "#000";
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = 1.5;
    ctx.fill();
    ctx.stroke();
    canvas.dataset.at = JSON.stringify([Number(u.toFixed(4)), Number(v.toFixed(4))]);
  };
  const stop = followPad(root, data, place);
  root.vaeStop = () => stop.abort();
  root.append(el("figure", { class: "vae-live-mapbox" }, canvas,
    el("figcaption", { text: data.title || "z on the map" }), legendOf(data)));
}

function buildPlane(root, data, decode, report) {
  const side = data.pad || 360;
  const pad = el("canvas", { class: "vae-live-pad", width: side, height: side, tabindex: 0,
    "aria-label": "latent plane: move the pointer to decode the point under it" });
  const ctx = pad.getContext("2d");
  const [u0, u1, v0, v1] = data.extent;
  const toUV = (x, y) => [u0 + (x / side) * (u1 - u0), v0 + (1 - y / side) * (v1 - v0)];
  // the points and labels are drawn once; a pointer move copies them and draws the marker
  const { backdrop, toPx } = mapBackdrop(side, side, data);
  if (data.labels) {
    const bctx = backdrop.getContext("2d");
    bctx.fillStyle = "#333";
    bctx.font = "12px sans-serif";
    for (const [u, v, text] of data.labels) {
      const [x, y] = toPx(u, v);
      bctx.fillText(text, Math.min(Math.max(x + 4, 2), side - 24), Math.min(Math.max(y - 4, 12), side - 2));
    }
  }
  let marker = data.point;
  const value = el("span", { class: "vae-live-value" });
  function draw() {
    ctx.drawImage(backdrop, 0, 0);
    const [mx, my] = toPx(marker[0], marker[1]);
    ctx.strokeStyle = "#000";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.arc(mx, my, 7, 0, 2 * Math.PI);
    ctx.moveTo(mx - 11, my); ctx.lineTo(mx + 11, my); ctx.moveTo(mx, my - 11); ctx.lineTo(mx, my + 11);
    ctx.stroke();
    value.textContent = `(${marker[0].toFixed(2)}, ${marker[1].toFixed(2)})`;
  }
  function at(e) {
    const r = pad.getBoundingClientRect();
    const x = Math.min(Math.max(e.clientX - r.left, 0), r.width), y = Math.min(Math.max(e.clientY - r.top, 0), r.height);
    return toUV((x / r.width) * side, (y / r.height) * side);
  }
  function move(e, uv) {
    marker = uv;
    draw();
    decode(planeZ(data, uv[0], uv[1]), e.timeStamp || performance.now());
  }
  pad.addEventListener("pointermove", (e) => move(e, at(e)));
  pad.addEventListener("pointerdown", (e) => move(e, at(e)));
  pad.addEventListener("pointerup", () => report("point", marker.slice()));
  pad.addEventListener("keydown", (e) => {
    const step = 0.02, du = (u1 - u0) * step, dv = (v1 - v0) * step;
    const keys = { ArrowLeft: [-du, 0], ArrowRight: [du, 0], ArrowUp: [0, dv], ArrowDown: [0, -dv] };
    if (!keys[e.key]) return;
    e.preventDefault();
    move(e, [marker[0] + keys[e.key][0], marker[1] + keys[e.key][1]]);
    report("point", marker.slice());
  });
  draw();
  decode(planeZ(data, marker[0], marker[1]));
  return el("div", { class: "vae-live-planebox" }, pad, value, legendOf(data));
}

// a grid of rows × cols images decoded as one batched run of the decoder: `codesOf(value)` gives the
// rows·cols codes (row-major, D floats each) for a value; latest value wins, one run at a time, and
// after a run of t ms the grid rests data.rest · t ms, so it follows a drag at a fraction of one core
// on any machine. The canvas records the value it shows (data-<name>) and its runs (data-frames).
function batchGrid(root, data, { rows, cols, D, codesOf, name, label }) {
  const [C, H, W] = data.shape, tile = data.tile, gap = 2, size = C * H * W;
  const canvas = el("canvas", { class: "vae-live-grid", width: cols * (tile + gap) + gap,
    height: rows * (tile + gap) + gap, role: "img", "data-frames": "0", "aria-label": label });
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  const blit = blitter(data.shape);
  const stats = (shared.stats[root.dataset.key] ||= { frames: 0, decodeMs: [] });
  const status = el("div", { class: "vae-live-status", text: "loading the decoder…" });
  let stopped = false;
  const ready = session(data.base, data.model);
  const submit = latestWins(async (value) => {
    if (stopped) return 0;
    try {
      const { ort, run } = await ready;
      const t0 = performance.now();
      const out = await run.run({ z: new ort.Tensor("float32", codesOf(value), [rows * cols, D]) });
      const t1 = performance.now();
      for (let k = 0; k < rows * cols; k++) {
        const r = Math.floor(k / cols), c = k % cols;
        blit(ctx, out.image.data, k * size, gap + c * (tile + gap), gap + r * (tile + gap), tile, tile);
      }
      stats.frames += 1;
      stats.decodeMs.push(t1 - t0);
      if (stats.decodeMs.length > 2000) stats.decodeMs.splice(0, 1000);
      canvas.dataset.frames = String(stats.frames);
      const shown = typeof value === "number" ? Number(value.toFixed(4)) : Array.from(value, (v) => Number(v.toFixed(4)));
      canvas.dataset[name] = JSON.stringify(shown);
      status.textContent = `${rows * cols} images decoded in your browser · ${(t1 - t0).toFixed(0)} ms`;
      return data.rest * (t1 - t0);
    } catch (e) {
      status.textContent = `cannot decode in this browser: ${e.message || e}`;
      return 0;
    }
  });
  if (data.poster) paintPoster(canvas, data.poster, stats, () => canvas.dataset.frames !== "0");
  return { canvas, status, submit, stop: () => { stopped = true; } };
}

// one row per dimension in data.dims, that coordinate swept over [-span, span] in data.steps while the
// others keep the pad's z (vae_core.latent.traversal_grid), redone as the pad moves
function buildTraversal(root, data) {
  const D = data.z.length, steps = data.steps;
  const sweep = Array.from({ length: steps }, (_, s) => -data.span + (2 * data.span * s) / Math.max(1, steps - 1));
  const grid = batchGrid(root, data, {
    rows: data.dims.length, cols: steps, D, name: "z",
    label: "traversals: each row sweeps one dimension of z, decoded in your browser",
    codesOf: (z) => {
      const codes = new Float32Array(data.dims.length * steps * D);
      data.dims.forEach((dim, r) => sweep.forEach((v, s) => {
        const at = (r * steps + s) * D;
        codes.set(z, at);
        codes[at + dim] = v;
      }));
      return codes;
    },
  });
  grid.canvas.classList.add("vae-live-traversal");
  const stop = followPad(root, data, (z) => grid.submit(Float32Array.from(z)));
  root.vaeStop = () => { grid.stop(); stop.abort(); };
  root.append(el("figure", { class: "vae-live-figure vae-live-traversalbox" }, grid.canvas, grid.status));
}

// samples from the prior at temperature T: z = T · eps for fixed draws eps (vae_core.latent.prior_noise),
// the whole grid redone as the temperature is dragged; `report("t", T)` when the drag ends
function buildSamples(root, data, report) {
  const n = data.eps.length, D = n ? data.eps[0].length : 0, cols = Math.min(data.per_row, n);
  const eps = Float32Array.from(data.eps.flat());
  const grid = batchGrid(root, data, {
    rows: Math.ceil(n / cols), cols, D, name: "t",
    label: "samples from the prior at the chosen temperature, decoded in your browser",
    codesOf: (t) => eps.map((e) => t * e),
  });
  const input = el("input", { type: "range", min: 0, max: data.limit, step: data.step, value: data.t,
    "aria-label": "temperature T" });
  const value = el("span", { class: "vae-live-value", text: Number(data.t).toFixed(2) });
  input.addEventListener("input", () => {
    value.textContent = Number(input.value).toFixed(2);
    grid.submit(Number(input.value));
  });
  input.addEventListener("change", () => report("t", Number(input.value)));
  grid.submit(Number(data.t));
  root.vaeStop = grid.stop;
  const control = el("label", { class: "vae-live-row vae-live-temperature" },
    el("span", { class: "vae-live-label", text: "Temperature T" }), input, value);
  root.append(el("div", { class: "vae-live-samplesbox" }, control,
    el("figure", { class: "vae-live-figure vae-live-traversalbox" }, grid.canvas, grid.status)));
}

function legendOf(data) {
  const legend = el("div", { class: "vae-live-legend" });
  (data.legend || []).forEach((name, i) => {
    const swatch = el("i");
    swatch.style.background = data.palette[i % data.palette.length];
    legend.append(el("span", {}, swatch, name));
  });
  return legend;
}

const BUILDERS = { sliders: buildSliders, path: buildPath, plane: buildPlane };

// Streamlit's chart bundle, imported (fetched and run) once the browser is idle, so the first chart a
// session opens later does not wait for it: Streamlit's own import of the same URL then finds it loaded
function warm(urls) {
  const later = window.requestIdleCallback || ((fn) => setTimeout(fn, 500));
  for (const url of urls) {
    if (shared.warmed?.has(url)) continue;
    (shared.warmed ||= new Set()).add(url);
    // an absolute URL: this component's own module has no base to resolve "/static/..." against
    const absolute = new URL(url, window.location.href).href;
    later(() => import(absolute).then(() => performance.mark("vae-live:charts-warmed"), () => {}), { timeout: 3000 });
  }
}

// the sidebar's line: it starts the runtime and the chosen model's decoder as the app opens, so a
// page's pad, mounted seconds later, has its session ready (or nearly) and paints at once
function buildStatus(root, data, setStateValue) {
  const line = el("div", { class: "vae-live-state", text: "Decoder in your browser: loading…" });
  root.append(line);
  // a page that encodes in the browser (How it works): its encoder's session starts now too; the page's
  // component reports what goes wrong with it
  if (data.encoder) session(data.base, data.encoder).catch(() => {});
  session(data.base, data.model).then(
    () => {
      line.textContent = "Decoder in your browser: ready (WebAssembly)";
      root.dataset.ready = "1";
      warm(data.warm || []);
    },
    (e) => {
      line.textContent = `Decoder in your browser: unavailable (${e.message || e}); pages decode on the server`;
      setStateValue("failed", String(e.message || e).slice(0, 200));
    },
  );
}

// the image of the map point under the pointer, and its reconstruction, cut out of sprite sheets the
// browser fetched once (data.images, data.reconstructions: {url, cols, side}), beside the pointer on the
// next frame after it moves over the plotly chart keyed data.chart: no round trip. Each shown tile's delay from the
// pointer's event to the next frame is kept in shared.stats.hover (for the benchmark).
function buildHover(root, data) {
  const sheets = [data.images, data.reconstructions].filter(Boolean).map((sheet) => {
    const img = new Image();
    img.decoding = "async";
    img.src = new URL(data.base + sheet.url, window.location.href).href;
    return { ...sheet, img };
  });
  const size = data.display || 112;
  const canvases = sheets.map(() => el("canvas", { class: "vae-live-hover-image", width: size, height: size }));
  const caption = el("div", { class: "vae-live-hover-caption" });
  const tip = el("div", { class: "vae-live-hovertip" }, el("div", { class: "vae-live-hover-images" }, ...canvases), caption);
  tip.style.display = "none";
  root.append(tip);
  const stats = (shared.stats.hover ||= { shown: 0, latencies: [] });
  const show = (index, event) => {
    sheets.forEach((sheet, k) => {
      const ctx = canvases[k].getContext("2d");
      ctx.imageSmoothingEnabled = false;
      ctx.clearRect(0, 0, size, size);
      if (sheet.img.complete && sheet.img.naturalWidth) {
        const col = index % sheet.cols, row = Math.floor(index / sheet.cols);
        ctx.drawImage(sheet.img, col * sheet.side, row * sheet.side, sheet.side, sheet.side, 0, 0, size, size);
      }
    });
    const label = data.labels ? data.labels[index] : null;
    caption.textContent = `#${index}` + (label == null ? "" : ` · ${data.classes?.[label] ?? label}`) +
      (sheets.length > 1 ? " · image, reconstruction" : "");
    tip.style.display = "block";
    const x = event?.clientX ?? 0, y = event?.clientY ?? 0;
    tip.style.left = `${Math.max(4, Math.min(x + 18, window.innerWidth - tip.offsetWidth - 8))}px`;
    tip.style.top = `${Math.max(4, Math.min(y + 18, window.innerHeight - tip.offsetHeight - 8))}px`;
    tip.dataset.index = String(index);
    stats.shown += 1;
    tip.dataset.shown = String(stats.shown);
    if (event?.timeStamp) { // shown at the next frame: the delay a person sees
      requestAnimationFrame(() => {
        stats.latencies.push(performance.now() - event.timeStamp);
        if (stats.latencies.length > 5000) stats.latencies.splice(0, 2500);
      });
    }
  };
  const hide = () => { tip.style.display = "none"; };
  // the point nearest the pointer, within RADIUS pixels, among the chart's drawn traces: a scan of the
  // coordinates plotly holds (100,000 points: about a millisecond), once per frame, instead of waiting for
  // plotly's own hover event (throttled to one per 50 ms)
  const RADIUS = 12;
  const nearest = (gd, event) => {
    const xa = gd._fullLayout?.xaxis, ya = gd._fullLayout?.yaxis;
    if (!xa || !ya || xa.type !== "linear" || ya.type !== "linear") return null;
    const box = gd.getBoundingClientRect();
    const px = event.clientX - box.left - xa._offset, py = event.clientY - box.top - ya._offset;
    if (px < 0 || py < 0 || px > xa._length || py > ya._length) return null;
    const X = xa.p2l(px), Y = ya.p2l(py), mx = xa._m, my = ya._m;
    let best = RADIUS * RADIUS, found = null;
    for (const trace of gd._fullData) {
      if (trace.visible !== true || !trace.customdata || !trace.x) continue;
      const xs = trace.x, ys = trace.y, n = xs.length;
      for (let i = 0; i < n; i++) {
        const dx = (xs[i] - X) * mx, dy = (ys[i] - Y) * my, d = dx * dx + dy * dy;
        if (d < best) { best = d; found = [trace, i]; }
      }
    }
    if (!found) return null;
    const c = found[0].customdata[found[1]];
    const index = Number(Array.isArray(c) ? c[0] : c);
    return index >= 0 && index < data.n ? index : null;
  };
  let attached = null;
  const attach = () => { // the chart's div, again whenever Streamlit draws it anew
    const gd = document.querySelector(`.st-key-${data.chart} .js-plotly-plot`);
    if (!gd || gd === attached) return;
    attached = gd;
    let pending = null;
    gd.addEventListener("mousemove", (event) => {
      if (event.buttons) return hide(); // a drag: a lasso, a box, a pan
      const queued = pending;
      pending = event;
      if (queued) return; // a frame is already asked for: it takes the latest event
      requestAnimationFrame(() => {
        const e = pending;
        pending = null;
        const index = nearest(gd, e);
        if (index == null) hide();
        else show(index, e);
      });
    });
    gd.addEventListener("mouseleave", hide);
  };
  attach();
  const timer = setInterval(attach, 400);
  root.vaeStop = () => { clearInterval(timer); tip.remove(); };
}

export default function (component) {
  const { data, parentElement, setStateValue, key } = component;
  let root = parentElement.querySelector(".vae-live");
  const identity = `${data.mode}|${data.model}|${data.version}`;
  if (root && root.dataset.identity === identity) return; // same model and value: keep the live state
  root?.vaeStop?.();
  root?.remove();
  if (data.mode === "marker" || data.mode === "traversal" || data.mode === "hover") {
    root = el("div", { class: `vae-live vae-live-${data.mode}`, "data-key": key, "data-identity": identity });
    parentElement.append(root);
    return ({ marker: buildMarker, traversal: buildTraversal, hover: buildHover })[data.mode](root, data);
  }
  // a gesture's end: Python hears the value (the root keeps it too, for the browser tests). Each report
  // also sends again the latest value of every other name this component reported: Streamlit merges a
  // new value into the widget's state as the browser last had it, and a rerun's reply can hand that
  // state back older than a report sent meanwhile (a drawing, then at once a resampled ε, sent the lesson
  // link the drawing before last); so the component's own latest values are what the server ends with.
  const reporter = (root) => {
    const latest = new Map();
    return (name, value) => {
      root.dataset.reported = JSON.stringify(value);
      latest.delete(name);
      latest.forEach((v, other) => setStateValue(other, v));
      latest.set(name, value);
      setStateValue(name, value);
    };
  };
  if (data.mode === "samples") {
    root = el("div", { class: "vae-live vae-live-samples", "data-key": key, "data-identity": identity });
    parentElement.append(root);
    return buildSamples(root, data, reporter(root));
  }
  if (data.mode === "explain") { // ui/explainer.js, appended to this file
    root = el("div", { class: "vae-live vae-live-explain", "data-key": key, "data-identity": identity });
    parentElement.append(root);
    return buildExplain(root, data, reporter(root));
  }
  if (data.mode === "status") {
    root = el("div", { class: "vae-live vae-live-status-line", "data-key": key, "data-identity": identity });
    parentElement.append(root);
    return buildStatus(root, data, setStateValue);
  }
  root = el("div", { class: `vae-live vae-live-${data.mode}`, "data-key": key, "data-identity": identity });
  const image = el("canvas", { class: "vae-live-image", width: data.display, height: data.display,
    "data-frames": "0", role: "img", "aria-label": "decoder(z)" });
  const status = el("div", { class: "vae-live-status", text: "loading the decoder…" });
  const figure = el("figure", { class: "vae-live-figure" }, image, el("figcaption", { text: data.caption || "decoder(z)" }), status);
  let failed = false;
  const onStatus = (text, error) => {
    if (error && !failed) {
      failed = true;
      status.textContent = `cannot decode in this browser: ${error.message || error}`;
      setStateValue("failed", String(error.message || error).slice(0, 200));
    } else if (text) status.textContent = text;
  };
  const report = reporter(root);
  root.append(figure);
  parentElement.append(root);
  const decode = liveDecoder(root, data, onStatus);
  const controls = BUILDERS[data.mode](root, data, decode, report);
  root.append(el("div", { class: "vae-live-controls" }, controls));
}
