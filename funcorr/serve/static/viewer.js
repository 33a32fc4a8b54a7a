// funcorr viewer: plain JavaScript over the JSON API of funcorr/serve/app.py.
// Every position sent or received is in original image pixels (x = column, y = row, the
// centre of the top-left pixel at (0, 0)); each pane's SVG uses that frame as its viewBox,
// so markers need no conversion.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const ROLES = ["source", "target"];

const state = {
  images: { source: null, target: null },  // image records from the server
  point: null,                              // clicked source point [x, y]
  click: null,                              // last /api/click answer
  labels: null,                             // last /api/labels answer
  masks: null,                              // last /api/masks answer
  top: null,                                // last /api/discover answer
  seq: 0,                                   // request generation: stale answers are dropped
};

const $ = (id) => document.getElementById(id);
const pane = (role) => $(`${role}-pane`);

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  };
  const response = await fetch(path, init);
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`;
    try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
    throw new Error(detail);
  }
  return response;
}
const apiJson = async (path, body) => (await api(path, body)).json();

// Run an async step with the busy counter raised (tests and the cursor wait on it) and
// show its error in the status line instead of failing silently.
async function step(label, fn) {
  document.body.dataset.busy = String(Number(document.body.dataset.busy) + 1);
  if (label) setStatus(`${label}…`);
  try {
    return await fn();
  } catch (err) {
    setStatus(err.message, true);
    return undefined;
  } finally {
    document.body.dataset.busy = String(Number(document.body.dataset.busy) - 1);
  }
}

function choice() {
  return {
    backbone: $("backbone").value,
    checkpoint: $("checkpoint").value || null,
    function: $("function").value || null,
    object_mask: $("object-mask").value || null,
  };
}

function pairBody(extra = {}) {
  return { source: state.images.source.id, target: state.images.target.id, matcher: choice(), ...extra };
}

const bothLoaded = () => Boolean(state.images.source && state.images.target);

// ---- drawing ------------------------------------------------------------------------------

function markerRadius(role) {
  const info = state.images[role];
  return Math.max(info.width, info.height) * 0.014;
}

function circle(role, x, y, cls, scale = 1, fill = null) {
  const c = document.createElementNS(SVG_NS, "circle");
  c.setAttribute("cx", x);
  c.setAttribute("cy", y);
  c.setAttribute("r", markerRadius(role) * scale);
  c.setAttribute("class", cls);
  if (fill) c.setAttribute("fill", fill);
  return c;
}

function label(role, x, y, text) {
  const t = document.createElementNS(SVG_NS, "text");
  t.setAttribute("x", x + markerRadius(role) * 1.2);
  t.setAttribute("y", y - markerRadius(role) * 1.2);
  t.setAttribute("font-size", markerRadius(role) * 2.4);
  t.textContent = text;
  return t;
}

function drawMarks() {
  for (const role of ROLES) {
    const svg = pane(role).querySelector("svg.marks");
    svg.replaceChildren();
    if (!state.images[role]) continue;
    if (state.top && $("show-topk").checked) {
      state.top.matches.forEach((m, i) => {
        const [x, y] = m[role];
        // Hues 40..300: red stays reserved for the clicked point.
        const colour = `hsl(${Math.round(40 + (260 * i) / Math.max(1, state.top.matches.length - 1))}, 90%, 50%)`;
        svg.append(circle(role, x, y, "top", 0.8, colour), label(role, x, y, String(i + 1)));
      });
    }
    if (role === "source" && state.point) {
      const c = circle(role, state.point[0], state.point[1], "picked");
      c.id = "source-marker";
      c.dataset.x = state.point[0];
      c.dataset.y = state.point[1];
      svg.append(c);
    }
    if (role === "target" && state.click) {
      state.click.modes.slice(1).forEach((m) => svg.append(circle(role, m.target[0], m.target[1], "mode", 1.8)));
      const c = circle(role, state.click.target[0], state.click.target[1], "picked");
      c.id = "target-marker";
      c.dataset.x = state.click.target[0];
      c.dataset.y = state.click.target[1];
      svg.append(c);
    }
  }
}

function setOverlay(role, url) {
  const img = pane(role).querySelector("img.overlay");
  if (url) { img.src = url; img.hidden = false; } else { img.hidden = true; img.removeAttribute("src"); }
}

// Label transfer, when on, colours both panes; otherwise the target shows the heat map.
function drawOverlays() {
  const labels = $("show-labels").checked && state.labels;
  setOverlay("source", labels ? state.labels.source : null);
  const heat = $("show-heatmap").checked && state.click && state.click.heatmap;
  setOverlay("target", labels ? state.labels.target : heat || null);
}

// The object masks veil what lies outside the matched pixels, above any other overlay.
function drawMasks() {
  for (const role of ROLES) {
    const img = pane(role).querySelector("img.mask-overlay");
    const layer = $("show-masks").checked && state.masks && state.masks[role];
    if (layer) { img.src = layer.png; img.hidden = false; } else { img.hidden = true; img.removeAttribute("src"); }
  }
}

function redraw() {
  drawOverlays();
  drawMasks();
  drawMarks();
  $("download-json").disabled = $("download-png").disabled = !bothLoaded();
}

// ---- actions ------------------------------------------------------------------------------

function forgetResults() {
  if (state.click) $("match").textContent = "No point clicked yet.";
  state.click = null;
  state.labels = null;
  state.masks = null;
  state.top = null;
}

// Scale each image to fill its half of the window without overflowing its height; small
// images are enlarged so that a click can be placed precisely.
function fitImage(role) {
  const info = state.images[role];
  if (!info) return;
  const scale = Math.min(Math.min(window.innerWidth * 0.45, 520) / info.width, (window.innerHeight * 0.55) / info.height);
  pane(role).querySelector("img.base").style.width = `${Math.round(info.width * scale)}px`;
}

function showImage(role, info) {
  state.images[role] = info;
  if (role === "source") state.point = null;
  forgetResults();
  const p = pane(role);
  p.querySelector("img.base").src = `/api/images/${info.id}.png`;
  fitImage(role);
  p.querySelector("svg.marks").setAttribute("viewBox", `-0.5 -0.5 ${info.width} ${info.height}`);
  p.querySelector(".name").textContent = `${info.name} (${info.width}×${info.height}${info.has_mask ? ", masked" : ""})`;
  redraw();
}

async function uploadImage(role, file) {
  await step(`Uploading ${file.name}`, async () => {
    const form = new FormData();
    form.append("file", file);
    const response = await fetch("/api/images", { method: "POST", body: form });
    if (!response.ok) throw new Error((await response.json()).detail || response.statusText);
    showImage(role, await response.json());
  });
  await refresh();
}

// Features of both images, then everything that depends on them (click, overlays, top-K).
async function refresh() {
  document.body.dataset.ready = "false";
  if (document.body.dataset.initialized !== "true") return;  // init() refreshes once the selects are filled
  if (!bothLoaded()) {
    setStatus(`Load a ${state.images.source ? "target" : "source"} image.`);
    return;
  }
  forgetResults();
  redraw();
  const seq = ++state.seq;
  const prepared = await step("Computing features", () => apiJson("/api/prepare", pairBody()));
  if (!prepared || seq !== state.seq) return;
  const cached = prepared.cached ? `, ${prepared.cached} of 2 cached` : "";
  setStatus(`Features ready in ${prepared.ms.toFixed(0)} ms${cached}. Click a point on the source.`);
  updateNote();
  if (state.point) await clickAt(...state.point);
  if ($("show-labels").checked) await loadLabels();
  if ($("show-masks").checked) await loadMasks();
  if ($("show-topk").checked) await loadTop();
  document.body.dataset.ready = "true";
}

async function clickAt(x, y) {
  if (!bothLoaded()) return;
  state.point = [x, y];
  drawMarks();
  const seq = ++state.seq;
  const started = performance.now();
  const result = await step("", () => apiJson("/api/click", pairBody({ x, y, heatmap: $("show-heatmap").checked })));
  if (!result || seq !== state.seq) return;
  state.click = result;
  redraw();
  const [tx, ty] = result.target;
  const modes = result.modes.length > 1 ? `${result.modes.length} modes — ambiguous` : "1 mode";
  const t = result.timing_ms;
  $("match").textContent =
    `source (${x.toFixed(1)}, ${y.toFixed(1)}) → target (${tx.toFixed(1)}, ${ty.toFixed(1)}) · similarity ${result.similarity.toFixed(3)} · ${modes}`;
  setStatus(
    `Matched in ${t.total.toFixed(0)} ms on the server (heat map ${t.heatmap.toFixed(0)} ms), ` +
    `${(performance.now() - started).toFixed(0)} ms round trip.`
  );
}

async function loadLabels() {
  const result = await step("Transferring labels", () => apiJson("/api/labels", pairBody()));
  if (!result) return;
  state.labels = result;
  redraw();
  setStatus(`Label transfer: ${result.ms.toFixed(0)} ms. Colours encode source position; each target pixel takes its match's colour.`);
}

async function loadMasks() {
  const result = await step("Computing object masks", () => apiJson("/api/masks", pairBody()));
  if (!result) return;
  state.masks = result;
  redraw();
  setStatus(`Object masks: source from ${result.source.source}, target from ${result.target.source} (veiled: not matched).`);
}

async function loadTop() {
  const k = Math.max(1, Math.min(200, Number($("topk-k").value) || 10));
  const result = await step("Discovering matches", () => apiJson("/api/discover", pairBody({ k })));
  if (!result) return;
  state.top = result;
  redraw();
  setStatus(`Top ${result.matches.length} discovered matches (score = (1 − cycle error) × similarity, lattice every ${result.lattice_stride} px): ${result.ms.toFixed(0)} ms.`);
}

function updateNote() {
  const c = choice();
  $("note").textContent = c.function && !c.checkpoint
    ? "Raw backbone features do not depend on the function; choose a checkpoint for function-conditioned matching."
    : "";
}

async function download(kind) {
  if (!bothLoaded()) return;
  const body = pairBody({
    point: state.point,
    top_k: $("show-topk").checked ? Math.max(1, Number($("topk-k").value) || 10) : null,
    heatmap: $("show-heatmap").checked,
    labels: $("show-labels").checked,
    masks: $("show-masks").checked,
  });
  await step(`Preparing ${kind.toUpperCase()}`, async () => {
    const blob = await (await api(`/api/export.${kind}`, body)).blob();
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `funcorr_result.${kind}`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    setStatus(`Downloaded funcorr_result.${kind}.`);
  });
}

async function loadPair(value) {
  if (!value) return;
  const [split, index] = value.split("/");
  const loaded = await step("Loading pair", () => apiJson("/api/pairs/load", { split, index: Number(index) }));
  if (!loaded) return;
  state.images = { source: null, target: null };
  showImage("source", loaded.source);
  showImage("target", loaded.target);
  if (loaded.function && [...$("function").options].some((o) => o.value === loaded.function)) {
    $("function").value = loaded.function;
  }
  await refresh();
}

// ---- set-up -------------------------------------------------------------------------------

function fillSelect(select, items) {
  for (const { value, text, disabled, title } of items) {
    const option = new Option(text, value);
    option.disabled = Boolean(disabled);
    if (title) option.title = title;
    select.append(option);
  }
}

function listen() {
  for (const role of ROLES) {
    $(`${role}-file`).addEventListener("change", (e) => e.target.files[0] && uploadImage(role, e.target.files[0]));
  }
  $("pair-select").addEventListener("change", (e) => loadPair(e.target.value));
  for (const id of ["backbone", "checkpoint", "function", "object-mask"]) $(id).addEventListener("change", refresh);
  $("show-heatmap").addEventListener("change", () => (state.point ? clickAt(...state.point) : redraw()));
  $("show-labels").addEventListener("change", () => ($("show-labels").checked && bothLoaded() && !state.labels ? loadLabels() : redraw()));
  $("show-masks").addEventListener("change", () => ($("show-masks").checked && bothLoaded() && !state.masks ? loadMasks() : redraw()));
  $("show-topk").addEventListener("change", () => ($("show-topk").checked && bothLoaded() ? loadTop() : redraw()));
  $("topk-k").addEventListener("change", () => $("show-topk").checked && bothLoaded() && loadTop());
  window.addEventListener("resize", () => ROLES.forEach(fitImage));
  $("download-json").addEventListener("click", () => download("json"));
  $("download-png").addEventListener("click", () => download("png"));

  $("source-pane").querySelector(".stage").addEventListener("click", (e) => {
    const info = state.images.source;
    if (!info || !bothLoaded()) return;
    const rect = $("source-pane").querySelector("img.base").getBoundingClientRect();
    // Screen position -> original pixel: the image spans [-0.5, W - 0.5] across its box.
    const x = ((e.clientX - rect.left) / rect.width) * info.width - 0.5;
    const y = ((e.clientY - rect.top) / rect.height) * info.height - 0.5;
    const clamp = (v, hi) => Math.min(Math.max(v, 0), hi);
    clickAt(clamp(x, info.width - 1), clamp(y, info.height - 1));
  });
}

async function init() {
  // Listeners first: a file chosen while the options load must not be missed.
  listen();
  const options = await step("", () => apiJson("/api/options"));
  if (!options) return;
  fillSelect($("backbone"), options.backbones.map((b) => ({
    value: b.name, text: b.available ? b.name : `${b.name} (weights missing)`, disabled: !b.available, title: b.description,
  })));
  fillSelect($("checkpoint"), options.checkpoints.map((c) => ({ value: c, text: c.split("/").slice(-2).join("/"), title: c })));
  fillSelect($("function"), options.functions.map((f) => ({ value: f, text: f })));
  fillSelect($("object-mask"), options.object_masks.map((m) => ({ value: m, text: m })));
  $("backbone").value = options.defaults.backbone;
  $("checkpoint").value = options.defaults.checkpoint || "";
  $("function").value = options.defaults.function || "";
  $("object-mask").value = options.defaults.object_mask || "alpha";

  const pairs = await step("", () => apiJson("/api/pairs"));
  if (pairs && pairs.available) {
    fillSelect($("pair-select"), pairs.pairs.map((p) => ({
      value: `${p.split}/${p.index}`, text: `${p.split} · ${p.pair_id}${p.function ? " · " + p.function : ""}`,
    })));
    $("pair-label").hidden = false;
  } else if (pairs) {
    $("pair-note").textContent = `(no dataset pairs: ${pairs.reason})`;
  }
  document.body.dataset.initialized = "true";
  if (bothLoaded()) await refresh();
  else setStatus("Load a source and a target image (or pick a dataset pair).");
}

document.addEventListener("DOMContentLoaded", init);
