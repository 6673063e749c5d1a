// "How it works": the seed's five steps live on the chosen model, in the browser (appended to
// live_decoder.js, whose runtime, sessions, blitter, latestWins and el it uses).
//
// data (from ui/explainer.py): encoder (URL of the encoder's .onnx), model (the decoder's), shape [C, H, W],
// x (C·H·W floats in [0, 1]: the input to start from), eps (D floats: the ε of step 3), strip (k × D: the
// draws of the strip), beta, use_mu, kl_order (dimensions, most KL over the test set first: ties' order), likelihood {kind, name,
// log_sigma (one number or C·H·W), binarize}, draw ({side, pen, normalize}: the drawing canvas, or null
// for a model that is not grey), texts (one sentence per step), train_url, step (presenter mode: the step
// shown, 0 = all).
//
// Every change of the input (a pen move, Clear, a new image from the page) runs the encoder and one
// batched decoder run (z and the strip's draws); Resample and "use μ" run the decoder only; β only
// re-adds the loss. Python hears the input when a stroke ends ("x"), ε's seed when it is resampled ("seed"),
// β when its drag ends ("beta"), "use_mu", and the step ("step").

const LOG_2PI = Math.log(2 * Math.PI);

// mulberry32 (Tommy Ettinger's 32-bit generator): uniform floats in [0, 1) from a seed, the same sequence
// as vae_core.latent._mulberry32, so an address holding the seed gives the server this browser's ε
function mulberry32(seed) {
  let a = seed | 0;
  return () => {
    a = (a + 0x6D2B79F5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// rows × n draws of N(0, 1) from a seed (Box–Muller, pair by pair within a row): vae_core.latent.lesson_noise
function lessonNoise(seed, rows, n) {
  const rand = mulberry32(seed), out = [];
  for (let r = 0; r < rows; r++) {
    const row = new Array(n);
    for (let i = 0; i < n; i += 2) {
      const u = 1 - rand(), v = rand();
      const radius = Math.sqrt(-2 * Math.log(u));
      row[i] = radius * Math.cos(2 * Math.PI * v);
      if (i + 1 < n) row[i + 1] = radius * Math.sin(2 * Math.PI * v);
    }
    out.push(row);
  }
  return out;
}

// −log p(x|z) per pixel, nats, from the decoder's mean image p (vae_core.losses' likelihoods)
function reconMap(x, p, lik) {
  const out = new Float32Array(x.length);
  if (lik.kind === "gaussian") {
    const ls = lik.log_sigma;
    for (let i = 0; i < x.length; i++) {
      const s = typeof ls === "number" ? ls : ls[i];
      const d = (x[i] - p[i]) * Math.exp(-s);
      out[i] = 0.5 * d * d + s + 0.5 * LOG_2PI;
    }
    return out;
  }
  for (let i = 0; i < x.length; i++) {
    const q = Math.min(Math.max(p[i], 1e-7), 1 - 1e-7), t = lik.binarize ? (x[i] > 0.5 ? 1 : 0) : x[i];
    out[i] = -(t * Math.log(q) + (1 - t) * Math.log(1 - q));
  }
  return out;
}

function klPerDim(mu, logvar) {
  return Array.from(mu, (m, i) => 0.5 * (m * m + Math.exp(logvar[i]) - 1 - logvar[i]));
}

// black → red → yellow → white, t in [0, 1]
function heat(t) {
  const c = (v) => Math.round(255 * Math.min(1, Math.max(0, v)));
  return [c(3 * t), c(3 * t - 1), c(3 * t - 2)];
}

// --- the input: a drawing canvas, downsampled to the model's size as its data was made

function inkToInput(big, [C, H, W], normalize) {
  // big: a square canvas whose side is a whole multiple k of H (= W), white ink on black
  const k = big.width / W;
  let src = big;
  if (normalize === "mnist") src = mnistCentred(big, k);
  const pixels = src.getContext("2d").getImageData(0, 0, src.width, src.height).data;
  const x = new Float32Array(C * H * W);
  for (let r = 0; r < H; r++) for (let c = 0; c < W; c++) {
    let s = 0;
    for (let dy = 0; dy < k; dy++) for (let dx = 0; dx < k; dx++) s += pixels[4 * ((r * k + dy) * src.width + c * k + dx)];
    // 8-bit levels, as a page address keeps the drawing (vae_core.images.image_to_text)
    for (let ch = 0; ch < C; ch++) x[ch * H * W + r * W + c] = Math.round(s / (k * k)) / 255;
  }
  return x;
}

// MNIST's own preparation (LeCun et al.): the ink's box scaled to fit 20 × 20 of the 28 × 28, then moved so
// its centre of mass sits at the centre
function mnistCentred(big, k) {
  const side = big.width, d = big.getContext("2d").getImageData(0, 0, side, side).data;
  let x0 = side, y0 = side, x1 = -1, y1 = -1;
  for (let y = 0; y < side; y++) for (let x = 0; x < side; x++) {
    if (d[4 * (y * side + x)] > 20) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
  }
  const out = new OffscreenCanvas(side, side), ctx = out.getContext("2d");
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, side, side);
  if (x1 < 0) return out;
  const box = 20 * k, scale = box / Math.max(x1 - x0 + 1, y1 - y0 + 1);
  const w = (x1 - x0 + 1) * scale, h = (y1 - y0 + 1) * scale;
  const fit = new OffscreenCanvas(side, side), fctx = fit.getContext("2d");
  fctx.imageSmoothingQuality = "high";
  fctx.drawImage(big, x0, y0, x1 - x0 + 1, y1 - y0 + 1, 0, 0, w, h);
  const f = fctx.getImageData(0, 0, Math.ceil(w), Math.ceil(h)).data;
  let m = 0, mx = 0, my = 0;
  for (let y = 0; y < Math.ceil(h); y++) for (let x = 0; x < Math.ceil(w); x++) {
    const v = f[4 * (y * Math.ceil(w) + x)];
    m += v; mx += v * x; my += v * y;
  }
  ctx.drawImage(fit, 0, 0, w, h, Math.round(side / 2 - mx / m), Math.round(side / 2 - my / m), w, h);
  return out;
}

function drawingPad(data, onInput, onStroke) {
  const { side, pen } = data.draw, [C, H, W] = data.shape;
  const canvas = el("canvas", { class: "vae-ex-draw", width: side, height: side, "aria-label": "Draw here",
    role: "img", tabindex: 0 });
  const ctx = canvas.getContext("2d");
  const clear = () => { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, side, side); };
  clear();
  const start = new OffscreenCanvas(W, H), sctx = start.getContext("2d"), img = sctx.createImageData(W, H);
  data.x.slice(0, H * W).forEach((v, p) => img.data.set([255 * v, 255 * v, 255 * v, 255], 4 * p));
  sctx.putImageData(img, 0, 0);
  ctx.drawImage(start, 0, 0, side, side); // the input it starts from, to draw over or clear
  ctx.strokeStyle = "#fff";
  ctx.lineCap = ctx.lineJoin = "round";
  ctx.lineWidth = pen;
  let last = null;
  const at = (e) => {
    const r = canvas.getBoundingClientRect();
    return [((e.clientX - r.left) / r.width) * side, ((e.clientY - r.top) / r.height) * side];
  };
  canvas.addEventListener("pointerdown", (e) => {
    try { canvas.setPointerCapture(e.pointerId); } catch { /* a synthetic pointer (the benchmark's) has none */ }
    last = at(e);
    ctx.beginPath(); ctx.arc(last[0], last[1], pen / 2, 0, 2 * Math.PI); ctx.fillStyle = "#fff"; ctx.fill();
    onInput(e.timeStamp);
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!last) return;
    const p = at(e);
    ctx.beginPath(); ctx.moveTo(...last); ctx.lineTo(...p); ctx.stroke();
    last = p;
    onInput(e.timeStamp);
  });
  const end = () => { if (last) { last = null; onStroke(); } };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  return { canvas, clear };
}

// --- the steps' pictures

// a chart drawn at the size it is shown (its CSS width × the screen's pixel ratio), so a phone's narrow
// column and a projector's wide one both get sharp lines and type at the canvas's CSS font size (13 px on
// a page, larger in presenter mode); returns the context, drawing in CSS pixels, and the font size
function chartContext(canvas, height) {
  const dpr = window.devicePixelRatio || 1, font = parseFloat(getComputedStyle(canvas).fontSize) || 13;
  const W = canvas.clientWidth || canvas.width / dpr, H = typeof height === "function" ? height(W, font) : height;
  const w = Math.max(1, Math.round(W * dpr)), h = Math.max(1, Math.round(H * dpr));
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  canvas.style.height = `${H}px`;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, W, H);
  return { ctx, W, H, font };
}

function imageCanvas(shape, display, label) {
  return el("canvas", { class: "vae-ex-image", width: display, height: display, role: "img", "aria-label": label });
}

// the dimensions from this image's most KL to its least, as the rows and bars show them (the numbers
// drawn run down); equal KLs keep the model's test-set order `fallback`
function byKl(kl, fallback) {
  const rank = new Map(fallback.map((d, i) => [d, i]));
  return kl.map((_, d) => d).sort((a, b) => kl[b] - kl[a] || (rank.get(a) ?? a) - (rank.get(b) ?? b));
}

// one row per dimension (this image's most KL first): the prior N(0, 1) as a grey band (±1, ±2), the
// posterior N(μ, σ²) as a dot with ±σ and ±2σ bars, z as a black tick when given; returns the rows drawn
function posteriorChart(canvas, mu, logvar, kl, order, z, most = 24) {
  const shown = Math.min(order.length, most);
  const { ctx, W, font } = chartContext(canvas, (_, f) => Math.round(1.55 * f) * (shown + 1) + 6);
  const row = Math.round(1.55 * font), band = row * 0.8, span = 4, right = font;
  const rows = order.slice(0, shown);
  ctx.font = `${font}px sans-serif`;
  ctx.textBaseline = "middle";
  const left = Math.ceil(Math.max(...rows.map((d) => ctx.measureText(`z${d} · ${kl[d].toFixed(2)} nats`).width))) + font;
  const X = (v) => left + ((Math.min(Math.max(v, -span), span) + span) / (2 * span)) * (W - left - right);
  rows.forEach((d, r) => {
    const y = row * r + row / 2 + 2, s = Math.exp(0.5 * logvar[d]);
    ctx.fillStyle = "#eee"; ctx.fillRect(X(-2), y - band / 2, X(2) - X(-2), band);
    ctx.fillStyle = "#ddd"; ctx.fillRect(X(-1), y - band / 2, X(1) - X(-1), band);
    const live = kl[d] > 0.1;
    ctx.strokeStyle = ctx.fillStyle = live ? "#d6336c" : "#888";
    ctx.lineWidth = font / 13; ctx.beginPath(); ctx.moveTo(X(mu[d] - 2 * s), y); ctx.lineTo(X(mu[d] + 2 * s), y); ctx.stroke();
    ctx.lineWidth = 4 * font / 13; ctx.beginPath(); ctx.moveTo(X(mu[d] - s), y); ctx.lineTo(X(mu[d] + s), y); ctx.stroke();
    ctx.beginPath(); ctx.arc(X(mu[d]), y, 0.27 * font, 0, 2 * Math.PI); ctx.fill();
    if (z) { ctx.fillStyle = "#000"; ctx.fillRect(X(z[d]) - font / 13, y - band / 2 - 1, 2 * font / 13, band + 2); }
    ctx.fillStyle = "#333";
    ctx.fillText(`z${d} · ${kl[d].toFixed(2)} nats`, 4, y);
  });
  const y = row * rows.length + row / 2;
  ctx.fillStyle = "#666";
  ctx.textAlign = "center";
  for (const v of [-2, -1, 0, 1, 2]) ctx.fillText(String(v), X(v), y);
  ctx.textAlign = "start";
  return rows;
}

// a 2-D model's latent plane: the test codes (dots, coloured by label), the prior's 1σ and 2σ circles,
// the posterior's 1σ and 2σ ellipses around μ, and z as a cross
function planeChart(canvas, plane, mu, logvar, z) {
  const { ctx, W: S, font } = chartContext(canvas, (W) => W), pad = 10, span = plane.span, k13 = font / 13;
  const P = (v) => pad + ((v + span) / (2 * span)) * (S - 2 * pad), Q = (v) => S - P(v);
  const r = (v) => (v / (2 * span)) * (S - 2 * pad);
  ctx.globalAlpha = 0.45;
  const dot = 3 * k13;
  plane.codes.forEach(([a, b], i) => { ctx.fillStyle = plane.colors[i]; ctx.fillRect(P(a) - dot / 2, Q(b) - dot / 2, dot, dot); });
  ctx.globalAlpha = 1;
  ctx.setLineDash([4 * k13, 4 * k13]); ctx.strokeStyle = "#777"; ctx.lineWidth = k13;
  for (const k of [1, 2]) { ctx.beginPath(); ctx.arc(P(0), Q(0), r(k), 0, 2 * Math.PI); ctx.stroke(); }
  ctx.setLineDash([]);
  const sx = Math.exp(0.5 * logvar[0]), sy = Math.exp(0.5 * logvar[1]);
  ctx.strokeStyle = "#d6336c";
  for (const [k, w] of [[1, 3], [2, 1.5]]) {
    ctx.lineWidth = w * k13; ctx.beginPath();
    ctx.ellipse(P(mu[0]), Q(mu[1]), Math.max(r(k * sx), 1), Math.max(r(k * sy), 1), 0, 0, 2 * Math.PI); ctx.stroke();
  }
  ctx.fillStyle = "#d6336c"; ctx.beginPath(); ctx.arc(P(mu[0]), Q(mu[1]), 3.5 * k13, 0, 2 * Math.PI); ctx.fill();
  if (z) {
    const c = 6 * k13;
    ctx.strokeStyle = "#000"; ctx.lineWidth = 2 * k13; ctx.beginPath();
    ctx.moveTo(P(z[0]) - c, Q(z[1]) - c); ctx.lineTo(P(z[0]) + c, Q(z[1]) + c);
    ctx.moveTo(P(z[0]) - c, Q(z[1]) + c); ctx.lineTo(P(z[0]) + c, Q(z[1]) - c); ctx.stroke();
  }
  ctx.fillStyle = "#555"; ctx.font = `${font}px sans-serif`; ctx.textBaseline = "alphabetic";
  ctx.textAlign = "end"; ctx.fillText("z0 →", S - 4, S - 4);
  ctx.textAlign = "start"; ctx.fillText("↑ z1", 4, font + 2);
}

function heatCanvas(values, [C, H, W], canvas, scale) {
  const small = new OffscreenCanvas(W, H), sctx = small.getContext("2d"), img = sctx.createImageData(W, H);
  for (let p = 0; p < H * W; p++) {
    let v = 0;
    for (let c = 0; c < C; c++) v += values[c * H * W + p];
    const [r, g, b] = heat(v / scale);
    img.data.set([r, g, b, 255], 4 * p);
  }
  sctx.putImageData(img, 0, 0);
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
}

function lossBar(canvas, recon, klTotal, beta) {
  const { ctx, W, H } = chartContext(canvas, (_, f) => 2 * f), total = recon + beta * klTotal;
  const widest = Math.max(total, recon + 1), X = (v) => (v / widest) * (W - 2);
  ctx.fillStyle = "#4c6ef5"; ctx.fillRect(1, 4, X(recon), H - 8);
  ctx.fillStyle = "#f59f00"; ctx.fillRect(1 + X(recon), 4, X(beta * klTotal), H - 8);
}

function klBars(canvas, kl, order) {
  const { ctx, W, H, font } = chartContext(canvas, (_, f) => 8.5 * f), n = Math.min(order.length, 32);
  const top = Math.max(1e-3, ...kl), w = (W - 4) / n, label = 0.8 * font;
  ctx.font = `${label}px sans-serif`;
  ctx.textAlign = "center";
  const labelled = w >= 1.6 * label;  // a number under every bar only where each fits
  order.slice(0, n).forEach((d, i) => {
    const h = (kl[d] / top) * (H - 1.6 * label);
    ctx.fillStyle = kl[d] > 0.1 ? "#f59f00" : "#bbb";
    ctx.fillRect(2 + i * w + 1, H - 1.4 * label - h, Math.max(1, w - 2), h);
    ctx.fillStyle = "#666";
    if (labelled) ctx.fillText(String(d), 2 + i * w + w / 2, H - 0.3 * label);
  });
  ctx.textAlign = "start";
}

// --- the page's component

function buildExplain(root, data, report) {
  const [C, H, W] = data.shape, D = data.eps.length, display = data.display;
  // counters under the page's own key ("hiw"), for the benchmark
  const stats = (shared.stats[data.key || root.dataset.key] ||= { frames: 0, latencies: [], decodeMs: [] });
  stats.mountedAt ??= performance.now();
  let x = Float32Array.from(data.x), eps = data.eps.slice(), strip = data.strip.map((r) => r.slice());
  let beta = Number(data.beta), useMu = Boolean(data.use_mu), post = null, decoded = null;
  const status = el("div", { class: "vae-live-status", text: "loading the encoder and the decoder…" });
  const step = (n, title, ...body) => el("section", { class: "vae-ex-step", "data-step": n },
    el("h3", { text: `${n} · ${title}` }), el("p", { class: "vae-ex-text", text: data.texts[n - 1] }),
    el("div", { class: "vae-ex-body" }, ...body));

  // 1. input
  const input = imageCanvas(data.shape, display / 2, "the model's input x");
  const blitInput = painter(input, data.shape);
  const pad = data.draw ? drawingPad(data, (at) => changed(at, true), () => report("x", Array.from(x, (v) => Number(v.toFixed(4))))) : null;
  const clearButton = el("button", { class: "vae-ex-button", type: "button", text: "Clear" });
  clearButton.addEventListener("click", () => { pad.clear(); changed(performance.now(), true); report("x", Array.from(x, (v) => Number(v.toFixed(4)))); });
  const inputBox = pad
    ? [el("div", { class: "vae-ex-col" }, pad.canvas, clearButton), el("figure", { class: "vae-live-figure" }, input,
      el("figcaption", { text: `x: what the encoder gets (${H}×${W})` }))]
    : [el("figure", { class: "vae-live-figure" }, input, el("figcaption", { text: "x" }))];

  // 2. q(z|x)
  const chart = el("canvas", { class: "vae-ex-chart vae-ex-fit", width: 640, height: 20 * (Math.min(D, 24) + 1) + 6,
    role: "img", "aria-label": "q(z|x): mean and spread of every dimension against the prior N(0, 1)" });
  const chartNote = el("div", { class: "vae-ex-note" });
  const plane = data.plane ? el("canvas", { class: "vae-ex-plane vae-ex-fit", width: 300, height: 300, role: "img",
    "aria-label": "q(z|x) on the latent plane: its 1σ and 2σ ellipses over the test codes and the prior's circles" }) : null;
  const planeBox = plane ? [el("figure", { class: "vae-live-figure" }, plane, el("figcaption", {
    text: "the latent plane: test codes by label, the prior's 1σ/2σ circles (dashed), q(z|x)'s 1σ/2σ ellipses, z (×)" }))] : [];

  // 3. z = μ + σ·ε
  const equation = el("div", { class: "vae-ex-equation" });
  const resample = el("button", { class: "vae-ex-button", type: "button", "aria-label": "Resample ε", text: "Resample ε" });
  const muBox = el("input", { type: "checkbox", "aria-label": "use μ (σ = 0)" });
  muBox.checked = useMu;
  const stripCanvas = el("canvas", { class: "vae-live-grid vae-ex-strip", width: strip.length * (display / 3 + 4),
    height: display / 3 + 4, role: "img", "aria-label": "decodings of different draws from q(z|x)" });
  const blitStrip = blitter(data.shape);

  // 4. x̂
  const xhat = imageCanvas(data.shape, display / 2, "the reconstruction x̂ = decoder(z)");
  const blitXhat = painter(xhat, data.shape);
  const inputAgain = imageCanvas(data.shape, display / 2, "the input x again");
  const blitInputAgain = painter(inputAgain, data.shape);

  // 5. the loss
  const map = imageCanvas(data.shape, display / 2, "−log p(x|z) per pixel: where the model pays");
  const kls = el("canvas", { class: "vae-ex-kl vae-ex-fit", width: 420, height: 110, role: "img", "aria-label": "KL per dimension (nats)" });
  const bar = el("canvas", { class: "vae-ex-bar vae-ex-fit", width: 420, height: 26, role: "img",
    "aria-label": "loss = reconstruction + β·KL" });
  const betaInput = el("input", { type: "range", min: 0, max: 10, step: 0.1, value: beta, "aria-label": "β" });
  const betaValue = el("span", { class: "vae-live-value", text: beta.toFixed(1) });
  const numbers = el("div", { class: "vae-ex-numbers", "aria-live": "polite" });

  root.append(
    step(1, "Input x", ...inputBox),
    step(2, "Encoder → q(z|x)", el("div", { class: "vae-ex-col" }, chart, chartNote), ...planeBox),
    step(3, "Sample z = μ + σ·ε", el("div", { class: "vae-ex-col" }, equation,
      el("div", { class: "vae-ex-row" }, resample, el("label", { class: "vae-ex-check" }, muBox, " use μ (σ = 0)")),
      stripCanvas, el("div", { class: "vae-ex-note", text: "each image decodes another draw z ~ q(z|x): the posterior's width, seen" }))),
    step(4, "Decoder → x̂", el("figure", { class: "vae-live-figure" }, inputAgain, el("figcaption", { text: "x" })),
      el("figure", { class: "vae-live-figure" }, xhat, el("figcaption", { text: "x̂ = decoder(z)" }))),
    step(5, "The loss", el("figure", { class: "vae-live-figure" }, map, el("figcaption", { text: "−log p(x|z) per pixel" })),
      el("div", { class: "vae-ex-col" }, kls, el("div", { class: "vae-ex-note", text: "KL per dimension (nats), most first" }),
        el("label", { class: "vae-live-row vae-ex-beta" }, el("span", { class: "vae-live-label", text: "β" }), betaInput, betaValue),
        bar, numbers,
        el("div", { class: "vae-ex-note" }, "Training is Adam on the average of this loss over the data: ",
          el("a", { href: data.train_url, target: "_self", text: "train one" }), "."))),
    status,
  );
  // presenter mode steps through the page's own steps below the component too (their pictures are the page's)
  if (data.step) (data.after || []).forEach((title, i) => status.before(step(6 + i, title)));

  const codes = () => {
    const s = post.logvar.map((lv) => (useMu ? 0 : Math.exp(0.5 * lv)));
    const z = post.mu.map((m, i) => m + s[i] * eps[i]);
    const draws = strip.map((e) => post.mu.map((m, i) => m + Math.exp(0.5 * post.logvar[i]) * e[i]));
    return { z, draws };
  };

  function paintLoss() {
    if (!post || !decoded) return;
    const kl = klPerDim(post.mu, post.logvar), klTotal = kl.reduce((a, b) => a + b, 0);
    const per = reconMap(x, decoded.image, data.likelihood), recon = per.reduce((a, b) => a + b, 0);
    heatCanvas(per, data.shape, map, Math.max(1, ...per) || 1);
    klBars(kls, kl, byKl(kl, data.kl_order));
    lossBar(bar, recon, klTotal, beta);
    const total = recon + beta * klTotal;
    numbers.textContent = `reconstruction ${recon.toFixed(1)} + β·KL ${beta.toFixed(1)} × ${klTotal.toFixed(1)} = `
      + `${total.toFixed(1)} nats (${data.likelihood.name}${useMu ? "; z = μ" : "; one draw of z"}`
      + (data.likelihood.binarize ? "; x binarized at 0.5 here, where the engine's scores use one fixed random binarization)" : ")");
    root.dataset.loss = JSON.stringify({ recon: Number(recon.toFixed(3)), kl: Number(klTotal.toFixed(3)), beta,
      total: Number(total.toFixed(3)) });
  }

  // the charts, drawn at their shown size: after each computation, and again when that size changes
  function paintCharts() {
    if (!post || !decoded) return [];
    const { z } = decoded;
    const kl = klPerDim(post.mu, post.logvar), order = byKl(kl, data.kl_order);
    // presenter mode: as many rows (most KL first) as fit on the screen under the chart's top
    const font = parseFloat(getComputedStyle(chart).fontSize) || 13;
    const room = root.classList.contains("vae-ex-present") && chart.clientWidth
      ? Math.floor((window.innerHeight - chart.getBoundingClientRect().top - 2 * font) / Math.round(1.55 * font)) - 1 : 24;
    const rows = posteriorChart(chart, post.mu, post.logvar, kl, order, z, Math.max(4, Math.min(24, room)));
    if (plane) planeChart(plane, data.plane, post.mu, post.logvar, z);
    paintLoss();
    return rows;
  }
  let refit = 0;
  const fits = new ResizeObserver(() => { cancelAnimationFrame(refit); refit = requestAnimationFrame(paintCharts); });
  [chart, plane, kls, bar].forEach((c) => c && fits.observe(c));

  function paintAll(at) {
    const { z } = decoded;
    const kl = klPerDim(post.mu, post.logvar), order = byKl(kl, data.kl_order);
    const rows = paintCharts();
    root.dataset.rows = JSON.stringify(rows.map((d) => [d, Number(kl[d].toFixed(2))]));  // as drawn, top down
    const collapsed = kl.filter((v) => v <= 0.1).length, hidden = D - rows.length;
    chartNote.textContent = `dot: μ; thick bar: ±σ; thin: ±2σ; grey band: the prior N(0, 1) (±1, ±2); black tick: z. `
      + `${collapsed} of ${D} dimensions sit on the prior (KL ≤ 0.1 nats): they carry nothing about x.`
      + (hidden ? ` (${hidden} dimensions with the least KL not drawn.)` : "");
    const shown = order.slice(0, 4);
    equation.textContent = shown.map((d) => `z${d} = ${post.mu[d].toFixed(2)} + ${useMu ? "0" : Math.exp(0.5 * post.logvar[d]).toFixed(2)}`
      + ` × ${eps[d] >= 0 ? "" : "("}${eps[d].toFixed(2)}${eps[d] >= 0 ? "" : ")"} = ${z[d].toFixed(2)}`).join("\n")
      + (D > 4 ? `\n… and ${D - 4} more` : "");
    blitXhat(decoded.image);
    const [, , tileW] = [0, 0, display / 3];
    const sctx = stripCanvas.getContext("2d");
    sctx.fillStyle = "#fff"; sctx.fillRect(0, 0, stripCanvas.width, stripCanvas.height);
    const size = C * H * W;
    strip.forEach((_, k) => blitStrip(sctx, decoded.strip, k * size, 2 + k * (tileW + 4), 2, tileW, tileW));
    stats.frames += 1;
    stats.firstFrameAt ??= performance.now();
    stats.latencies.push(performance.now() - at);
    if (stats.latencies.length > 2000) stats.latencies.splice(0, 1000);
    root.dataset.frames = String(stats.frames);
    root.dataset.z = JSON.stringify(z.map((v) => Number(v.toFixed(4))));
  }

  const server = Boolean(data.computed); // no runtime here: the server computed this view
  const encoderReady = server ? null : session(data.base, data.encoder);
  const decoderReady = server ? null : session(data.base, data.model);
  const fail = (e) => {
    status.textContent = `cannot run the model in this browser: ${e.message || e}`;
    report("failed", String(e.message || e).slice(0, 200));
  };
  const run = latestWins(async ({ at, encode }) => {
    if (server) {
      if (decoded) return; // a change waits for the server's next view
      post = { mu: data.computed.mu, logvar: data.computed.logvar };
      decoded = { z: codes().z, image: data.computed.image, strip: data.computed.strip };
      paintAll(at);
      status.textContent = "computed on the server (this browser cannot run the model): each change is sent there";
      return;
    }
    try {
      const [{ ort, run: enc }, { run: dec }] = await Promise.all([encoderReady, decoderReady]);
      const t0 = performance.now();
      if (encode || !post) {
        const out = await enc.run({ x: new ort.Tensor("float32", x, [1, C, H, W]) });
        post = { mu: Array.from(out.mu.data), logvar: Array.from(out.logvar.data) };
      }
      const { z, draws } = codes();
      const all = Float32Array.from([z, ...draws].flat());
      const out = await dec.run({ z: new ort.Tensor("float32", all, [1 + draws.length, D]) });
      const size = C * H * W;
      decoded = { z, image: out.image.data.slice(0, size), strip: out.image.data.slice(size) };
      stats.decodeMs.push(performance.now() - t0);
      paintAll(at);
      status.textContent = `encoded and decoded in your browser · ${(performance.now() - t0).toFixed(1)} ms`;
    } catch (e) {
      fail(e);
    }
  });
  function changed(at, fromPad) {
    if (fromPad) x = inkToInput(pad.canvas, data.shape, data.draw.normalize);
    blitInput(x);
    blitInputAgain(x);
    if (!server || !decoded) run({ at: at || performance.now(), encode: true });
  }
  resample.addEventListener("click", (e) => {
    const seed = 1 + Math.floor(Math.random() * (2 ** 31 - 1));
    [eps, ...strip] = lessonNoise(seed, 1 + strip.length, D);
    root.dataset.seed = String(seed);
    if (!server) run({ at: e.timeStamp || performance.now(), encode: false });
    report("seed", seed);
  });
  muBox.addEventListener("change", (e) => {
    useMu = muBox.checked;
    if (!server) run({ at: e.timeStamp || performance.now(), encode: false });
    report("use_mu", useMu);
  });
  betaInput.addEventListener("input", () => { beta = Number(betaInput.value); betaValue.textContent = beta.toFixed(1); paintLoss(); });
  betaInput.addEventListener("change", () => report("beta", beta));

  // presenter mode: one step at a time, the arrow keys move between them
  if (data.step) {
    let current = data.step;
    const steps = root.querySelectorAll(".vae-ex-step"), last = steps.length;
    const where = el("span", { class: "vae-ex-where" });
    const back = el("button", { class: "vae-ex-button", type: "button", text: "← Previous", "aria-label": "Previous step" });
    const next = el("button", { class: "vae-ex-button", type: "button", text: "Next →", "aria-label": "Next step" });
    root.prepend(el("nav", { class: "vae-ex-nav", "aria-label": "Steps" }, back, where, next,
      el("span", { class: "vae-ex-keys", text: "← → keys move between steps" })));
    const show = () => {
      steps.forEach((s) => { s.hidden = Number(s.dataset.step) !== current; });
      where.textContent = `Step ${current} of ${last}`;
      back.disabled = current <= 1;
      next.disabled = current >= last;
      root.dataset.step = String(current);
    };
    root.classList.add("vae-ex-present");
    show();
    const go = (to) => {
      if (to === current || to < 1 || to > last) return;
      current = to;
      show();
      report("step", current);
    };
    back.addEventListener("click", () => go(current - 1));
    next.addEventListener("click", () => go(current + 1));
    const onKey = (e) => {
      if (e.target.closest?.("input, textarea")) return;
      if (e.key === "ArrowRight" || e.key === "ArrowLeft") go(current + (e.key === "ArrowRight" ? 1 : -1));
    };
    window.addEventListener("keydown", onKey);
    root.vaeStop = () => { window.removeEventListener("keydown", onKey); fits.disconnect(); };
  } else {
    root.vaeStop = () => fits.disconnect();
  }
  changed(performance.now(), false);
}
