// skytrans offline sky viewer: Aladin Lite (vendored beside this file) showing the layers that the page's
// JSON config lists, a layer switcher with an opacity slider and blink, colour cuts in each layer's unit
// (the run's asinh display by default), the position and values under the cursor, and the run's figures.
// Written by data/sky/viewer.py; docs/viewer.md tells the story. Nothing here asks any host but the page's own:
// every URL is made from the page's address, Aladin Lite's CDS features are switched off, and the page's
// Content-Security-Policy refuses any other origin.
import A from "./aladin-lite/aladin.js";

const BACKGROUND = [24, 24, 32]; // no-data sky: told apart from the darkest sky level (black)
const LUT_SIZE = 256;
const BLINK_MS = 700;

const state = {
  t0: performance.now(),
  timings: {},
  blocked: [],
  errors: [],
  layers: {}, // id -> {spec, layer (Aladin object), slot, status, display}
  top: null,
  blink: null,
  lutCount: 0,
};
let resolveReady;
state.ready = new Promise((resolve) => { resolveReady = resolve; });
window.skytransViewer = state;

document.addEventListener("securitypolicyviolation", (event) => {
  state.blocked.push(event.blockedURI || event.violatedDirective);
});
window.addEventListener("error", (event) => state.errors.push(String(event.message)));
window.addEventListener("unhandledrejection", (event) => state.errors.push(String(event.reason)));

const config = JSON.parse(document.getElementById("skytrans-viewer-config").textContent);
const absolute = (url) => new URL(url, document.baseURI).href.replace(/\/$/, "");

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function fmt(value, digits = 4) {
  if (value === null || value === undefined || Number.isNaN(value)) return "no data";
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude >= 1e5 || magnitude < 1e-3)) return value.toExponential(digits - 1);
  return Number(value.toPrecision(digits)).toString();
}

function sexagesimal(deg, hours) {
  let value = hours ? ((deg % 360) + 360) % 360 / 15 : deg;
  const sign = value < 0 ? "-" : hours ? "" : "+";
  value = Math.abs(value);
  const a = Math.floor(value);
  const b = Math.floor((value - a) * 60);
  const c = ((value - a) * 60 - b) * 60;
  const pad = (n, w) => String(n).padStart(w, "0");
  return `${sign}${pad(a, 2)}:${pad(b, 2)}:${c.toFixed(hours ? 2 : 1).padStart(hours ? 5 : 4, "0")}`;
}

// ---- colour: the run's asinh display as an Aladin colormap over linear cuts ----------------------------
// x -> asinh((x - min) / s) / asinh((max - min) / s) (data/sky/hips_out.DisplayStretch): Aladin Lite's own
// asinh has a fixed softening (a tenth of the cut range), so the curve goes into a grey look-up table.
function asinhColormap(aladin, display) {
  const span = display.max - display.min;
  const soft = display.softening > 0 ? display.softening : span / 10;
  const scale = Math.asinh(span / soft);
  const colors = [];
  for (let i = 0; i < LUT_SIZE; i += 1) {
    const level = Math.round(255 * Math.asinh((i / (LUT_SIZE - 1)) * span / soft) / scale);
    const hex = Math.max(0, Math.min(255, level)).toString(16).padStart(2, "0");
    colors.push(`#${hex}${hex}${hex}`);
  }
  state.lutCount += 1;
  const name = `skytrans-asinh-${state.lutCount}`;
  aladin.addColormap(name, colors);
  return name;
}

function applyDisplay(aladin, entry) {
  const d = entry.display;
  if (!entry.layer || d.native) return;
  if (d.stretch === "asinh-softened") {
    entry.layer.setColormap(asinhColormap(aladin, d), { stretch: "linear" });
  } else {
    entry.layer.setColormap(d.colormap || "grayscale", { stretch: d.stretch });
  }
  entry.layer.setCuts(d.min, d.max);
}

// ---- layers ----------------------------------------------------------------------------------------------
function makeLayer(spec) {
  const d = spec.display || {};
  const options = { name: spec.name, imgFormat: spec.format };
  if (!d.native) {
    options.minCut = d.min;
    options.maxCut = d.max;
    options.colormap = "grayscale";
    options.stretch = d.stretch === "asinh-softened" ? "linear" : d.stretch;
  }
  if (spec.kind === "image") {
    return new Promise((resolve, reject) => {
      const layer = A.image(absolute(spec.url), {
        ...options,
        successCallback: () => resolve(layer),
        errorCallback: (error) => reject(new Error(`${spec.url}: ${error}`)),
      });
      state.layers[spec.id].layer = layer;
    });
  }
  const layer = A.HiPS(absolute(spec.url), options);
  state.layers[spec.id].layer = layer;
  return layer;
}

function setTop(aladin, id) {
  state.top = id;
  const opacity = Number(document.getElementById("skytrans-opacity").value) / 100;
  for (const entry of Object.values(state.layers)) {
    if (!entry.layer || entry.slot === "base") continue;
    entry.layer.setOpacity(entry.spec.id === id ? opacity : 0);
  }
  document.getElementById("skytrans-cuts-layer").textContent = state.layers[id].spec.name;
  showCuts(state.layers[id]);
}

function stopBlink() {
  if (state.blink) clearInterval(state.blink);
  state.blink = null;
  document.getElementById("skytrans-blink").textContent = "Blink";
}

function toggleBlink() {
  if (state.blink) {
    stopBlink();
    setTop(state.aladin, state.top);
    return;
  }
  const entry = state.layers[state.top];
  if (!entry || entry.slot === "base") return;
  let shown = true;
  const slider = document.getElementById("skytrans-opacity");
  if (Number(slider.value) === 0) slider.value = 100;
  state.blink = setInterval(() => {
    shown = !shown;
    entry.layer.setOpacity(shown ? Number(slider.value) / 100 : 0);
  }, BLINK_MS);
  document.getElementById("skytrans-blink").textContent = "Stop blinking";
}

// ---- colour cut controls ---------------------------------------------------------------------------------
const STRETCHES = [["asinh-softened", "asinh (the run's display)"], ["linear", "linear"], ["sqrt", "sqrt"],
  ["log", "log"], ["asinh", "asinh (Aladin's)"], ["pow2", "pow2"]];
const COLORMAPS = ["grayscale", "viridis", "magma", "inferno", "plasma", "cubehelix", "rainbow", "rdbu"];

function showCuts(entry) {
  const d = entry.display;
  const box = document.getElementById("skytrans-cuts");
  box.hidden = Boolean(d.native);
  if (d.native) return;
  document.getElementById("skytrans-cut-min").value = fmt(d.min, 6);
  document.getElementById("skytrans-cut-max").value = fmt(d.max, 6);
  document.getElementById("skytrans-stretch").value = d.stretch;
  document.getElementById("skytrans-colormap").value = d.colormap || "grayscale";
  document.getElementById("skytrans-colormap").disabled = d.stretch === "asinh-softened";
  document.getElementById("skytrans-cut-unit").textContent = entry.spec.unit ? `(${entry.spec.unit})` : "";
}

function changeCuts() {
  const entry = state.layers[state.top];
  const low = Number(document.getElementById("skytrans-cut-min").value);
  const high = Number(document.getElementById("skytrans-cut-max").value);
  if (!(Number.isFinite(low) && Number.isFinite(high) && high > low)) return;
  const update = {
    min: low, max: high,
    stretch: document.getElementById("skytrans-stretch").value,
    colormap: document.getElementById("skytrans-colormap").value,
  };
  // the generated and the real band share one display (the comparison means nothing otherwise)
  const group = entry.spec.group;
  for (const other of Object.values(state.layers)) {
    if (other === entry || (group && other.spec.group === group)) {
      Object.assign(other.display, update);
      applyDisplay(state.aladin, other);
    }
  }
  showCuts(entry);
}

// ---- the page --------------------------------------------------------------------------------------------
function buildPanel() {
  const panel = document.getElementById("skytrans-panel");
  panel.append(el("h1", {}, config.title));
  if (config.subtitle) panel.append(el("p", { class: "sub" }, config.subtitle));

  const list = el("div", { class: "layers", id: "skytrans-layers" });
  for (const spec of config.layers) {
    const radio = el("input", { type: "radio", name: "skytrans-top", value: spec.id, id: `skytrans-top-${spec.id}` });
    radio.addEventListener("change", () => { stopBlink(); setTop(state.aladin, spec.id); });
    const label = el("label", { for: radio.id }, spec.name + (spec.unit ? ` [${spec.unit}]` : ""));
    const status = el("span", { class: "status", id: `skytrans-status-${spec.id}` }, "");
    list.append(el("div", { class: "layer" }, radio, label, status));
    if (spec.note) list.append(el("div", { class: "note" }, spec.note));
  }
  for (const note of config.missing_layers || []) list.append(el("div", { class: "note" }, note));
  panel.append(el("h2", {}, "Layers"), list);

  const slider = el("input", { type: "range", min: "0", max: "100", value: "100", id: "skytrans-opacity" });
  slider.addEventListener("input", () => { if (!state.blink) setTop(state.aladin, state.top); });
  panel.append(el("div", { class: "row" }, el("label", { for: "skytrans-opacity" }, "Opacity over the generated band"),
    slider));
  panel.append(el("div", { class: "row" },
    el("button", { id: "skytrans-blink", type: "button", onclick: toggleBlink }, "Blink"),
    el("span", { class: "hint" }, "key b: blink; the base layer is the generated band")));

  const stretch = el("select", { id: "skytrans-stretch" }, ...STRETCHES.map(([v, t]) => el("option", { value: v }, t)));
  const cmap = el("select", { id: "skytrans-colormap" }, ...COLORMAPS.map((c) => el("option", { value: c }, c)));
  const low = el("input", { type: "text", id: "skytrans-cut-min", size: "9" });
  const high = el("input", { type: "text", id: "skytrans-cut-max", size: "9" });
  for (const input of [stretch, cmap, low, high]) input.addEventListener("change", changeCuts);
  panel.append(el("div", { id: "skytrans-cuts" },
    el("h2", {}, "Colour cuts: ", el("span", { id: "skytrans-cuts-layer" }, "")),
    el("div", { class: "row" }, "min ", low, " max ", high, " ", el("span", { id: "skytrans-cut-unit" }, "")),
    el("div", { class: "row" }, stretch, " ", cmap)));

  panel.append(el("h2", {}, "Under the cursor"), el("table", { id: "skytrans-cursor", class: "cursor" },
    el("tr", {}, el("th", {}, "RA, Dec"), el("td", { id: "skytrans-radec" }, "move over the sky")),
    el("tr", {}, el("th", {}, "deg"), el("td", { id: "skytrans-deg" }, "")),
    el("tr", {}, el("th", {}, "l, b"), el("td", { id: "skytrans-gal" }, "")),
    el("tr", {}, el("th", { id: "skytrans-value-base-name" }, "generated"), el("td", { id: "skytrans-value-base" }, "")),
    el("tr", {}, el("th", { id: "skytrans-value-top-name" }, ""), el("td", { id: "skytrans-value-top" }, ""))));

  for (const section of config.sections || []) panel.append(renderSection(section));
  if (config.credits && config.credits.length) {
    panel.append(el("h2", {}, "Data credits"), el("ul", { class: "credits" },
      ...config.credits.map((c) => el("li", {}, c))));
  }
  for (const note of config.notes || []) panel.append(el("p", { class: "note" }, note));
}

function renderSection(section) {
  const box = el("section", {}, el("h2", {}, section.title));
  if (section.text) for (const p of section.text) box.append(el("p", {}, p));
  if (section.rows) {
    const table = el("table", {});
    if (section.head) table.append(el("tr", {}, ...section.head.map((h) => el("th", {}, h))));
    for (const row of section.rows) {
      table.append(el("tr", {}, ...row.map((cell, i) => el(i === 0 && !section.head ? "th" : "td", {}, cell))));
    }
    box.append(table);
  }
  if (section.pictures) {
    const row = el("div", { class: "pictures" });
    for (const pic of section.pictures) {
      row.append(el("figure", {}, el("a", { href: pic.src }, el("img", { src: pic.src, alt: pic.caption })),
        el("figcaption", {}, pic.caption)));
    }
    box.append(row);
  }
  return box;
}

function probeValue(entry, x, y) {
  if (entry.spec.kind === "image") return "n/a (FITS image layer)"; // Aladin Lite reads values of HiPS only
  try {
    const value = entry.layer.readPixel(x, y);
    if (value === undefined || value === null) return "(tile not loaded yet)"; // right after a zoom
    if (Array.isArray(value) || ArrayBuffer.isView(value)) return Array.from(value).slice(0, 3).join(", ");
    if (Number.isNaN(Number(value))) return "no data";
    return `${fmt(Number(value))}${entry.spec.unit ? " " + entry.spec.unit : ""}`;
  } catch (error) {
    return "no data";
  }
}

// ICRS -> galactic (the IAU rotation as given with the Hipparcos catalogue), here so as not to depend on how
// an Aladin Lite version reads its frame argument
const TO_GALACTIC = [[-0.0548755604162154, -0.8734370902348850, -0.4838350155487132],
  [0.4941094278755837, -0.4448296299600112, 0.7469822444972189],
  [-0.8676661490190047, -0.1980763734312015, 0.4559837761750669]];

function galactic(ra, dec) {
  const r = (ra * Math.PI) / 180;
  const d = (dec * Math.PI) / 180;
  const v = [Math.cos(d) * Math.cos(r), Math.cos(d) * Math.sin(r), Math.sin(d)];
  const g = TO_GALACTIC.map((row) => row[0] * v[0] + row[1] * v[1] + row[2] * v[2]);
  const l = (Math.atan2(g[1], g[0]) * 180) / Math.PI;
  return [(l + 360) % 360, (Math.asin(Math.max(-1, Math.min(1, g[2]))) * 180) / Math.PI];
}

function onMouseMove(aladin, event) {
  if (event.ra === null || event.ra === undefined) return;
  const icrs = aladin.pix2world(event.x, event.y, "icrs");
  if (!icrs) return;
  const gal = galactic(icrs[0], icrs[1]);
  document.getElementById("skytrans-radec").textContent = `${sexagesimal(icrs[0], true)} ${sexagesimal(icrs[1], false)}`;
  document.getElementById("skytrans-deg").textContent = `${icrs[0].toFixed(5)} ${icrs[1] >= 0 ? "+" : ""}${icrs[1].toFixed(5)}`;
  document.getElementById("skytrans-gal").textContent = `${gal[0].toFixed(5)} ${gal[1] >= 0 ? "+" : ""}${gal[1].toFixed(5)}`;
  const base = state.layers[config.layers[0].id];
  document.getElementById("skytrans-value-base").textContent = probeValue(base, event.x, event.y);
  const top = state.layers[state.top];
  const same = !top || top === base;
  document.getElementById("skytrans-value-top-name").textContent = same ? "" : top.spec.name;
  document.getElementById("skytrans-value-top").textContent = same || !top.layer ? "" : probeValue(top, event.x, event.y);
}

// First sky: poll a small copy of the canvas each frame until the base layer's pixels show.
function watchFirstSky(aladin) {
  return new Promise((resolve) => {
    const probe = () => {
      let lit = 0;
      let total = 0;
      try {
        const canvas = aladin.view.getRawPixelsCanvas(48, 36);
        const data = canvas.getContext("2d").getImageData(0, 0, 48, 36).data;
        total = data.length / 4;
        for (let i = 0; i < data.length; i += 4) {
          if (Math.abs(data[i] - BACKGROUND[0]) + Math.abs(data[i + 1] - BACKGROUND[1])
              + Math.abs(data[i + 2] - BACKGROUND[2]) > 12) lit += 1;
        }
      } catch (error) {
        total = 0;
      }
      if (total && lit >= Math.max(1, 0.01 * total)) {
        state.timings.firstSky = performance.now();
        resolve();
      } else if (performance.now() - state.t0 > 60000) {
        resolve();
      } else {
        requestAnimationFrame(probe);
      }
    };
    requestAnimationFrame(probe);
  });
}

// Outlines on the sky (the demo's test cutouts, say), each with a checkbox in the layer list.
function addOverlay(aladin, spec) {
  const overlay = A.graphicOverlay({ name: spec.name, color: spec.color, lineWidth: 1 });
  aladin.addOverlay(overlay);
  overlay.addFootprints(spec.polygons.map((corners) => A.polygon(corners)));
  const box = el("input", { type: "checkbox", checked: "checked", id: `skytrans-overlay-${spec.name}` });
  box.addEventListener("change", () => (box.checked ? overlay.show() : overlay.hide()));
  document.getElementById("skytrans-layers").append(el("div", { class: "layer" }, box,
    el("label", { for: box.id }, `${spec.name} (${spec.polygons.length} outlines)`)));
  state.overlays = (state.overlays || 0) + 1;
}

function setStatus(id, text) {
  const node = document.getElementById(`skytrans-status-${id}`);
  if (node) node.textContent = text;
}

async function main() {
  document.getElementById("skytrans-needs-server").remove();
  buildPanel();
  state.timings.moduleStart = performance.now();
  await A.init;
  state.timings.aladinInit = performance.now();
  for (const spec of config.layers) {
    state.layers[spec.id] = { spec, display: { ...(spec.display || {}) }, layer: null, status: "waiting" };
  }
  const baseSpec = config.layers[0];
  const baseEntry = state.layers[baseSpec.id];
  baseEntry.slot = "base";
  const madeBase = makeLayer(baseSpec); // a Promise for a FITS image, which is added like a survey
  madeBase.catch?.(() => {}); // awaited below
  const target = config.target;
  const aladin = A.aladin("#skytrans-aladin", {
    survey: baseEntry.layer, hipsList: [], log: false, samp: false,
    target: `${target.ra} ${target.dec}`, fov: target.fov, cooFrame: "ICRS", projection: "TAN",
    backgroundColor: `rgb(${BACKGROUND.join(", ")})`,
    // off: everything that would ask CDS (HiPS lists and browser, name resolution, SIMBAD, sharing)
    showLayersControl: false, showGotoControl: false, showSimbadPointerControl: false, showShareControl: false,
    showSettingsControl: false, showContextMenu: false, showCatalog: false,
    showZoomControl: true, showFullscreenControl: true, showCooGridControl: true, showProjectionControl: true,
    showFrame: true, showFov: true, showCooLocation: true, showStatusBar: true, showReticle: false,
  });
  state.aladin = aladin;
  state.timings.aladinCreated = performance.now();
  // Aladin Lite falls back to its default survey (asked of CDS) while no layer was ever added: ours fails
  // visibly instead (its status says so), and the page asks no other host
  aladin.view.empty = false;
  document.getElementById("skytrans-aladin").addEventListener("AL:Layer.added", (event) => {
    const name = event.detail && event.detail.layer ? event.detail.layer.layer : "layer";
    state.timings[`added:${name}`] = performance.now();
  });
  applyDisplay(aladin, baseEntry);
  aladin.on("mouseMove", (event) => onMouseMove(aladin, event));
  document.getElementById("skytrans-value-base-name").textContent = baseSpec.name;
  document.getElementById(`skytrans-top-${baseSpec.id}`).checked = true;
  state.top = baseSpec.id;
  showCuts(baseEntry);
  document.addEventListener("keydown", (event) => {
    const typing = event.target instanceof HTMLSelectElement || event.target instanceof HTMLTextAreaElement
      || (event.target instanceof HTMLInputElement && event.target.type === "text");
    if (event.key === "b" && !typing) toggleBlink();
  });

  const statuses = {};
  try {
    await (madeBase instanceof Promise ? madeBase : baseEntry.layer.query);
    statuses[baseSpec.id] = "ok";
    setStatus(baseSpec.id, "");
  } catch (error) {
    statuses[baseSpec.id] = `error: ${error}`;
    setStatus(baseSpec.id, "(could not be loaded)");
  }
  await Promise.race([watchFirstSky(aladin), new Promise((r) => setTimeout(r, 4000))]);
  // the other layers, hidden until chosen, so that switching and blinking are instant
  for (const spec of config.layers.slice(1)) {
    const entry = state.layers[spec.id];
    entry.slot = "overlay";
    try {
      const made = makeLayer(spec);
      aladin.setOverlayImageLayer(entry.layer, spec.id);
      entry.layer.setOpacity(0);
      applyDisplay(aladin, entry);
      await (made instanceof Promise ? made : entry.layer.query);
      applyDisplay(aladin, entry);
      statuses[spec.id] = "ok";
      setStatus(spec.id, "");
    } catch (error) {
      statuses[spec.id] = `error: ${error}`;
      setStatus(spec.id, "(could not be loaded)");
    }
  }
  for (const spec of config.overlays || []) addOverlay(aladin, spec);
  const preferred = config.layers.find((s) => s.role === "real") || config.layers[1];
  if (preferred) {
    document.getElementById(`skytrans-top-${preferred.id}`).checked = true;
    document.getElementById("skytrans-opacity").value = 0;
    setTop(aladin, preferred.id);
  }
  state.timings.ready = performance.now();
  state.statuses = statuses;
  document.documentElement.dataset.viewer = "ready";
  resolveReady(statuses);
}

main().catch((error) => {
  state.errors.push(String(error && error.stack ? error.stack : error));
  document.documentElement.dataset.viewer = "failed";
  resolveReady({ error: String(error) });
});
