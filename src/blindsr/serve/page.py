"""The web demo's single page: HTML with inline CSS and vanilla JavaScript, no external resource of any kind.

The page talks to the JSON API of :mod:`blindsr.serve.app` (``api/models``, ``api/upscale``) and shows the result
as a before/after slider (bicubic-enlarged input on the left, model output on the right, same size), the estimated
kernel and noise map, and a download link; transparent pixels of both images show a checkerboard (CSS). Element
ids are what the browser test drives: ``file``, ``model``, ``outscale``, ``run``, ``message``, ``result``,
``viewer``, ``compare``, ``bicubic-img``, ``result-img``, ``slider``, ``info``, ``download``, ``kernel-img``,
``noise-img``.
"""

from __future__ import annotations

__all__ = ["CONTENT_SECURITY_POLICY", "PAGE_HTML"]

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src 'self' blob: data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
"""Sent with the page: the browser itself refuses anything not served by this server."""

PAGE_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>blindsr: blind super-resolution demo</title>
<style>
  :root { --fg: #1d232b; --muted: #5d6875; --line: #d6dbe1; --accent: #2760c4; --bad: #b3261e; --bg: #f6f7f9; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
         background: var(--bg); }
  header, main { max-width: 1000px; margin: 0 auto; padding: 0 16px; }
  header { padding-top: 18px; }
  h1 { font-size: 22px; margin: 0 0 2px; }
  header p { margin: 0 0 14px; color: var(--muted); }
  form { display: flex; flex-wrap: wrap; gap: 12px 18px; align-items: end; background: #fff;
         border: 1px solid var(--line); border-radius: 8px; padding: 14px; }
  label { display: flex; flex-direction: column; gap: 4px; font-size: 13px; color: var(--muted); }
  select, input[type=file] { font: inherit; color: var(--fg); }
  select { padding: 4px 6px; min-width: 9em; }
  button { font: inherit; padding: 7px 20px; border: 0; border-radius: 6px; background: var(--accent);
           color: #fff; cursor: pointer; }
  button:disabled { opacity: .55; cursor: progress; }
  #limits { flex-basis: 100%; margin: 0; font-size: 12px; color: var(--muted); }
  #message { min-height: 1.5em; margin: 10px 0; }
  #message.error { color: var(--bad); font-weight: 600; }
  #viewer { margin: 0 auto; max-width: 100%; }
  .compare { position: relative; user-select: none; touch-action: none; cursor: ew-resize;
             background: #fff; border: 1px solid var(--line); line-height: 0; }
  /* transparent pixels show a checkerboard: on both images, so the bicubic half hides the result beneath it */
  .compare img { display: block; width: 100%; height: auto; background-color: #fff;
                 background-image: repeating-conic-gradient(#c8cdd3 0 25%, #fff 0 50%); background-size: 16px 16px; }
  .compare.pixels img { image-rendering: pixelated; }
  #bicubic-img { position: absolute; inset: 0; height: 100%; clip-path: inset(0 50% 0 0); }
  #divider { position: absolute; top: 0; bottom: 0; left: 50%; width: 2px; margin-left: -1px; background: #fff;
             box-shadow: 0 0 3px rgba(0, 0, 0, .6); pointer-events: none; }
  .tag { position: absolute; top: 8px; padding: 2px 8px; border-radius: 4px; font-size: 12px; line-height: 1.5;
         color: #fff; background: rgba(0, 0, 0, .55); pointer-events: none; }
  .tag.left { left: 8px; } .tag.right { right: 8px; }
  #slider { display: block; width: 100%; margin: 8px 0 4px; }
  #info { color: var(--muted); margin: 6px 0; }
  #download { display: inline-block; margin: 4px 0 12px; font-weight: 600; color: var(--accent); }
  .estimates { display: flex; flex-wrap: wrap; gap: 18px; }
  figure { margin: 0; background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px; }
  figure img { display: block; width: 256px; height: 256px; object-fit: contain; image-rendering: pixelated;
               background: #000; }
  figcaption { margin-top: 6px; font-size: 13px; color: var(--muted); max-width: 256px; }
  [hidden] { display: none !important; }
</style>
</head>
<body>
<header>
  <h1>blindsr</h1>
  <p>Blind super-resolution: the model estimates the blur and noise of your image, then restores it.</p>
</header>
<main>
  <form id="form" novalidate>
    <label>Image <input type="file" id="file" name="file" accept="image/*"></label>
    <label>Model <select id="model" name="model"></select></label>
    <label>Output scale <select id="outscale" name="outscale"></select></label>
    <button id="run" type="submit">Upscale</button>
    <p id="limits"></p>
  </form>
  <p id="message" role="status" aria-live="polite"></p>
  <section id="result" hidden>
    <div id="viewer">
    <div id="compare" class="compare">
      <img id="result-img" alt="model output">
      <img id="bicubic-img" alt="input enlarged with bicubic">
      <div id="divider"></div>
      <span class="tag left">bicubic</span><span class="tag right" id="model-tag">model</span>
    </div>
    <input id="slider" type="range" min="0" max="100" step="0.5" value="50"
           aria-label="comparison: share of the image shown as bicubic">
    </div>
    <p id="info"></p>
    <a id="download" href="#" download>Download the result (PNG)</a>
    <div class="estimates">
      <figure id="kernel-fig"><img id="kernel-img" alt="estimated blur kernel">
        <figcaption id="kernel-caption">estimated blur kernel (enlarged)</figcaption></figure>
      <figure id="noise-fig"><img id="noise-img" alt="estimated noise map">
        <figcaption id="noise-caption">estimated noise map</figcaption></figure>
    </div>
  </section>
</main>
<script>
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const form = $("form"), fileInput = $("file"), modelSelect = $("model"), scaleSelect = $("outscale");
  const runButton = $("run"), message = $("message"), slider = $("slider"), compare = $("compare");
  let limits = { max_upload_bytes: Infinity, max_pixels: Infinity };
  let models = [];

  function say(text, isError) {
    message.textContent = text;
    message.className = isError ? "error" : "";
  }
  function megabytes(n) { return (n / 1e6).toFixed(n < 1e7 ? 1 : 0) + " MB"; }

  function fillScales() {
    const model = models.find((m) => m.name === modelSelect.value);
    scaleSelect.textContent = "";
    if (!model) { return; }
    for (let s = 1; s <= model.scale; s++) {
      const option = new Option("x" + s + (s === model.scale ? " (native)" : ""), String(s));
      option.selected = s === model.scale;
      scaleSelect.add(option);
    }
  }

  async function loadModels() {
    try {
      const response = await fetch("api/models");
      const data = await response.json();
      if (!response.ok) { throw new Error(data.error || "HTTP " + response.status); }
      models = data.models;
      limits = data.limits;
      for (const m of models) {
        const option = new Option(m.name + " (x" + m.scale + ")", m.name);
        option.title = m.description;
        option.selected = m.name === data.default;
        modelSelect.add(option);
      }
      fillScales();
      $("limits").textContent = "Up to " + megabytes(limits.max_upload_bytes) + " and " +
        (limits.max_pixels / 1e6).toFixed(1) + " megapixels per image; one image at a time. " +
        "Transparency is kept (shown on a checkerboard); gray stays gray.";
      if (!models.length) { say("No model is available on this server.", true); runButton.disabled = true; }
    } catch (err) {
      say("Cannot list the models: " + err.message, true);
      runButton.disabled = true;
    }
  }

  function setSplit(percent) {
    const p = Math.min(100, Math.max(0, percent));
    $("bicubic-img").style.clipPath = "inset(0 " + (100 - p) + "% 0 0)";
    $("divider").style.left = p + "%";
  }
  slider.addEventListener("input", () => setSplit(Number(slider.value)));
  function dragTo(event) {
    const box = compare.getBoundingClientRect();
    slider.value = String(((event.clientX - box.left) / box.width) * 100);
    setSplit(Number(slider.value));
  }
  compare.addEventListener("pointerdown", (event) => {
    compare.setPointerCapture(event.pointerId);
    dragTo(event);
  });
  compare.addEventListener("pointermove", (event) => {
    if (compare.hasPointerCapture(event.pointerId)) { dragTo(event); }
  });

  function loaded(img, url) {
    return new Promise((resolve, reject) => {
      img.onload = () => resolve();
      img.onerror = () => reject(new Error("cannot load " + url));
      img.src = url;
    });
  }

  function describe(data) {
    const parts = [
      data.input.width + "\\u00d7" + data.input.height + " \\u2192 " + data.output.width + "\\u00d7" +
        data.output.height + " (x" + data.outscale + ") with " + data.model + " in " + data.seconds.toFixed(2) + " s",
    ];
    if (data.tile !== null) { parts.push("tile " + data.tile); }
    const e = data.estimate;
    if (e && e.kernel_sigma !== null) { parts.push("kernel " + e.kernel_size + "\\u00d7" + e.kernel_size +
      ", \\u03c3 \\u2248 " + e.kernel_sigma.toFixed(2) + " px (unreliable: the shipped DMSR models' estimate " +
      "barely follows the true blur, r \\u2264 0.38 on Set5; docs/results.md section 15)"); }
    if (e && e.noise_sigma !== null) { parts.push("noise \\u03c3 \\u2248 " + e.noise_sigma.toFixed(1) + " / 255"); }
    return parts.join(" \\u00b7 ");
  }

  async function show(data) {
    const waits = [loaded($("result-img"), data.urls.result), loaded($("bicubic-img"), data.urls.bicubic)];
    for (const name of ["kernel", "noise"]) {
      $(name + "-fig").hidden = !data.urls[name];
      if (data.urls[name]) { waits.push(loaded($(name + "-img"), data.urls[name])); }
    }
    await Promise.all(waits);
    $("model-tag").textContent = data.model;
    $("info").textContent = describe(data);
    $("download").href = data.urls.download;
    $("download").setAttribute("download", data.download_name);
    // small results are enlarged by a whole factor, pixel by pixel, so the comparison shows the model's pixels
    // rather than the browser's interpolation; large ones are shrunk to the page width and to 800 px in height
    const zoom = Math.max(1, Math.floor(Math.min(960 / data.output.width, 640 / data.output.height)));
    const fit = Math.min(1, 800 / (data.output.height * zoom));
    $("viewer").style.width = Math.round(data.output.width * zoom * fit) + "px";
    compare.classList.toggle("pixels", zoom > 1);
    slider.value = "50";
    setSplit(50);
    $("result").hidden = false;
  }

  modelSelect.addEventListener("change", fillScales);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = fileInput.files[0];
    if (!file) { say("Choose an image first.", true); return; }
    if (file.size > limits.max_upload_bytes) {
      say(file.name + " is " + megabytes(file.size) + "; the limit is " + megabytes(limits.max_upload_bytes) + ".",
          true);
      return;
    }
    const body = new FormData();
    body.append("file", file);
    body.append("model", modelSelect.value);
    body.append("outscale", scaleSelect.value);
    runButton.disabled = true;
    say("Upscaling " + file.name + " \\u2026", false);
    const started = performance.now();
    try {
      const response = await fetch("api/upscale", { method: "POST", body: body });
      let data;
      try { data = await response.json(); } catch (err) { data = { error: "HTTP " + response.status }; }
      if (!response.ok) { throw new Error(data.error || "HTTP " + response.status); }
      await show(data);
      say("Done in " + ((performance.now() - started) / 1000).toFixed(1) + " s. Drag the image or the slider to " +
          "compare.", false);
    } catch (err) {
      say(err.message, true);
    } finally {
      runButton.disabled = false;
    }
  });

  loadModels();
})();
</script>
</body>
</html>
"""
"""The page served at ``/``."""
