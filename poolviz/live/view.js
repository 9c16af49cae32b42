// poolviz live view: draws a pool's events on a canvas. The kernel sends packed
// event batches (see poolviz/live/packing.py) about ten times a second; this
// module keeps a bounded window of them and redraws at most max_fps times a second.

const KINDS = ["connect", "checkout", "checkin", "wait", "timeout", "close", "error", "leak", "unleak", "dispose"];
const K = Object.fromEntries(KINDS.map((k, i) => [k, i]));
const COLUMNS = { dt: Float32Array, kind: Uint8Array, reason: Uint8Array, thread: Uint16Array, conn: Uint32Array,
  value: Float32Array, in_use: Uint16Array, idle: Uint16Array, waiting: Uint16Array };
const FONT = "11px sans-serif";
const stores = new WeakMap();

function newStore() {
  return { n: 0, cap: 0, cols: {}, threads: [], reasons: [""], holds: [], openHold: new Map(), waits: [],
    openWait: new Map(), marks: [], lanes: new Map(), laneFree: [], laneCount: 0, resizes: [], limit: null,
    nowK: 0, recvAt: 0, ended: null, lost: 0, dropped: 0, batches: 0, version: 0,
    totals: { checkouts: 0, timeouts: 0, opened: 0, closed: 0, leaks: 0 } };
}

function grow(s, need) {
  if (s.n + need <= s.cap) return;
  const cap = Math.max(4096, 2 * (s.n + need));
  const cols = { t: new Float64Array(cap) };
  for (const [name, Type] of Object.entries(COLUMNS)) if (name !== "dt") cols[name] = new Type(cap);
  for (const name of Object.keys(cols)) if (s.cols[name]) cols[name].set(s.cols[name].subarray(0, s.n));
  s.cols = cols;
  s.cap = cap;
}

function column(Type, dv) {
  return new Type(dv.buffer.slice(dv.byteOffset, dv.byteOffset + dv.byteLength));
}

function laneOf(s, conn) {
  let lane = s.lanes.get(conn);
  if (lane === undefined) {
    s.laneFree.sort((a, b) => a - b);
    lane = s.laneFree.length ? s.laneFree.shift() : s.laneCount++;
    s.lanes.set(conn, lane);
  }
  return lane;
}

function freeLane(s, conn) {
  const lane = s.lanes.get(conn);
  if (lane !== undefined) { s.lanes.delete(conn); s.laneFree.push(lane); }
}

function endHold(s, conn, t) {
  const hold = s.openHold.get(conn);
  if (hold) { hold.end = t; s.openHold.delete(conn); }
}

function ingest(s, msg, buffers) {
  for (const [id, name] of msg.threads) s.threads[id] = name;
  for (const [id, name] of msg.reasons) s.reasons[id] = name;
  const names = msg.columns;
  const col = {};
  names.forEach((name, i) => { col[name] = column(COLUMNS[name], buffers[i]); });
  const n = msg.n;
  grow(s, n);
  const c = s.cols;
  for (let i = 0; i < n; i++) {
    const j = s.n + i;
    const t = msg.t_base + col.dt[i];
    const kind = col.kind[i], conn = col.conn[i], thread = col.thread[i], value = col.value[i];
    c.t[j] = t; c.kind[j] = kind; c.reason[j] = col.reason[i]; c.thread[j] = thread; c.conn[j] = conn;
    c.value[j] = value; c.in_use[j] = col.in_use[i]; c.idle[j] = col.idle[i]; c.waiting[j] = col.waiting[i];
    if (kind === K.checkout) {
      s.totals.checkouts++;
      const wait = s.openWait.get(thread);
      if (wait) { wait.end = t; s.openWait.delete(thread); }
      else if (value > 0) s.waits.push({ thread, start: t - value, end: t, timedOut: false });
      const hold = { conn, lane: laneOf(s, conn), thread, start: t, end: NaN, wait: value };
      s.holds.push(hold);
      s.openHold.set(conn, hold);
    } else if (kind === K.checkin) {
      endHold(s, conn, t);
    } else if (kind === K.wait) {
      const wait = { thread, start: t, end: NaN, timedOut: false };
      s.waits.push(wait);
      s.openWait.set(thread, wait);
    } else if (kind === K.timeout) {
      s.totals.timeouts++;
      const wait = s.openWait.get(thread);
      if (wait) { wait.end = t; wait.timedOut = true; s.openWait.delete(thread); }
      s.marks.push({ t, kind, lane: -1, conn, reason: "" });
    } else if (kind === K.connect) {
      s.totals.opened++;
      s.marks.push({ t, kind, lane: laneOf(s, conn), conn, reason: "" });
    } else if (kind === K.close) {
      s.totals.closed++;
      endHold(s, conn, t);
      s.marks.push({ t, kind, lane: laneOf(s, conn), conn, reason: s.reasons[col.reason[i]] });
      freeLane(s, conn);
    } else if (kind === K.leak) {
      s.totals.leaks++;
      s.marks.push({ t, kind, lane: laneOf(s, conn), conn, reason: s.reasons[col.reason[i]] });
    } else if (kind === K.error) {
      s.marks.push({ t, kind, lane: -1, conn, reason: s.reasons[col.reason[i]] });
    } else if (kind === K.dispose) {
      for (const conn of [...s.openHold.keys()]) endHold(s, conn, t);
      for (const conn of [...s.lanes.keys()]) freeLane(s, conn);
    }
  }
  s.n += n;
  s.nowK = msg.now;
  s.recvAt = performance.now();
  s.lost += msg.lost;
  s.dropped = msg.dropped;
  s.batches++;
  s.version++;
}

function trim(s, before) {
  // Keep a bounded window: events, holds, waits and marks older than `before` go.
  const c = s.cols;
  let cut = 0;
  while (cut < s.n && c.t[cut] < before) cut++;
  if (cut < 2048) return;
  for (const name of Object.keys(c)) c[name].copyWithin(0, cut, s.n);
  s.n -= cut;
  const keep = (x) => !(x.end < before);
  s.holds = s.holds.filter(keep);
  s.waits = s.waits.filter(keep);
  s.marks = s.marks.filter((m) => m.t >= before);
}

function storeFor(model) {
  let s = stores.get(model);
  if (s) return s;
  s = newStore();
  s.limit = model.get("max_connections");
  stores.set(model, s);
  model.on("msg:custom", (msg, buffers) => {
    if (msg.type === "events") ingest(s, msg, buffers);
    else if (msg.type === "reset") { Object.assign(s, newStore()); s.limit = msg.max_connections; s.version++; }
    else if (msg.type === "resize") { s.resizes.push(msg); s.version++; }
    else if (msg.type === "end") { s.ended = msg.t; s.version++; }
  });
  return s;
}

function lowerBound(arr, n, x) {
  let lo = 0, hi = n;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (arr[mid] < x) lo = mid + 1; else hi = mid; }
  return lo;
}

function colour(thread, alpha = 1) {
  return `hsla(${(thread * 137.508) % 360}, 65%, 48%, ${alpha})`;
}

function quantile(sorted, q) {
  if (!sorted.length) return NaN;
  const pos = (sorted.length - 1) * q, lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

function ms(x) { return Number.isFinite(x) ? `${(x * 1000).toFixed(x < 0.01 ? 2 : 1)} ms` : "–"; }

function limitAt(s, t) {
  // The limit in force at t: the last resize before it, else the first resize's old value, else the start value.
  let limit = s.resizes.length ? s.resizes[0].old : s.limit;
  for (const r of s.resizes) if (r.t <= t) limit = r.new;
  return limit;
}

function render({ model, el }) {
  const s = storeFor(model);
  el.classList.add("poolviz-live");
  const title = document.createElement("div");
  title.className = "poolviz-live-title";
  title.style.cssText = "font:bold 12px sans-serif;margin:2px 0";
  const bar = document.createElement("div");
  bar.style.cssText = "display:flex;gap:8px;align-items:center;font:12px sans-serif;flex-wrap:wrap";
  const pause = document.createElement("button");
  pause.className = "poolviz-live-pause";
  pause.style.cssText = "font:12px sans-serif;padding:1px 8px";
  const numbers = document.createElement("span");
  numbers.className = "poolviz-live-numbers";
  numbers.style.cssText = "font:12px monospace;white-space:pre-wrap";
  bar.append(pause, numbers);
  const wrap = document.createElement("div");
  wrap.style.cssText = "position:relative";
  const canvas = document.createElement("canvas");
  canvas.className = "poolviz-live-canvas";
  canvas.style.cssText = "display:block;width:100%;border:1px solid #ddd;background:#fff";
  const tip = document.createElement("div");
  tip.className = "poolviz-live-tip";
  tip.style.cssText = "position:absolute;display:none;pointer-events:none;background:rgba(255,255,255,.95);" +
    "border:1px solid #999;padding:3px 6px;font:11px monospace;white-space:pre;z-index:5";
  wrap.append(canvas, tip);
  el.append(title, bar, wrap);

  let raf = 0, lastDraw = 0, frames = 0, fpsCount = 0, fpsSince = performance.now(), fps = 0;
  let drawnVersion = -1, drawnEnd = NaN, mouse = null, frozenEnd = null, lastNumbers = 0;
  let geo = null;

  const setPause = () => { pause.textContent = model.get("paused") ? "resume" : "pause"; };
  pause.onclick = () => {
    frozenEnd = model.get("paused") ? null : currentEnd();
    model.set("paused", !model.get("paused"));
    model.save_changes();
  };
  const onPaused = () => { if (!model.get("paused")) frozenEnd = null; else if (frozenEnd === null) frozenEnd = currentEnd(); setPause(); drawnVersion = -1; };
  const onAny = () => { drawnVersion = -1; title.textContent = model.get("title"); };
  model.on("change:paused", onPaused);
  for (const name of ["window_s", "max_connections", "cursor_t", "span", "title", "height"]) model.on(`change:${name}`, onAny);
  setPause();
  onAny();

  function currentEnd() {
    const cursor = model.get("cursor_t");
    if (cursor !== null && cursor !== undefined) return cursor;
    if (s.ended !== null) return s.ended;
    if (!s.batches) return 0;
    return s.nowK + (performance.now() - s.recvAt) / 1000;
  }

  function axis() {
    const span = model.get("span");
    const end = frozenEnd !== null ? frozenEnd : currentEnd();
    if (span && span.length === 2) return [span[0], span[1], Math.min(end, span[1])];
    const w = model.get("window_s");
    return [Math.max(0, end - w), Math.max(end, w), end];
  }

  function draw(settled) {
    const dpr = window.devicePixelRatio || 1;
    const W = Math.max(300, el.clientWidth || 900), H = model.get("height");
    if (canvas.width !== Math.round(W * dpr) || canvas.height !== Math.round(H * dpr)) {
      canvas.width = Math.round(W * dpr); canvas.height = Math.round(H * dpr); canvas.style.height = `${H}px`;
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    ctx.font = FONT;
    const [t0, t1, tEnd] = axis();
    const c = s.cols;
    const left = 58, right = W - 10;
    const x = (t) => left + ((t - t0) / (t1 - t0 || 1)) * (right - left);
    const lanes = Math.max(s.laneCount, 1);
    const timelineH = Math.round(H * 0.55);
    const laneH = Math.min(48, (timelineH - 34) / (lanes + 1));
    const top = 16;
    const waitY = top + lanes * laneH;
    geo = { t0, t1, tEnd, left, right, top, laneH, lanes, waitY, timelineH, x };
    ctx.fillStyle = "#333";
    ctx.fillText("holds by connection (colour: thread)", left, 11);
    ctx.textAlign = "right";
    for (let l = 0; l < lanes; l++) {
      ctx.fillStyle = l % 2 ? "#f7f7f7" : "#fff";
      ctx.fillRect(left, top + l * laneH, right - left, laneH);
      ctx.fillStyle = "#555";
      ctx.fillText(`lane ${l + 1}`, left - 4, top + l * laneH + laneH * 0.7);
    }
    ctx.fillStyle = "#fff3e0";
    ctx.fillRect(left, waitY, right - left, laneH);
    ctx.fillStyle = "#555";
    ctx.fillText("waits", left - 4, waitY + laneH * 0.7);
    ctx.textAlign = "left";
    const limit = limitAt(s, tEnd);
    if (limit && limit < lanes) {
      ctx.strokeStyle = "#c62828"; ctx.setLineDash([5, 3]);
      ctx.beginPath(); ctx.moveTo(left, top + limit * laneH); ctx.lineTo(right, top + limit * laneH); ctx.stroke();
      ctx.setLineDash([]);
    }
    for (const h of s.holds) {
      if (h.start > tEnd) continue;
      const end = Number.isNaN(h.end) || h.end > tEnd ? tEnd : h.end;
      if (end < t0) continue;
      ctx.fillStyle = colour(h.thread, 0.85);
      const x0 = x(Math.max(h.start, t0));
      ctx.fillRect(x0, top + h.lane * laneH + 2, Math.max(1, x(end) - x0), laneH - 4);
    }
    for (const w of s.waits) {
      if (w.start > tEnd) continue;
      const end = Number.isNaN(w.end) || w.end > tEnd ? tEnd : w.end;
      if (end < t0) continue;
      ctx.fillStyle = w.timedOut ? "rgba(198,40,40,.8)" : colour(w.thread, 0.6);
      const x0 = x(Math.max(w.start, t0));
      ctx.fillRect(x0, waitY + 2 + (w.thread % 4) * (laneH - 4) / 4, Math.max(1, x(end) - x0), Math.max(1, (laneH - 4) / 4));
    }
    for (const m of s.marks) {
      if (m.t < t0 || m.t > tEnd) continue;
      const y = m.lane < 0 ? waitY + laneH / 2 : top + m.lane * laneH + laneH / 2;
      const px = x(m.t);
      if (m.kind === K.connect) { ctx.fillStyle = "#2e7d32"; ctx.beginPath(); ctx.moveTo(px, y - 5); ctx.lineTo(px + 6, y); ctx.lineTo(px, y + 5); ctx.fill(); }
      else if (m.kind === K.close) { ctx.strokeStyle = "#000"; ctx.beginPath(); ctx.moveTo(px - 4, y - 4); ctx.lineTo(px + 4, y + 4); ctx.moveTo(px + 4, y - 4); ctx.lineTo(px - 4, y + 4); ctx.stroke(); ctx.fillStyle = "#000"; ctx.fillText(m.reason, px + 5, y - 3); }
      else if (m.kind === K.timeout || m.kind === K.error) { ctx.fillStyle = "#c62828"; ctx.fillRect(px - 2, y - 6, 4, 12); }
      else if (m.kind === K.leak) { ctx.fillStyle = "#ef6c00"; ctx.font = "bold 14px sans-serif"; ctx.fillText("!", px - 2, y + 5); ctx.font = FONT; }
    }
    for (const r of s.resizes) {
      if (r.t < t0 || r.t > tEnd) continue;
      ctx.strokeStyle = "#7b1fa2"; ctx.beginPath(); ctx.moveTo(x(r.t), top); ctx.lineTo(x(r.t), H - 20); ctx.stroke();
      ctx.fillStyle = "#7b1fa2"; ctx.fillText(`${r.old}→${r.new}`, x(r.t) + 3, top + 10);
    }
    // Occupancy: in use and idle stacked upwards, waiting beneath the zero line.
    const occTop = timelineH + 22, occBottom = H - 22, occRight = left + (right - left) * 0.62;
    const ox = (t) => left + ((t - t0) / (t1 - t0 || 1)) * (occRight - left);
    const lo = Math.max(0, lowerBound(c.t || [], s.n, t0) - 1), hi = lowerBound(c.t || [], s.n, tEnd + 1e-9);
    let maxUp = Math.max(1, limit || 1), maxDown = 0;
    for (let i = lo; i < hi; i++) { maxUp = Math.max(maxUp, c.in_use[i] + c.idle[i]); maxDown = Math.max(maxDown, c.waiting[i]); }
    const scale = (occBottom - occTop) / (maxUp + maxDown || 1);
    const zero = occTop + maxUp * scale;
    ctx.fillStyle = "#333"; ctx.fillText("occupancy: in use, idle; waiting beneath", left, occTop - 6);
    ctx.strokeStyle = "#ccc"; ctx.strokeRect(left, occTop, occRight - left, occBottom - occTop);
    const band = (fill, lower, upper) => {
      if (hi <= lo) return;
      ctx.fillStyle = fill; ctx.beginPath();
      let px = ox(Math.max(t0, c.t[lo]));
      ctx.moveTo(px, zero - upper(lo) * scale);
      for (let i = lo + 1; i < hi; i++) { const nx = ox(Math.max(t0, c.t[i])); ctx.lineTo(nx, zero - upper(i - 1) * scale); ctx.lineTo(nx, zero - upper(i) * scale); px = nx; }
      ctx.lineTo(ox(tEnd), zero - upper(hi - 1) * scale);
      ctx.lineTo(ox(tEnd), zero - lower(hi - 1) * scale);
      for (let i = hi - 1; i > lo; i--) { const nx = ox(Math.max(t0, c.t[i])); ctx.lineTo(nx, zero - lower(i) * scale); ctx.lineTo(nx, zero - lower(i - 1) * scale); }
      ctx.lineTo(ox(Math.max(t0, c.t[lo])), zero - lower(lo) * scale);
      ctx.closePath(); ctx.fill();
    };
    band("rgba(25,118,210,.75)", () => 0, (i) => c.in_use[i]);
    band("rgba(129,199,132,.75)", (i) => c.in_use[i], (i) => c.in_use[i] + c.idle[i]);
    band("rgba(239,108,0,.7)", () => 0, (i) => -c.waiting[i]);
    ctx.strokeStyle = "#888"; ctx.beginPath(); ctx.moveTo(left, zero); ctx.lineTo(occRight, zero); ctx.stroke();
    if (limit) {
      ctx.strokeStyle = "#c62828"; ctx.setLineDash([5, 3]); ctx.beginPath();
      ctx.moveTo(left, zero - limitAt(s, t0) * scale);
      for (const r of s.resizes) if (r.t > t0 && r.t <= tEnd) { ctx.lineTo(ox(r.t), zero - r.old * scale); ctx.lineTo(ox(r.t), zero - r.new * scale); }
      ctx.lineTo(occRight, zero - limit * scale); ctx.stroke(); ctx.setLineDash([]);
      ctx.fillStyle = "#c62828"; ctx.fillText(`limit ${limit}`, occRight - 48, zero - limit * scale - 3);
    }
    ctx.fillStyle = "#555"; ctx.textAlign = "right";
    ctx.fillText(String(maxUp), left - 4, occTop + 8); ctx.fillText("0", left - 4, zero + 4);
    if (maxDown) ctx.fillText(`-${maxDown}`, left - 4, occBottom);
    ctx.textAlign = "left";
    ctx.fillText(`${t0.toFixed(1)} s`, left, H - 6);
    ctx.textAlign = "right"; ctx.fillText(`${t1.toFixed(1)} s`, occRight, H - 6); ctx.textAlign = "left";
    // Waits in the window: a histogram, and the numbers strip.
    const waits = [];
    let checkouts = 0;
    for (let i = lo; i < hi; i++) {
      if (c.t[i] < t0) continue;
      if (c.kind[i] === K.checkout) { waits.push(c.value[i]); checkouts++; } else if (c.kind[i] === K.timeout) waits.push(c.value[i]);
    }
    waits.sort((a, b) => a - b);
    const hx = occRight + 40, hw = right - hx;
    ctx.fillStyle = "#333"; ctx.fillText("wait before checkout (window)", hx, occTop - 6);
    ctx.strokeStyle = "#ccc"; ctx.strokeRect(hx, occTop, hw, occBottom - occTop);
    const top99 = Math.max(quantile(waits, 0.99) * 1.05, 1e-4);
    const bins = new Array(30).fill(0);
    for (const w of waits) bins[Math.min(29, Math.floor((w / top99) * 30))]++;
    const most = Math.max(1, ...bins);
    ctx.fillStyle = "rgba(239,108,0,.8)";
    bins.forEach((b, i) => { const h = (b / most) * (occBottom - occTop - 4); ctx.fillRect(hx + (i * hw) / 30, occBottom - h, hw / 30 - 1, h); });
    ctx.fillStyle = "#555"; ctx.fillText("0", hx, H - 6); ctx.textAlign = "right"; ctx.fillText(ms(top99), right, H - 6); ctx.textAlign = "left";
    if (mouse && mouse.x >= left && mouse.x <= right && mouse.y < waitY + laneH) {
      const tm = t0 + ((mouse.x - left) / (right - left)) * (t1 - t0);
      ctx.strokeStyle = "rgba(0,0,0,.5)"; ctx.beginPath(); ctx.moveTo(mouse.x, top); ctx.lineTo(mouse.x, waitY + laneH); ctx.stroke();
      ctx.fillStyle = "#000"; ctx.fillText(`t = ${tm.toFixed(3)} s`, Math.min(mouse.x + 4, right - 80), top - 4 + 12);
    }
    const now = performance.now();
    // The strip is text: refreshed four times a second while live, and always on a settled picture.
    if (settled || now - lastNumbers > 250) {
      lastNumbers = now;
      const last = hi > 0 ? hi - 1 : -1;
      const span = Math.max(1e-9, Math.min(t1, tEnd) - t0);
      // Totals up to the cursor in a replay; a live view trims old events, so it keeps running totals.
      let totals = s.totals;
      const cursor = model.get("cursor_t");
      if (cursor !== null && cursor !== undefined) {
        totals = { timeouts: 0, opened: 0, closed: 0, leaks: 0 };
        for (let i = 0; i < hi; i++) {
          const k = c.kind[i];
          if (k === K.timeout) totals.timeouts++;
          else if (k === K.connect) totals.opened++;
          else if (k === K.close) totals.closed++;
          else if (k === K.leak) totals.leaks++;
        }
      }
      numbers.textContent = (last >= 0 ? `in use ${c.in_use[last]}  idle ${c.idle[last]}  waiting ${c.waiting[last]}` : "in use 0  idle 0  waiting 0") +
        `  │ ${(checkouts / span).toFixed(1)} checkouts/s  wait p50 ${ms(quantile(waits, 0.5))} p95 ${ms(quantile(waits, 0.95))} p99 ${ms(quantile(waits, 0.99))}` +
        `  │ timeouts ${totals.timeouts}  opened ${totals.opened}  closed ${totals.closed}  leaks ${totals.leaks}  dropped ${s.dropped + s.lost}` +
        `  │ ${fps.toFixed(0)} fps`;
    }
    drawnEnd = tEnd;
  }

  function hover(ev) {
    const rect = canvas.getBoundingClientRect();
    mouse = { x: ev.clientX - rect.left, y: ev.clientY - rect.top };
    drawnVersion = -1;
    tip.style.display = "none";
    if (!geo) return;
    const { t0, t1, tEnd, left, right, top, laneH } = geo;
    const lane = Math.floor((mouse.y - top) / laneH);
    const t = t0 + ((mouse.x - left) / (right - left)) * (t1 - t0);
    if (lane < 0 || lane >= geo.lanes) return;
    for (let i = s.holds.length - 1; i >= 0; i--) {
      const h = s.holds[i];
      const end = Number.isNaN(h.end) || h.end > tEnd ? tEnd : h.end;
      if (h.lane === lane && h.start <= t && t <= end) {
        tip.textContent = `connection #${h.conn}\nthread ${s.threads[h.thread] ?? h.thread}\nheld ${ms(end - h.start)}${Number.isNaN(h.end) ? " (still held)" : ""}\nwaited ${ms(h.wait)} before`;
        tip.style.left = `${mouse.x + 12}px`; tip.style.top = `${mouse.y + 12}px`; tip.style.display = "block";
        return;
      }
    }
  }
  const leave = () => { mouse = null; tip.style.display = "none"; drawnVersion = -1; };
  canvas.addEventListener("mousemove", hover);
  canvas.addEventListener("mouseleave", leave);

  function tick(now) {
    raf = requestAnimationFrame(tick);
    if (now - lastDraw < 1000 / Math.max(1, model.get("max_fps")) - 1) return;
    const moving = s.ended === null && s.batches > 0 && frozenEnd === null && model.get("cursor_t") === null;
    if (!moving && drawnVersion === s.version) return;
    lastDraw = now;
    if (moving && !model.get("span").length) {
      const end = currentEnd();
      trim(s, end - Math.max(30, 3 * model.get("window_s")));
    }
    draw(!moving);
    drawnVersion = s.version;
    frames++; fpsCount++;
    if (now - fpsSince >= 1000) { fps = (fpsCount * 1000) / (now - fpsSince); fpsCount = 0; fpsSince = now; }
    el.dataset.frames = String(frames);
    el.dataset.events = String(s.n);
    el.dataset.batches = String(s.batches);
    el.dataset.fps = fps.toFixed(1);
    el.dataset.t = drawnEnd.toFixed(3);
    el.dataset.lost = String(s.lost);
    el.dataset.running = String(moving);
  }
  raf = requestAnimationFrame(tick);

  return () => {
    cancelAnimationFrame(raf);
    canvas.removeEventListener("mousemove", hover);
    canvas.removeEventListener("mouseleave", leave);
    model.off("change:paused", onPaused);
    for (const name of ["window_s", "max_connections", "cursor_t", "span", "title", "height"]) model.off(`change:${name}`, onAny);
  };
}

export default {
  initialize({ model }) {
    storeFor(model);
    // Batches sent before this module loaded are lost: ask the kernel for them again.
    model.send({ type: "hello" });
  },
  render,
};
