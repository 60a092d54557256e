// The mask editor (editor.html): paint the area to repaint over an image, then post it as a PNG
// at the image's size (white = repaint, black = keep) with a prompt and a mode.
//
// The mask is an offscreen canvas at the image's natural size whose alpha is the mask; the
// visible canvas shows it tinted over the image, with the gesture under way. Pointer Events, so
// mouse, pen (its pressure scales the brush) and touch all paint; two fingers pan and pinch.
// Test hooks: window.atelierMask (maskDataUrl(), coverage(), fillRect(), ...; see the end).
"use strict";
(() => {
  const root = document.getElementById("mask-editor");
  if (!root) return;

  const W = Number(root.dataset.width);
  const H = Number(root.dataset.height);
  const INK = [255, 45, 111]; // how the mask looks on screen; only its alpha is the mask
  const INK_CSS = `rgb(${INK.join(",")})`;
  const SHOWN_ALPHA = 0.55;
  const HISTORY_BYTES = 48 * 1024 * 1024; // undo snapshots (one byte a pixel) kept at most
  const HISTORY_STEPS = 100;
  const ZOOM_STEP = 1.5;
  const ZOOM_MAX = 16; // times the fitted size
  const PAINTING = new Set(["brush", "eraser"]);
  const $ = (id) => document.getElementById(id);

  const ui = {
    canvas: $("mask-canvas"),
    picture: $("mask-image"),
    viewport: $("mask-viewport"),
    layers: $("mask-layers"),
    size: $("brush-size"),
    sizeValue: $("brush-size-value"),
    feather: $("feather"),
    featherValue: $("feather-value"),
    undo: $("mask-undo"),
    redo: $("mask-redo"),
    zoomValue: $("zoom-value"),
    form: $("mask-form"),
    prompt: $("mask-prompt"),
    status: $("mask-status"),
    submits: [$("submit-inpaint"), $("submit-region")],
    tools: [...root.querySelectorAll("[data-tool]")],
  };
  const mask = document.createElement("canvas");
  mask.width = W;
  mask.height = H;
  const ink = mask.getContext("2d", { willReadFrequently: true });
  const view = ui.canvas.getContext("2d");

  const state = {
    tool: "brush",
    zoom: 1, // times the fitted size
    fit: 1, // screen pixels per image pixel when fitted
    stroke: null, // the gesture under way
    pointers: new Map(), // pointer id -> client position (two fingers pan and pinch)
    pinch: null,
    hover: null, // where the brush outline shows (image pixels)
    busy: false,
  };
  const history = { past: [], future: [] };

  // The mask's pixels: alpha snapshots, one byte a pixel

  function alphaOf(context) {
    const rgba = context.getImageData(0, 0, W, H).data;
    const alpha = new Uint8ClampedArray(W * H);
    for (let i = 0; i < alpha.length; i++) alpha[i] = rgba[i * 4 + 3];
    return alpha;
  }

  function putAlpha(alpha) {
    const image = ink.createImageData(W, H);
    for (let i = 0; i < alpha.length; i++) {
      const o = i * 4;
      image.data[o] = INK[0];
      image.data[o + 1] = INK[1];
      image.data[o + 2] = INK[2];
      image.data[o + 3] = alpha[i];
    }
    ink.putImageData(image, 0, 0);
  }

  // Undo and redo

  function remember(before) {
    history.past.push(before);
    history.future.length = 0;
    const most = Math.max(1, Math.min(HISTORY_STEPS, Math.floor(HISTORY_BYTES / (W * H))));
    while (history.past.length > most) history.past.shift();
    changed();
  }

  function undo() {
    if (!history.past.length || state.stroke) return;
    history.future.push(alphaOf(ink));
    putAlpha(history.past.pop());
    changed();
  }

  function redo() {
    if (!history.future.length || state.stroke) return;
    history.past.push(alphaOf(ink));
    putAlpha(history.future.pop());
    changed();
  }

  function changed() {
    ui.undo.disabled = !history.past.length;
    ui.redo.disabled = !history.future.length;
    redraw();
  }

  // Edits of the whole mask

  function edit(change) {
    const before = alphaOf(ink);
    change();
    remember(before);
  }

  function invert() {
    edit(() => putAlpha(alphaOf(ink).map((a) => 255 - a)));
  }

  function clear() {
    edit(() => ink.clearRect(0, 0, W, H));
  }

  function fillRect(x, y, width, height) {
    edit(() => {
      ink.fillStyle = INK_CSS;
      ink.fillRect(x, y, width, height);
    });
  }

  // Painting: brush and eraser dabs and lines, boxes and lasso shapes, in image pixels

  function brushWidth(event) {
    const size = Number(ui.size.value);
    // A pen's pressure scales its stroke (a quarter at the lightest); mouse and touch paint at full size.
    if (event.pointerType === "pen" && event.pressure > 0) return size * (0.25 + 0.75 * event.pressure);
    return size;
  }

  function withInk(erase, draw) {
    ink.save();
    ink.globalCompositeOperation = erase ? "destination-out" : "source-over";
    ink.fillStyle = INK_CSS;
    ink.strokeStyle = INK_CSS;
    draw();
    ink.restore();
  }

  function dab(point, width, erase) {
    withInk(erase, () => {
      ink.beginPath();
      ink.arc(point.x, point.y, width / 2, 0, Math.PI * 2);
      ink.fill();
    });
  }

  function line(from, to, width, erase) {
    withInk(erase, () => {
      ink.lineWidth = width;
      ink.lineCap = "round";
      ink.lineJoin = "round";
      ink.beginPath();
      ink.moveTo(from.x, from.y);
      ink.lineTo(to.x, to.y);
      ink.stroke();
    });
  }

  function boxOf(a, b) {
    return { x: Math.min(a.x, b.x), y: Math.min(a.y, b.y), w: Math.abs(a.x - b.x), h: Math.abs(a.y - b.y) };
  }

  function tracePolygon(context, points) {
    context.beginPath();
    context.moveTo(points[0].x, points[0].y);
    for (const point of points.slice(1)) context.lineTo(point.x, point.y);
    context.closePath();
  }

  // A gesture: begun on pointerdown, extended on each move, finished (or abandoned) at the end

  function toImage(event) {
    const box = ui.canvas.getBoundingClientRect();
    return { x: ((event.clientX - box.left) * W) / box.width, y: ((event.clientY - box.top) * H) / box.height };
  }

  function begin(event) {
    const tool = event.button === 1 ? "pan" : state.tool; // the middle button pans with any tool
    if (tool === "pan") {
      const { scrollLeft: left, scrollTop: top } = ui.viewport;
      return { tool, x: event.clientX, y: event.clientY, left, top };
    }
    const point = toImage(event);
    const stroke = { tool, before: alphaOf(ink), start: point, last: point, points: [point] };
    if (PAINTING.has(tool)) dab(point, brushWidth(event), tool === "eraser");
    return stroke;
  }

  function extend(stroke, event) {
    if (stroke.tool === "pan") {
      ui.viewport.scrollLeft = stroke.left - (event.clientX - stroke.x);
      ui.viewport.scrollTop = stroke.top - (event.clientY - stroke.y);
      return;
    }
    const coalesced = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const each of coalesced.length ? coalesced : [event]) {
      const point = toImage(each);
      if (PAINTING.has(stroke.tool)) line(stroke.last, point, brushWidth(each), stroke.tool === "eraser");
      else if (stroke.tool === "lasso") stroke.points.push(point);
      stroke.last = point;
    }
  }

  function finish(stroke) {
    if (stroke.tool === "pan") return;
    if (stroke.tool === "box") {
      const box = boxOf(stroke.start, stroke.last);
      if (box.w < 1 || box.h < 1) return; // a click, not a box
      withInk(false, () => ink.fillRect(box.x, box.y, box.w, box.h));
    } else if (stroke.tool === "lasso") {
      if (stroke.points.length < 3) return;
      withInk(false, () => {
        tracePolygon(ink, stroke.points);
        ink.fill();
      });
    }
    remember(stroke.before);
  }

  function abandon(stroke) {
    if (stroke.before) putAlpha(stroke.before);
  }

  // Two fingers: pan with their centre, zoom with their spread (no painting meanwhile)

  function fingers() {
    const [a, b] = [...state.pointers.values()];
    return { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2, spread: Math.hypot(a.x - b.x, a.y - b.y) };
  }

  function pinchMove() {
    const now = fingers();
    const pinch = state.pinch;
    ui.viewport.scrollLeft -= now.x - pinch.x;
    ui.viewport.scrollTop -= now.y - pinch.y;
    if (pinch.spread > 0) setZoom((pinch.zoom * now.spread) / pinch.spread, now);
    pinch.x = now.x;
    pinch.y = now.y;
  }

  function onDown(event) {
    if (state.busy || (event.pointerType === "mouse" && event.button !== 0 && event.button !== 1)) return;
    event.preventDefault();
    try {
      ui.canvas.setPointerCapture(event.pointerId);
    } catch {
      // a pointer that is already gone: nothing to capture
    }
    state.pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
    if (state.pointers.size === 2) {
      if (state.stroke) abandon(state.stroke); // a second finger: the stroke was the start of a gesture
      state.stroke = null;
      state.pinch = { ...fingers(), zoom: state.zoom };
    } else if (state.pointers.size === 1) {
      state.stroke = begin(event);
    }
    redraw();
  }

  function onMove(event) {
    state.hover = event.pointerType === "touch" ? null : toImage(event);
    if (state.pointers.has(event.pointerId)) {
      state.pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
      if (state.pinch && state.pointers.size === 2) pinchMove();
      else if (state.stroke) extend(state.stroke, event);
    }
    redraw();
  }

  function onUp(event) {
    if (!state.pointers.delete(event.pointerId)) return;
    if (state.stroke) {
      if (event.type === "pointercancel") abandon(state.stroke);
      else finish(state.stroke);
      state.stroke = null;
    }
    if (state.pointers.size < 2) state.pinch = null; // the finger left behind does not paint
    redraw();
  }

  // Zoom: the image fitted to the viewport, times state.zoom; the viewport scrolls when larger

  function layout() {
    const width = ui.viewport.clientWidth || W;
    const height = Math.max(160, window.innerHeight * 0.7);
    state.fit = Math.min(width / W, height / H);
    applyZoom();
  }

  function applyZoom() {
    const scale = state.fit * state.zoom;
    ui.layers.style.width = `${W * scale}px`;
    ui.layers.classList.toggle("pixelated", scale >= 3);
    ui.zoomValue.textContent = `${Math.round(state.zoom * 100)}%`;
    redraw();
  }

  function setZoom(zoom, anchor) {
    // The image point under the anchor (a client position; the viewport's centre) stays there.
    const frame = ui.viewport.getBoundingClientRect();
    const at = anchor || { x: frame.left + frame.width / 2, y: frame.top + frame.height / 2 };
    const before = ui.canvas.getBoundingClientRect();
    const spot = { x: (at.x - before.left) / before.width, y: (at.y - before.top) / before.height };
    state.zoom = Math.min(ZOOM_MAX, Math.max(1, zoom));
    applyZoom();
    const after = ui.canvas.getBoundingClientRect();
    ui.viewport.scrollLeft += after.left + spot.x * after.width - at.x;
    ui.viewport.scrollTop += after.top + spot.y * after.height - at.y;
  }

  const zoomIn = () => setZoom(state.zoom * ZOOM_STEP);
  const zoomOut = () => setZoom(state.zoom / ZOOM_STEP);
  const zoomFit = () => setZoom(1);

  // Drawing the visible canvas: the mask tinted, the shape being drawn, the brush outline

  let frame = 0;
  function redraw() {
    if (!frame) frame = requestAnimationFrame(render);
  }

  function render() {
    frame = 0;
    const stroke = state.stroke;
    const unit = W / (ui.canvas.getBoundingClientRect().width || W); // image pixels per screen pixel
    view.clearRect(0, 0, W, H);
    view.globalAlpha = SHOWN_ALPHA;
    view.drawImage(mask, 0, 0);
    view.fillStyle = INK_CSS;
    if (stroke && stroke.tool === "box") {
      const box = boxOf(stroke.start, stroke.last);
      view.fillRect(box.x, box.y, box.w, box.h);
    } else if (stroke && stroke.tool === "lasso" && stroke.points.length > 1) {
      tracePolygon(view, stroke.points);
      view.fill();
    }
    view.globalAlpha = 1;
    if (state.hover && PAINTING.has(state.tool) && !state.pinch) outline(state.hover, Number(ui.size.value) / 2, unit);
  }

  function outline(centre, radius, unit) {
    for (const [colour, width] of [["#17171a", 3], ["#ffffff", 1.5]]) {
      view.strokeStyle = colour;
      view.lineWidth = width * unit;
      view.beginPath();
      view.arc(centre.x, centre.y, Math.max(radius, unit), 0, Math.PI * 2);
      view.stroke();
    }
  }

  // The exported mask: white = repaint, black = keep, feathered by a blur of the chosen radius

  function boxBlur(source, target, radius, horizontal) {
    // A running sum along each row (or column); past the edges the border pixel repeats.
    const lines = horizontal ? H : W;
    const length = horizontal ? W : H;
    const step = horizontal ? 1 : W;
    const lineStep = horizontal ? W : 1;
    const span = 2 * radius + 1;
    for (let l = 0; l < lines; l++) {
      const base = l * lineStep;
      const at = (k) => source[base + Math.min(length - 1, Math.max(0, k)) * step];
      let sum = 0;
      for (let k = -radius; k <= radius; k++) sum += at(k);
      for (let k = 0; k < length; k++) {
        target[base + k * step] = sum / span;
        sum += at(k + radius + 1) - at(k - radius);
      }
    }
  }

  function feathered(alpha, radius) {
    // Three box blurs (close to a Gaussian) whose reaches add up to the radius.
    const pass = Math.max(1, Math.round(radius / 3));
    const a = Float32Array.from(alpha);
    const b = new Float32Array(a.length);
    for (let i = 0; i < 3; i++) {
      boxBlur(a, b, pass, true);
      boxBlur(b, a, pass, false);
    }
    return Uint8ClampedArray.from(a, (v) => Math.round(v));
  }

  function exportedAlpha() {
    const radius = Number(ui.feather.value);
    const alpha = alphaOf(ink);
    return radius > 0 ? feathered(alpha, radius) : alpha;
  }

  function exportCanvas(alpha) {
    const out = document.createElement("canvas");
    out.width = W;
    out.height = H;
    const context = out.getContext("2d");
    const image = context.createImageData(W, H);
    for (let i = 0; i < alpha.length; i++) {
      const o = i * 4;
      image.data[o] = image.data[o + 1] = image.data[o + 2] = alpha[i];
      image.data[o + 3] = 255;
    }
    context.putImageData(image, 0, 0);
    return out;
  }

  function coverage(alpha) {
    // The share of pixels the studio repaints: it reads a mask pixel as white from 128 up.
    let white = 0;
    for (const a of alpha) if (a >= 128) white++;
    return white / alpha.length;
  }

  function pngOf(canvas) {
    return new Promise((resolve, reject) => {
      canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("no PNG"))), "image/png");
    });
  }

  const maskDataUrl = () => exportCanvas(exportedAlpha()).toDataURL("image/png");
  const maskBlob = () => pngOf(exportCanvas(exportedAlpha()));

  // Sending: the same checks as the studio's, said at once; the studio's own answer otherwise

  function say(sentence, problem = false) {
    ui.status.textContent = sentence;
    ui.status.classList.toggle("error-text", problem);
  }

  function setBusy(busy) {
    state.busy = busy;
    for (const button of ui.submits) button.disabled = busy;
    root.setAttribute("aria-busy", String(busy));
  }

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  async function send(mode) {
    const prompt = ui.prompt.value.trim();
    const alpha = exportedAlpha();
    if (!coverage(alpha)) return say("Paint the area to repaint first: the mask is empty.", true);
    if (mode === "inpaint" && !prompt) {
      ui.prompt.focus();
      return say("Say what to paint in the masked area, or choose Vary region.", true);
    }
    setBusy(true);
    say(mode === "inpaint" ? "Sending the inpaint…" : "Sending the region variation…");
    try {
      const body = new FormData();
      body.append("mask", await pngOf(exportCanvas(alpha)), "mask.png");
      body.append("prompt", prompt);
      body.append("mode", mode);
      const response = await fetch(root.dataset.postUrl, {
        method: "POST",
        body,
        credentials: "same-origin",
        headers: { "X-CSRF-Token": csrfToken(), Accept: "application/json" },
      });
      const answer = await response.json().catch(() => ({}));
      if (response.ok && answer.job_url) {
        say("Started: opening its progress…");
        window.location.assign(answer.job_url);
        return;
      }
      say(answer.detail || `That did not work (error ${response.status}).`, true);
    } catch {
      say("The studio could not be reached; check the connection and try again.", true);
    }
    setBusy(false);
  }

  // Controls

  function setTool(tool) {
    state.tool = tool;
    ui.layers.dataset.tool = tool;
    for (const button of ui.tools) button.setAttribute("aria-pressed", String(button.dataset.tool === tool));
    redraw();
  }

  function showSliders() {
    ui.sizeValue.textContent = `${ui.size.value} px`;
    ui.featherValue.textContent = `${ui.feather.value} px`;
    redraw();
  }

  function setUpSliders() {
    const side = Math.max(W, H);
    ui.size.max = String(Math.max(8, Math.round(side / 4)));
    ui.size.value = String(Math.min(Number(ui.size.max), Math.max(2, Math.round(side / 16))));
    ui.feather.max = String(Math.max(4, Math.round(side / 16)));
    ui.feather.value = "0";
    showSliders();
  }

  const SHORTCUTS = { b: "brush", e: "eraser", r: "box", l: "lasso", h: "pan" };

  function onKey(event) {
    if (event.target.closest && event.target.closest("textarea, input:not([type=range])")) return;
    const key = event.key.toLowerCase();
    if ((event.ctrlKey || event.metaKey) && key === "z") {
      event.preventDefault();
      if (event.shiftKey) redo();
      else undo();
    } else if ((event.ctrlKey || event.metaKey) && key === "y") {
      event.preventDefault();
      redo();
    } else if (!event.ctrlKey && !event.metaKey && !event.altKey && SHORTCUTS[key]) {
      setTool(SHORTCUTS[key]);
    }
  }

  function wire() {
    ui.canvas.addEventListener("pointerdown", onDown);
    ui.canvas.addEventListener("pointermove", onMove);
    ui.canvas.addEventListener("pointerup", onUp);
    ui.canvas.addEventListener("pointercancel", onUp);
    ui.canvas.addEventListener("pointerleave", () => {
      state.hover = null;
      redraw();
    });
    ui.canvas.addEventListener("contextmenu", (event) => event.preventDefault());
    ui.viewport.addEventListener(
      "wheel",
      (event) => {
        if (!event.ctrlKey) return; // a plain wheel scrolls; Ctrl (and a trackpad pinch) zooms
        event.preventDefault();
        setZoom(state.zoom * (event.deltaY < 0 ? 1.15 : 1 / 1.15), { x: event.clientX, y: event.clientY });
      },
      { passive: false },
    );
    for (const button of ui.tools) button.addEventListener("click", () => setTool(button.dataset.tool));
    ui.undo.addEventListener("click", undo);
    ui.redo.addEventListener("click", redo);
    $("mask-invert").addEventListener("click", invert);
    $("mask-clear").addEventListener("click", clear);
    $("zoom-in").addEventListener("click", zoomIn);
    $("zoom-out").addEventListener("click", zoomOut);
    $("zoom-fit").addEventListener("click", zoomFit);
    ui.size.addEventListener("input", showSliders);
    ui.feather.addEventListener("input", showSliders);
    ui.form.addEventListener("submit", (event) => {
      event.preventDefault();
      send(event.submitter && event.submitter.value === "region" ? "region" : "inpaint");
    });
    document.addEventListener("keydown", onKey);
    window.addEventListener("resize", layout);
  }

  const ready = new Promise((resolve) => {
    function start() {
      layout();
      for (const button of ui.submits) button.disabled = false;
      root.dataset.ready = "true";
      resolve();
    }
    if (ui.picture.complete && ui.picture.naturalWidth) start();
    else {
      ui.picture.addEventListener("load", start, { once: true });
      ui.picture.addEventListener("error", () => say("The image could not be loaded; reload the page.", true));
    }
  });

  setUpSliders();
  setTool("brush");
  changed();
  wire();

  window.atelierMask = {
    ready,
    width: W,
    height: H,
    maskDataUrl,
    maskBlob,
    coverage: () => coverage(exportedAlpha()),
    fillRect,
    setTool,
    tool: () => state.tool,
    setBrushSize: (size) => {
      ui.size.value = String(size);
      showSliders();
    },
    setFeather: (radius) => {
      ui.feather.value = String(radius);
      showSliders();
    },
    undo,
    redo,
    canUndo: () => history.past.length > 0,
    canRedo: () => history.future.length > 0,
    invert,
    clear,
    zoomIn,
    zoomOut,
    zoomFit,
    zoom: () => state.zoom,
    send,
  };
})();
