// modelmem page: a form over the JSON API. Every figure shown comes from an API answer;
// the page only formats it (exact bytes beside decimal GB and binary GiB).
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const COLORS = ["#2f6fdb", "#e8710a", "#1e8e3e", "#d93025", "#9334e6", "#12b5cb",
  "#f9ab00", "#e52592", "#5f6368", "#8ab4f8", "#a50e0e", "#188038"];
const DECIMAL = [["PB", 1e15], ["TB", 1e12], ["GB", 1e9], ["MB", 1e6], ["kB", 1e3]];
const BINARY = [["PiB", 2 ** 50], ["TiB", 2 ** 40], ["GiB", 2 ** 30], ["MiB", 2 ** 20],
  ["KiB", 2 ** 10]];
const BATCHES = [1, 2, 4, 8, 16, 32, 64, 128];

const $ = (id) => document.getElementById(id);
let contextOf = {};   // catalogue model -> its context length
let formatRows = [];  // /api/formats: what each name means to --dtype and --kv-dtype
let generation = 0;   // answers of superseded requests are dropped
let timer = null;

// ------------------------------------------------------------------------ formatting

function inUnits(n, units) {
  const sign = n < 0 ? "-" : "";
  const a = Math.abs(n);
  for (let i = 0; i < units.length; i++) {
    const [name, size] = units[i];
    if (a >= size) {
      let value = a / size;
      if (i > 0 && Number(value.toFixed(2)) >= units[i - 1][1] / size) {
        value = a / units[i - 1][1];
        return `${sign}${value.toFixed(2)} ${units[i - 1][0]}`;
      }
      return `${sign}${value.toFixed(2)} ${name}`;
    }
  }
  return `${sign}${a} B`;
}

function bytesBoth(n) {
  const d = inUnits(n, DECIMAL);
  const b = inUnits(n, BINARY);
  return d === b ? d : `${d} (${b})`;
}

const exact = (n) => `${n.toLocaleString("en-US")} bytes`;

function svg(tag, attrs, parent) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  if (parent) parent.appendChild(el);
  return el;
}

function titled(el, text) {
  svg("title", {}, el).textContent = text;
  return el;
}

// ------------------------------------------------------------------------------- API

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  };
  const response = await fetch(path, init);
  let data;
  try {
    data = await response.json();
  } catch (e) {
    throw new Error(`${path}: HTTP ${response.status}`);
  }
  if (!response.ok) throw new Error(data.error || `${path}: HTTP ${response.status}`);
  return data;
}

function option(select, value, label) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = label;
  select.appendChild(o);
  return o;
}

async function loadCatalogues() {
  const [models, devices, formats] = await Promise.all([
    api("/api/models"), api("/api/devices"), api("/api/formats"),
  ]);
  const modelSelect = $("model");
  for (const m of models) {
    contextOf[m.name] = m.context_length;
    option(modelSelect, m.name, `${m.name} (${(m.total_params / 1e9).toFixed(2)}B)`);
  }
  if (contextOf["llama-3.1-8b"]) modelSelect.value = "llama-3.1-8b";
  const deviceSelect = $("device");
  for (const d of devices) {
    option(deviceSelect, d.name, `${d.name} — ${bytesBoth(d.memory_bytes)}`);
  }
  formatRows = formats;
  const dtype = $("dtype");
  option(dtype, "", "default (as the model ships, else bf16)");
  // only the names the API takes as weights (schemes, and formats that map to one)
  for (const f of formats) {
    if (f.weights_scheme) option(dtype, f.name, f.name);
  }
  fillCacheFormats();
}

// the KV cache formats the chosen engine takes (transformers when left to the default)
function fillCacheFormats() {
  const kv = $("kv-dtype");
  const engine = $("engine").value || "transformers";
  const kept = kv.value;
  kv.replaceChildren();
  option(kv, "", "default");
  for (const f of formatRows) {
    if ((f.cache_engines || []).includes(engine)) option(kv, f.name, f.name);
  }
  kv.value = [...kv.options].some((o) => o.value === kept) ? kept : "";
}

// --------------------------------------------------------------------------- the form

function workload() {
  return $("workload").value;
}

function source() {
  const kind = document.querySelector('input[name="source-kind"]:checked').value;
  if (kind === "catalogue") return $("model").value;
  const text = $("config").value.trim();
  if (!text) throw new Error("paste a config.json");
  let config;
  try {
    config = JSON.parse(text);
  } catch (e) {
    throw new Error(`config.json is not valid JSON: ${e.message}`);
  }
  if (config === null || typeof config !== "object" || Array.isArray(config)) {
    throw new Error("config.json must be a JSON object");
  }
  return config;
}

function positive(id) {
  const value = Number($(id).value);
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`${id}: must be a whole number ≥ 1`);
  }
  return value;
}

// an optional whole number: null when the field is empty (the API's default applies)
function optionalPositive(id) {
  return $(id).value.trim() === "" ? null : positive(id);
}

// The estimate request and the matching fit request for the form's settings: the fit body
// is the estimate's options plus the devices, so the API evaluates the same workload.
function requests() {
  const src = source();
  const w = workload();
  const batch = positive("batch");
  const length = optionalPositive("context");
  const count = positive("count");
  const device = $("device").value;
  if (w === "inference") {
    const body = { source: src, batch };
    if (length !== null) body.context = length;
    if ($("dtype").value) body.dtype = $("dtype").value;
    if ($("kv-dtype").value) body.kv_dtype = $("kv-dtype").value;
    if ($("engine").value) body.engine = $("engine").value;
    if (count > 1) body.tp = count;
    const fit = { ...body, device, count, mode: "inference" };
    delete fit.tp;
    return { path: "/api/inference", axis: "context", body, fit };
  }
  const tp = positive("tp");
  if (count % tp !== 0) throw new Error(`count: ${count} devices are not a multiple of tp ${tp}`);
  const body = { source: src, method: w, optimizer: $("optimizer").value, batch,
    checkpointing: $("checkpointing").checked, devices: count / tp };
  if (tp > 1) body.tp = tp;
  if (length !== null) body.seq = length;
  if ($("recipe").value) body.recipe = $("recipe").value;
  if (w !== "full") {
    body.lora_rank = positive("lora-rank");
    if ($("lora-targets").value.trim()) body.lora_targets = $("lora-targets").value.trim();
  }
  const sharding = $("sharding").value;
  if (sharding.startsWith("zero-")) body.zero = Number(sharding.slice(5));
  if (sharding.startsWith("fsdp-")) body.fsdp = sharding.slice(5);
  const fit = { ...body, device, count, mode: "train" };
  delete fit.devices;
  return { path: "/api/train", axis: "seq", body, fit };
}

function contextPoints(current, maxContext) {
  const top = Math.max(Math.min(maxContext || 131072, 131072), 512);
  const values = new Set([current]);
  for (let v = 256; v <= top; v *= 2) values.add(v);
  return [...values].sort((a, b) => a - b).slice(0, 24);
}

function showMode() {
  const w = workload();
  fillCacheFormats();
  for (const el of document.querySelectorAll(".only-inference")) {
    el.classList.toggle("hidden", w !== "inference");
  }
  for (const el of document.querySelectorAll(".only-train")) {
    el.classList.toggle("hidden", w === "inference");
  }
  for (const el of document.querySelectorAll(".only-lora")) {
    el.classList.toggle("hidden", w !== "lora" && w !== "qlora");
  }
  const catalogue = document.querySelector('input[name="source-kind"]:checked').value
    === "catalogue";
  $("model-field").classList.toggle("hidden", !catalogue);
  $("config-field").classList.toggle("hidden", catalogue);
  const label = w === "inference" ? "context (tokens)" : "sequence length (tokens)";
  $("context-label").textContent = label;
  $("axis-context").textContent = w === "inference" ? "context length" : "sequence length";
}

// ---------------------------------------------------------------------------- render

function renderTotal(data) {
  $("total").textContent = bytesBoth(data.total_bytes);
  $("total").dataset.bytes = String(data.total_bytes);
  $("total-bytes").textContent = exact(data.total_bytes);
}

function renderBar(data) {
  const bar = $("bar");
  const legend = $("legend");
  bar.replaceChildren();
  legend.replaceChildren();
  const parts = data.components.filter((c) => c.bytes > 0);
  const sum = parts.reduce((s, c) => s + c.bytes, 0) || 1;
  let x = 0;
  parts.forEach((c, i) => {
    const width = (600 * c.bytes) / sum;
    const color = COLORS[i % COLORS.length];
    const rect = svg("rect", { x, y: 0, width: Math.max(width, 0.5), height: 36, fill: color,
      "data-name": c.name, "data-bytes": c.bytes }, bar);
    titled(rect, `${c.name}: ${exact(c.bytes)} — ${c.how}`);
    x += width;
    const li = document.createElement("li");
    const swatch = svg("svg", { viewBox: "0 0 12 12", "aria-hidden": "true" }, li);
    svg("rect", { width: 12, height: 12, rx: 2, fill: color }, swatch);
    const name = document.createElement("span");
    name.textContent = c.name;
    const size = document.createElement("span");
    size.className = "bytes";
    size.textContent = bytesBoth(c.bytes);
    size.title = `${exact(c.bytes)} — ${c.how}`;
    li.append(name, size);
    legend.appendChild(li);
  });
}

function renderVerdict(fit) {
  const el = $("verdict");
  if (!fit) {
    el.classList.add("hidden");
    return;
  }
  el.classList.remove("hidden", "fits", "nofit");
  el.classList.add(fit.fits ? "fits" : "nofit");
  const sign = fit.margin_bytes >= 0 ? "+" : "";
  el.textContent = `${fit.fits ? "Fits" : "Does not fit"} on ${fit.count} × ${fit.device}: `
    + `peak per device ${bytesBoth(fit.total_bytes)} of a ${bytesBoth(fit.budget_bytes)} budget `
    + `(${Math.round(fit.reserve * 100)}% reserve kept); margin ${sign}${bytesBoth(fit.margin_bytes)} `
    + `(${sign}${fit.margin_percent.toFixed(1)}%)`;
  el.dataset.fits = String(fit.fits);
  el.dataset.totalBytes = String(fit.total_bytes);
}

function renderChart(el, sweep, current, budget, xName) {
  el.replaceChildren();
  const points = sweep.points;
  const W = 600, H = 260, L = 64, R = 12, T = 12, B = 36;
  const xs = points.map((p) => Math.log2(p.value));
  const x0 = Math.min(...xs), x1 = Math.max(...xs);
  const yMax = Math.max(...points.map((p) => p.total_bytes), budget || 0) * 1.08 || 1;
  const px = (v) => L + (x1 === x0 ? (W - L - R) / 2 : ((Math.log2(v) - x0) / (x1 - x0)) * (W - L - R));
  const py = (b) => H - B - (b / yMax) * (H - T - B);
  svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }, el);
  svg("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }, el);
  for (let i = 0; i <= 4; i++) {
    const b = (yMax * i) / 4;
    svg("line", { x1: L - 4, y1: py(b), x2: L, y2: py(b), class: "axis" }, el);
    const label = svg("text", { x: L - 6, y: py(b) + 4, "text-anchor": "end" }, el);
    label.textContent = inUnits(Math.round(b), BINARY).replace(".00", "");
  }
  points.forEach((p, i) => {
    if (points.length > 9 && i % 2 === 1 && p.value !== current) return;
    const label = svg("text", { x: px(p.value), y: H - B + 16, "text-anchor": "middle" }, el);
    label.textContent = p.value >= 1024 ? `${p.value / 1024}K` : String(p.value);
  });
  const axis = svg("text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle" }, el);
  axis.textContent = `${xName} (log scale)`;
  if (budget) {
    svg("line", { x1: L, y1: py(budget), x2: W - R, y2: py(budget), class: "budget" }, el);
    const t = svg("text", { x: W - R, y: py(budget) - 4, "text-anchor": "end",
      class: "budget-label" }, el);
    t.textContent = `device budget ${bytesBoth(budget)}`;
  }
  const d = points.map((p, i) => `${i ? "L" : "M"}${px(p.value).toFixed(1)},${py(p.total_bytes).toFixed(1)}`);
  svg("path", { d: d.join(" "), class: "line" }, el);
  for (const p of points) {
    const dot = svg("circle", { cx: px(p.value), cy: py(p.total_bytes),
      r: p.value === current ? 5 : 3, class: "dot", "data-value": p.value,
      "data-bytes": p.total_bytes }, el);
    titled(dot, `${xName} ${p.value.toLocaleString("en-US")}: ${exact(p.total_bytes)}`);
  }
}

function renderNotes(notes) {
  const ul = $("notes");
  ul.replaceChildren();
  for (const n of notes || []) {
    const li = document.createElement("li");
    li.textContent = n;
    ul.appendChild(li);
  }
}

function renderChanges(changes) {
  const box = $("changes-box");
  const ul = $("changes");
  ul.replaceChildren();
  box.classList.toggle("hidden", !(changes && changes.length));
  for (const c of changes || []) {
    const li = document.createElement("li");
    li.textContent = `${c.change}: ${bytesBoth(c.total_bytes)} — `
      + (c.fits ? "fits" : "still does not fit");
    li.dataset.fits = String(c.fits);
    li.dataset.totalBytes = String(c.total_bytes);
    ul.appendChild(li);
  }
}

// an error replaces the answer: nothing of a previous result stays on screen
function clearResults() {
  $("total").textContent = "…";
  delete $("total").dataset.bytes;
  $("total-bytes").textContent = "";
  for (const id of ["bar", "legend", "chart-context", "chart-batch", "notes", "changes"]) {
    $(id).replaceChildren();
  }
  $("verdict").classList.add("hidden");
  $("changes-box").classList.add("hidden");
}

function showError(message) {
  const el = $("error");
  el.textContent = message;
  el.classList.toggle("hidden", !message);
  if (message) clearResults();
}

// ---------------------------------------------------------------------------- update

async function update() {
  const mine = ++generation;
  let req;
  try {
    req = requests();
  } catch (e) {
    showError(e.message);
    return;
  }
  const src = req.body.source;
  const maxContext = typeof src === "string" ? contextOf[src] : null;
  const { source: _ignored, ...rest } = req.body;
  const sweepBase = { source: src, ...rest };
  try {
    const [data, fit] = await Promise.all([
      api(req.path, req.body),
      req.fit.device ? api("/api/fit", req.fit) : Promise.resolve(null),
    ]);
    if (mine !== generation) return;
    // the length the API chose when the field is empty (the model's, capped)
    const length = req.axis === "context" ? data.context : data.seq;
    const lengthSweep = { ...sweepBase, axis: req.axis,
      values: contextPoints(length, req.axis === "seq" ? Math.min(maxContext || 32768, 32768) : maxContext) };
    const batchValues = [...new Set([...BATCHES, req.body.batch])].sort((a, b) => a - b);
    const batchSweep = { ...sweepBase, axis: "batch", values: batchValues.slice(0, 24) };
    const [sweepLength, sweepBatch] = await Promise.all([
      api(`${req.path}/sweep`, lengthSweep),
      api(`${req.path}/sweep`, batchSweep),
    ]);
    if (mine !== generation) return;
    showError("");
    renderTotal(data);
    renderBar(data);
    renderVerdict(fit);
    renderChanges(fit ? fit.changes : data.changes);
    const budget = fit ? fit.budget_bytes : null;
    renderChart($("chart-context"), sweepLength, length,
      budget, req.axis === "context" ? "context" : "sequence length");
    renderChart($("chart-batch"), sweepBatch, req.body.batch, budget, "batch");
    renderNotes(fit ? fit.notes : data.notes);  // a fit's notes hold the estimate's
    document.body.dataset.state = "ready";
  } catch (e) {
    if (mine !== generation) return;
    showError(e.message);
    document.body.dataset.state = "error";
  }
}

function schedule() {
  showMode();
  document.body.dataset.state = "busy";
  clearTimeout(timer);
  timer = setTimeout(update, 150);
}

async function start() {
  try {
    await loadCatalogues();
  } catch (e) {
    showError(e.message);
    return;
  }
  const form = $("form");
  form.addEventListener("input", schedule);
  form.addEventListener("change", schedule);
  form.addEventListener("submit", (e) => e.preventDefault());
  // QLoRA as PEFT's prepare_model_for_kbit_training sets it up: checkpointing on
  $("workload").addEventListener("change", () => {
    if (workload() === "qlora") $("checkpointing").checked = true;
  });
  schedule();
}

document.addEventListener("DOMContentLoaded", start);
