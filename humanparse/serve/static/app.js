// humanparse serve: the page. Plain browser JavaScript, no build step.
"use strict";

const state = { info: null };
const $ = (sel, root = document) => root.querySelector(sel);

async function init() {
  const [health, info] = await Promise.all([fetch("/health").then(r => r.json()), fetch("/domains").then(r => r.json())]);
  state.info = info;
  $("#model-name").textContent = `model: ${health.model}`;
  const domain = $("#domain");
  for (const d of info.semantic) domain.add(new Option(`${d.name} (${d.num_classes} classes)`, d.name));
  for (const radio of document.querySelectorAll("input[name=task]")) {
    radio.disabled = !info.tasks.includes(radio.value);
    radio.addEventListener("change", updateControls);
  }
  if (!info.tasks.includes("semantic")) $("input[name=task][value=multi]").checked = true;
  domain.addEventListener("change", updateControls);
  updateControls();
  const drop = $("#drop");
  drop.addEventListener("dragover", e => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", e => { e.preventDefault(); drop.classList.remove("over"); parseFiles(e.dataTransfer.files); });
  $("#files").addEventListener("change", e => { parseFiles(e.target.files); e.target.value = ""; });
  document.body.dataset.ready = "1";
}

function task() { return $("input[name=task]:checked").value; }

function updateControls() {
  const multi = task() === "multi";
  const domain = $("#domain"), layout = $("#layout");
  domain.disabled = multi;
  const keep = layout.value;
  layout.length = 1;
  for (const l of state.info.layouts) {
    if (l.sources.includes(domain.value)) layout.add(new Option(l.name, l.name));
  }
  layout.value = [...layout.options].some(o => o.value === keep) ? keep : "";
  layout.disabled = multi;
}

function parseFiles(files) {
  for (const file of files) parseFile(file);   // the server queues and batches them
}

function decodeRle(runs, n) {
  const out = new Uint8Array(n);
  let at = 0;
  for (let i = 0; i < runs.length; i += 2) { out.fill(runs[i], at, at + runs[i + 1]); at += runs[i + 1]; }
  return out;
}

async function parseFile(file) {
  const card = $("#card-template").content.firstElementChild.cloneNode(true);
  $(".title", card).textContent = file.name;
  $("#results").prepend(card);
  const params = new URLSearchParams({ format: "json", task: task() });
  if (task() === "semantic") {
    params.set("domain", $("#domain").value);
    if ($("#layout").value) params.set("map_to", $("#layout").value);
  }
  try {
    const response = await fetch(`/parse?${params}`, {
      method: "POST", body: file,
      headers: { "Content-Type": file.type || "application/octet-stream", "X-Filename": file.name },
    });
    const result = await response.json();
    if (!response.ok) throw new Error(result.error || `HTTP ${response.status}`);
    const photo = await createImageBitmap(file);
    render(card, file, photo, result);
    card.dataset.state = "done";
  } catch (err) {
    $(".status", card).textContent = `failed: ${err.message}`;
    card.dataset.state = "error";
  }
}

function render(card, file, photo, result) {
  const w = result.width, h = result.height, n = w * h;
  const labels = decodeRle(result.rle, n);
  const persons = result.person_rle ? decodeRle(result.person_rle, n) : null;
  const hidden = new Set();
  const canvases = ["photo", "labels", "overlay"].map(c => $(`canvas.${c}`, card));
  // shown as large as the column allows, at most 420 px high, keeping the aspect ratio
  const scale = Math.min(canvases[0].parentElement.clientWidth / w, 420 / h);
  for (const c of canvases) {
    c.width = w; c.height = h;
    c.style.width = `${Math.round(w * scale)}px`; c.style.height = `${Math.round(h * scale)}px`;
  }
  const [photoCanvas, labelCanvas, overlayCanvas] = canvases;
  photoCanvas.getContext("2d").drawImage(photo, 0, 0, w, h);
  const pixels = photoCanvas.getContext("2d").getImageData(0, 0, w, h).data;
  const colors = result.classes.map(c => c.color);

  function redraw() {
    const lab = new ImageData(w, h), over = new ImageData(w, h);
    for (let i = 0; i < n; i++) {
      const k = labels[i], c = colors[k], j = 4 * i, shown = !hidden.has(k);
      lab.data[j] = c[0]; lab.data[j + 1] = c[1]; lab.data[j + 2] = c[2]; lab.data[j + 3] = shown ? 255 : 0;
      const blend = shown && k > 0;   // as `humanparse parse --overlay`: background untouched, alpha 0.5
      for (let ch = 0; ch < 3; ch++) over.data[j + ch] = blend ? (pixels[j + ch] + c[ch]) / 2 : pixels[j + ch];
      over.data[j + 3] = 255;
    }
    labelCanvas.getContext("2d").putImageData(lab, 0, 0);
    overlayCanvas.getContext("2d").putImageData(over, 0, 0);
  }

  const legend = $(".legend", card);
  for (const k of result.present) {
    const cls = result.classes[k];
    const item = document.createElement("label");
    item.dataset.classId = k;
    item.innerHTML = `<input type="checkbox" checked><span class="swatch"></span><span class="name"></span>`;
    $(".swatch", item).style.background = `rgb(${cls.color.join(",")})`;
    $(".name", item).textContent = cls.name;
    $("input", item).addEventListener("change", e => {
      if (e.target.checked) hidden.delete(k); else hidden.add(k);
      item.classList.toggle("off", !e.target.checked);
      redraw();
    });
    legend.append(item);
  }

  const readout = $(".readout", card);
  for (const c of canvases) {
    c.addEventListener("mousemove", e => {
      const x = Math.min(w - 1, Math.floor(e.offsetX * w / c.clientWidth));
      const y = Math.min(h - 1, Math.floor(e.offsetY * h / c.clientHeight));
      const k = labels[y * w + x];
      const who = persons && persons[y * w + x] ? `, person ${persons[y * w + x]}` : "";
      readout.textContent = `(${x}, ${y}): ${result.classes[k].name} [${k}]${who}`;
      readout.dataset.classId = k;
    });
  }

  const stem = file.name.replace(/\.[^.]*$/, "");
  const links = $(".downloads", card);
  const png = document.createElement("a");
  png.className = "download-png";
  png.href = `data:image/png;base64,${result.label_png}`;
  png.download = `${stem}.png`;
  png.textContent = "label map (P-mode PNG)";
  links.append(png);
  if (result.persons) {
    const payload = { width: w, height: h, persons: result.persons };
    const json = document.createElement("a");
    json.className = "download-json";
    json.href = URL.createObjectURL(new Blob([JSON.stringify(payload)], { type: "application/json" }));
    json.download = `${stem}.json`;
    json.textContent = "persons (JSON)";
    links.append(json);
  }
  $(".status", card).textContent = `${result.task}, ${result.domain}: ${w}×${h}, ${result.present.length} classes`;
  redraw();
}

init().catch(err => { document.body.dataset.ready = "error"; $("#results").textContent = `cannot reach the server: ${err}`; });
