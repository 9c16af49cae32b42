// The view: the DOM around the canvas, the layout of the panels, and a frame loop that sleeps.
// While the time axis moves (a live run) the loop draws at most max_fps times a second; otherwise it
// draws once and sleeps, with no animation frame pending, until something wakes it: a batch or a
// message (the store's listeners), a synced setting, the pointer, a resize (ResizeObserver) or a
// theme switch (MutationObserver on <body>). data-frames counts frames drawn, data-ticks animation
// frames run, data-sleeping says whether one is pending: a test reads them to see the loop asleep.

const SETTINGS = ["window_s", "max_connections", "cursor_t", "span", "title", "height", "workers", "max_fps", "show_holders"];
const STRIP_EVERY_MS = 250;

function layout(s, W, H, [t0, t1, tEnd]) {
  // Where each panel goes: the timeline across the top, then occupancy, waits and service side by side.
  const left = 58, right = W - 10, top = 16, { starts, rows } = groupStarts(s, t0), lanes = Math.max(rows, 1);
  const timelineH = Math.round(H * 0.55), laneH = Math.min(48, (timelineH - 34) / (lanes + 1));
  const times = s.cols.t || [];
  const lo = Math.max(0, lowerBound(times, s.n, t0) - 1), hi = lowerBound(times, s.n, tEnd + 1e-9);
  const x = (t) => left + ((t - t0) / (t1 - t0 || 1)) * (right - left);
  const y0 = timelineH + 22, y1 = H - 22, occRight = left + (right - left) * 0.5;
  const waitsLeft = occRight + 30, waitsRight = waitsLeft + (right - waitsLeft) * 0.5 - 12;
  return {
    t0, t1, tEnd, left, right, top, laneH, lanes, waitY: top + lanes * laneH, timelineH, x, H, lo, hi, starts,
    limit: limitAt(s, tEnd),
    boxes: { occupancy: { x0: left, x1: occRight, y0, y1 }, waits: { x0: waitsLeft, x1: waitsRight, y0, y1 },
      service: { x0: waitsRight + 24, x1: right, y0, y1 } },
  };
}

function buildDom(el) {
  // Every colour is a JupyterLab variable with a light fallback, so the DOM follows a theme switch by itself.
  const make = (tag, className, css) => {
    const node = document.createElement(tag);
    node.className = className;
    node.style.cssText = css;
    return node;
  };
  const font = "var(--jp-ui-font-family, sans-serif)", ink = "var(--jp-ui-font-color1, rgba(0, 0, 0, 0.87))";
  el.classList.add("poolviz-live");
  el.style.color = ink;
  const title = make("div", "poolviz-live-title", `font:bold 12px ${font};margin:2px 0;color:var(--jp-ui-font-color0, #000)`);
  const bar = make("div", "poolviz-live-bar", "display:flex;gap:8px;align-items:center;flex-wrap:wrap");
  const pause = make("button", "poolviz-live-pause", `font:12px ${font};padding:1px 8px;color:${ink};` +
    "background:var(--jp-layout-color2, #eeeeee);border:1px solid var(--jp-border-color1, #bdbdbd);border-radius:2px");
  const numbers = make("span", "poolviz-live-numbers", `font:12px var(--jp-code-font-family, monospace);white-space:pre-wrap;color:${ink}`);
  bar.append(pause, numbers);
  const wrap = make("div", "poolviz-live-wrap", "position:relative");
  const canvas = make("canvas", "poolviz-live-canvas",
    "display:block;width:100%;box-sizing:border-box;border:1px solid var(--jp-border-color2, #e0e0e0)");
  const tip = make("div", "poolviz-live-tip", "position:absolute;display:none;pointer-events:none;" +
    `background:var(--jp-layout-color1, #ffffff);color:${ink};border:1px solid var(--jp-border-color1, #999);` +
    "padding:3px 6px;font:11px var(--jp-code-font-family, monospace);white-space:pre;z-index:5");
  wrap.append(canvas, tip);
  const holders = buildHolders(make, ink);
  el.append(title, bar, wrap, holders.box);
  return { title, pause, numbers, canvas, tip, holders };
}

function newView(model, el) {
  return { model, el, s: storeFor(model), dom: buildDom(el), mouse: null, frozenEnd: null, geo: null, raf: 0,
    dirty: true, paletteKey: "", lastDraw: 0, lastStrip: 0, frames: 0, ticks: 0, fpsCount: 0, fpsSince: performance.now(), fps: 0 };
}

function cursorSet(v) {
  const cursor = v.model.get("cursor_t");
  return cursor !== null && cursor !== undefined;
}

function currentEnd(v) {
  const s = v.s;
  if (cursorSet(v)) return v.model.get("cursor_t");
  if (s.ended !== null) return s.ended;
  if (!s.batches) return 0;
  return s.nowK + (performance.now() - s.recvAt) / 1000;
}

function axis(v) {
  const span = v.model.get("span");
  const end = v.frozenEnd !== null ? v.frozenEnd : currentEnd(v);
  if (span && span.length === 2) return [span[0], span[1], Math.min(end, span[1])];
  const w = v.model.get("window_s");
  return [Math.max(0, end - w), Math.max(end, w), end];
}

function moving(v) {
  // The time axis moves with the kernel's clock only during a live run that is neither paused nor replayed.
  return v.s.ended === null && v.s.batches > 0 && v.frozenEnd === null && !cursorSet(v);
}

function sizeCanvas(v) {
  const { canvas } = v.dom, dpr = window.devicePixelRatio || 1;
  const W = Math.max(300, canvas.clientWidth || v.el.clientWidth || 900), H = v.model.get("height");
  if (canvas.width !== Math.round(W * dpr) || canvas.height !== Math.round(H * dpr)) {
    canvas.width = Math.round(W * dpr); canvas.height = Math.round(H * dpr); canvas.style.height = `${H}px`;
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return { ctx, W, H };
}

function draw(v, settled) {
  const { model, s, el } = v;
  const { ctx, W, H } = sizeCanvas(v);
  const p = readPalette(el, ctx);
  v.paletteKey = p.key;
  ctx.fillStyle = p.bg; ctx.fillRect(0, 0, W, H);
  ctx.font = `11px ${p.font}`;
  const g = v.geo = layout(s, W, H, axis(v));
  const cursor = cursorSet(v);
  const n = viewNumbers(s, g.t0, g.tEnd, g.hi, cursor ? serviceUpTo(s, g.hi) : s.service, model.get("workers"));
  drawTimeline(ctx, s, g, p);
  drawCrosshair(ctx, g, p, v.mouse);
  drawOccupancy(ctx, s, g, g.boxes.occupancy, n, p);
  drawWaits(ctx, g, g.boxes.waits, n, p);
  drawService(ctx, g, g.boxes.service, n, p);
  const now = performance.now();
  // The strip is text: refreshed four times a second while live, and always on a settled picture.
  if (settled || now - v.lastStrip > STRIP_EVERY_MS) {
    v.lastStrip = now;
    drawStrip(el, v.dom.numbers, s, n, g, cursor ? totalsUpTo(s, g.hi) : s.totals, settled ? null : v.fps);
    if (model.get("show_holders")) showHolders(el, v.dom.holders, s, g.tEnd, moving(v), p);
  }
  Object.assign(el.dataset, { theme: p.dark ? "dark" : "light", bg: p.bg, fg: p.text, width: String(W), t: g.tEnd.toFixed(3),
    lanes: String(g.lanes), laneTop: String(g.top), laneHeight: g.laneH.toFixed(2) });
}

function wake(v) {
  v.dirty = true;
  if (!v.raf) v.raf = requestAnimationFrame((now) => tick(v, now));
  v.el.dataset.sleeping = "false";
}

function tick(v, now) {
  v.raf = 0;
  v.ticks++;
  const live = moving(v);
  const due = now - v.lastDraw >= 1000 / Math.max(1, v.model.get("max_fps")) - 1;
  if ((live || v.dirty) && due) {
    v.lastDraw = now;
    if (live && !v.model.get("span").length) trim(v.s, currentEnd(v) - Math.max(30, 3 * v.model.get("window_s")));
    v.dirty = false;
    draw(v, !live);
    v.frames++; v.fpsCount++;
    if (now - v.fpsSince >= 1000) { v.fps = (v.fpsCount * 1000) / (now - v.fpsSince); v.fpsCount = 0; v.fpsSince = now; }
  }
  // Another frame only while the axis moves or a draw is still owed (held back by max_fps): else sleep.
  if (live || v.dirty) v.raf = requestAnimationFrame((next) => tick(v, next));
  const s = v.s;
  Object.assign(v.el.dataset, { frames: String(v.frames), ticks: String(v.ticks), events: String(s.n),
    batches: String(s.batches), fps: v.fps.toFixed(1), lost: String(s.lost), running: String(live),
    sleeping: String(!v.raf) });
}

function onHover(v, ev) {
  const { canvas, tip } = v.dom, rect = canvas.getBoundingClientRect();
  v.mouse = { x: ev.clientX - rect.left, y: ev.clientY - rect.top };
  wake(v);
  const hold = v.geo ? holdAt(v.s, v.geo, v.mouse) : null, text = hold ? holdText(v.s, hold, v.geo.tEnd) : null;
  // What a test reads: the site of the hold under the pointer ("" when none).
  v.el.dataset.hoverSite = hold ? v.s.sites[hold.site] ?? "" : "";
  tip.style.display = text ? "block" : "none";
  if (!text) return;
  tip.textContent = text;
  // Beside the pointer, on its left where the right would run past the canvas's edge.
  const right = v.mouse.x + 12 + tip.offsetWidth > canvas.clientWidth;
  tip.style.left = `${Math.max(0, right ? v.mouse.x - 12 - tip.offsetWidth : v.mouse.x + 12)}px`;
  tip.style.top = `${v.mouse.y + 12}px`;
}

function render({ model, el }) {
  const v = newView(model, el), { pause, title, canvas, tip } = v.dom;
  const wakeUp = () => wake(v);
  const setPause = () => { pause.textContent = model.get("paused") ? "resume" : "pause"; };
  pause.onclick = () => {
    v.frozenEnd = model.get("paused") ? null : currentEnd(v);
    model.set("paused", !model.get("paused"));
    model.save_changes();
  };
  const onPaused = () => {
    if (!model.get("paused")) v.frozenEnd = null; else if (v.frozenEnd === null) v.frozenEnd = currentEnd(v);
    setPause(); wakeUp();
  };
  const onSetting = () => {
    title.textContent = model.get("title");
    v.dom.holders.box.style.display = model.get("show_holders") ? "" : "none";
    wakeUp();
  };
  const hover = (ev) => onHover(v, ev);
  const leave = () => { v.mouse = null; tip.style.display = "none"; wakeUp(); };
  model.on("change:paused", onPaused);
  for (const name of SETTINGS) model.on(`change:${name}`, onSetting);
  v.s.listeners.add(wakeUp);
  canvas.addEventListener("mousemove", hover);
  canvas.addEventListener("mouseleave", leave);
  const resize = new ResizeObserver(wakeUp);
  resize.observe(el);
  // A theme switch wakes the loop only when the colours it would read differ from the last frame's.
  const stopWatchingTheme = watchTheme(el, () => {
    if (readPalette(el, canvas.getContext("2d")).key !== v.paletteKey) wakeUp();
  });
  setPause();
  onSetting();
  return () => {
    cancelAnimationFrame(v.raf);
    v.raf = 0;
    resize.disconnect();
    stopWatchingTheme();
    v.s.listeners.delete(wakeUp);
    canvas.removeEventListener("mousemove", hover);
    canvas.removeEventListener("mouseleave", leave);
    model.off("change:paused", onPaused);
    for (const name of SETTINGS) model.off(`change:${name}`, onSetting);
  };
}

// For tests that run the view's arithmetic without a browser (node): anywidget uses the default export.
export { newStore, ingest, gone, serviceUpTo, viewNumbers, occupancyMeans, decodeBatch, threadColour, holdersAt, holdText,
  groupStarts };

export default {
  initialize({ model }) {
    storeFor(model);
    // Batches sent before this module loaded are lost: ask the kernel for them again.
    model.send({ type: "hello" });
  },
  render,
};
