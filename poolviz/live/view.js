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
    nowK: 0, recvAt: 0, ended: null, lost: 0, dropped: 0, batches: 0, version: 0, service: newService(),
    totals: { checkouts: 0, timeouts: 0, opened: 0, closed: 0, leaks: 0 } };
}

// Who the pool served: per caller (thread id), checkouts, timeouts and the longest finished wait, and
// the callers waiting now (thread id -> when the wait began). A live view keeps these as running totals,
// because it trims old events; a replay recounts them up to its cursor (serviceUpTo).
function newService() { return { byThread: new Map(), open: new Map() }; }

function serve(sv, kind, thread, value, t) {
  if (kind === K.error) { sv.open.delete(thread); return; }
  if (kind !== K.checkout && kind !== K.timeout && kind !== K.wait) return;
  let r = sv.byThread.get(thread);
  if (!r) { r = { checkouts: 0, timeouts: 0, waitMax: 0 }; sv.byThread.set(thread, r); }
  if (kind === K.wait) { sv.open.set(thread, t); return; }
  sv.open.delete(thread);
  if (kind === K.checkout) r.checkouts++; else r.timeouts++;
  if (value > r.waitMax) r.waitMax = value;
}

function serviceUpTo(s, hi) {
  const sv = newService(), c = s.cols;
  for (let i = 0; i < hi; i++) serve(sv, c.kind[i], c.thread[i], c.value[i], c.t[i]);
  return sv;
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
    serve(s.service, kind, thread, value, t);
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
      const wait = s.openWait.get(thread);
      if (wait) { wait.end = t; s.openWait.delete(thread); }
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

function ms(x) {
  // Human units: milliseconds below a second, seconds above.
  if (!Number.isFinite(x)) return "–";
  if (x >= 1) return `${x.toFixed(x >= 10 ? 1 : 2)} s`;
  const m = x * 1000;
  return `${m.toFixed(m < 10 ? 2 : m < 100 ? 1 : 0)} ms`;
}

function limitAt(s, t) {
  // The limit in force at t: the last resize before it, else the first resize's old value, else the start value.
  let limit = s.resizes.length ? s.resizes[0].old : s.limit;
  for (const r of s.resizes) if (r.t <= t) limit = r.new;
  return limit;
}

function viewNumbers(s, t0, tEnd, hi, sv, workers) {
  // The numbers the strip shows at tEnd: finished waits in the window plus the waits still going,
  // counted at their age so far (a wait's length is only recorded when it ends, and under barging a
  // worker can wait the whole run), and per-worker service since the start.
  const c = s.cols;
  const finished = [];
  let checkouts = 0;
  for (let i = hi > 0 ? lowerBound(c.t, hi, t0) : 0; i < hi; i++) {
    const k = c.kind[i];
    if (k === K.checkout) { finished.push(c.value[i]); checkouts++; } else if (k === K.timeout) finished.push(c.value[i]);
  }
  const ages = new Map();
  for (const [thread, since] of sv.open) if (since <= tEnd) ages.set(thread, Math.max(0, tEnd - since));
  const ongoing = [...ages.values()];
  const all = finished.concat(ongoing).sort((a, b) => a - b);
  const idOf = new Map();
  s.threads.forEach((name, id) => idOf.set(name, id));
  const names = workers && workers.length ? workers : [...sv.byThread.keys()].map((id) => s.threads[id] ?? String(id));
  const rows = names.map((name) => {
    const id = idOf.get(name);
    const r = id === undefined ? undefined : sv.byThread.get(id);
    const age = id === undefined ? undefined : ages.get(id);
    return { name, id, checkouts: r ? r.checkouts : 0, waitMax: Math.max(r ? r.waitMax : 0, age ?? 0), waiting: age !== undefined };
  });
  rows.sort((a, b) => b.checkouts - a.checkouts || (a.name < b.name ? -1 : 1));
  const counts = rows.map((r) => r.checkouts).sort((a, b) => a - b);
  let longest = null;
  for (const r of rows) if (longest === null || r.waitMax > longest.waitMax) longest = r;
  const last = hi - 1;
  return {
    inUse: last >= 0 ? c.in_use[last] : 0, idle: last >= 0 ? c.idle[last] : 0, waiting: last >= 0 ? c.waiting[last] : 0,
    finished, ongoing, checkouts, ongoingCount: ongoing.length, oldest: ongoing.length ? Math.max(...ongoing) : 0,
    p50: quantile(all, 0.5), p95: quantile(all, 0.95), p99: quantile(all, 0.99), max: all.length ? all[all.length - 1] : NaN,
    rows, workers: rows.length, checkoutsMin: counts.length ? counts[0] : NaN, checkoutsMedian: quantile(counts, 0.5),
    checkoutsMax: counts.length ? counts[counts.length - 1] : NaN, starved: counts.filter((x) => x === 0).length,
    longest,
  };
}

function occupancyMeans(s, lo, hi, t0, t1, tEnd, buckets) {
  // Time-weighted means of in use, idle and waiting per bucket (a few pixels of time each): a long
  // window of thousands of events reads as a band, not a comb. Each event's counts hold until the next.
  const c = s.cols, bw = (t1 - t0 || 1) / buckets;
  const m = { covered: new Float64Array(buckets), inUse: new Float64Array(buckets), idle: new Float64Array(buckets), waiting: new Float64Array(buckets), bw };
  for (let i = lo; i < hi; i++) {
    const a = Math.max(c.t[i], t0), b = Math.min(i + 1 < hi ? c.t[i + 1] : tEnd, tEnd);
    if (!(b > a)) continue;
    const ka = Math.max(0, Math.floor((a - t0) / bw)), kb = Math.min(buckets - 1, Math.floor((b - t0) / bw));
    for (let k = ka; k <= kb; k++) {
      const d = Math.min(b, t0 + (k + 1) * bw) - Math.max(a, t0 + k * bw);
      if (d <= 0) continue;
      m.covered[k] += d; m.inUse[k] += d * c.in_use[i]; m.idle[k] += d * c.idle[i]; m.waiting[k] += d * c.waiting[i];
    }
  }
  return m;
}

function drawTimeline(ctx, s, g, mouse) {
  const { t0, tEnd, left, right, top, laneH, lanes, waitY, x, limit } = g;
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
  for (const h of s.holds) {
    if (h.start > tEnd) continue;
    const end = Number.isNaN(h.end) || h.end > tEnd ? tEnd : h.end;
    if (end < t0) continue;
    ctx.fillStyle = colour(h.thread, 0.85);
    const x0 = x(Math.max(h.start, t0));
    ctx.fillRect(x0, top + h.lane * laneH + 2, Math.max(1, x(end) - x0), laneH - 4);
  }
  if (limit && limit < lanes) {
    ctx.strokeStyle = "#c62828"; ctx.setLineDash([5, 3]);
    ctx.beginPath(); ctx.moveTo(left, top + limit * laneH); ctx.lineTo(right, top + limit * laneH); ctx.stroke();
    ctx.setLineDash([]);
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
    ctx.strokeStyle = "#7b1fa2"; ctx.beginPath(); ctx.moveTo(x(r.t), top); ctx.lineTo(x(r.t), g.H - 20); ctx.stroke();
    ctx.fillStyle = "#7b1fa2"; ctx.fillText(`${r.old}→${r.new}`, x(r.t) + 3, top + 10);
  }
  if (mouse && mouse.x >= left && mouse.x <= right && mouse.y < waitY + laneH) {
    const tm = t0 + ((mouse.x - left) / (right - left)) * (g.t1 - t0);
    ctx.strokeStyle = "rgba(0,0,0,.5)"; ctx.beginPath(); ctx.moveTo(mouse.x, top); ctx.lineTo(mouse.x, waitY + laneH); ctx.stroke();
    ctx.fillStyle = "#000"; ctx.fillText(`t = ${tm.toFixed(3)} s`, Math.min(mouse.x + 4, right - 80), top - 4 + 12);
  }
}

function fitText(ctx, text, x, y, width) {
  // A panel's title, cut with an ellipsis where the panel is narrower than the text (side-by-side views).
  let t = text;
  while (t.length > 4 && ctx.measureText(t).width > width) t = t.slice(0, -2);
  ctx.fillText(t === text ? t : `${t.slice(0, -1)}…`, x, y);
}

function drawOccupancy(ctx, s, g, box, numbers) {
  // In use and idle stacked upwards, waiting beneath the zero line; the axis reaches the most waiting
  // in the window (and now), and the limit line is drawn last, above the fill, with headroom over it.
  const { t0, t1, tEnd, lo, hi, limit } = g;
  const c = s.cols, { x0, x1, y0, y1 } = box;
  const ox = (t) => x0 + ((t - t0) / (t1 - t0 || 1)) * (x1 - x0);
  let maxUp = Math.max(1, limit || 1), maxDown = numbers.waiting;
  for (const r of s.resizes) if (r.t <= tEnd) maxUp = Math.max(maxUp, r.old, r.new);
  for (let i = lo; i < hi; i++) { maxUp = Math.max(maxUp, c.in_use[i] + c.idle[i]); maxDown = Math.max(maxDown, c.waiting[i]); }
  const up = maxUp * 1.15, scale = (y1 - y0) / (up + maxDown * 1.05 || 1), zero = y0 + up * scale;
  ctx.fillStyle = "#333"; fitText(ctx, "occupancy (time-weighted): in use, idle; waiting beneath", x0, y0 - 6, x1 - x0);
  ctx.strokeStyle = "#ccc"; ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
  const buckets = Math.max(1, Math.floor((x1 - x0) / 2));
  const m = occupancyMeans(s, lo, hi, t0, t1, tEnd, buckets);
  const bx = (k) => ox(t0 + k * m.bw);
  for (let k = 0; k < buckets; k++) {
    const cov = m.covered[k];
    if (!cov) continue;
    const a = bx(k), w = Math.max(1, bx(k + 1) - a), used = m.inUse[k] / cov, idle = m.idle[k] / cov, waiting = m.waiting[k] / cov;
    ctx.fillStyle = "rgba(25,118,210,.75)"; ctx.fillRect(a, zero - used * scale, w, used * scale);
    ctx.fillStyle = "rgba(129,199,132,.75)"; ctx.fillRect(a, zero - (used + idle) * scale, w, idle * scale);
    ctx.fillStyle = "rgba(239,108,0,.7)"; ctx.fillRect(a, zero, w, waiting * scale);
  }
  ctx.strokeStyle = "#888"; ctx.beginPath(); ctx.moveTo(x0, zero); ctx.lineTo(x1, zero); ctx.stroke();
  if (limit) {
    ctx.strokeStyle = "#c62828"; ctx.lineWidth = 1.5; ctx.setLineDash([5, 3]); ctx.beginPath();
    ctx.moveTo(x0, zero - limitAt(s, t0) * scale);
    for (const r of s.resizes) if (r.t > t0 && r.t <= tEnd) { ctx.lineTo(ox(r.t), zero - r.old * scale); ctx.lineTo(ox(r.t), zero - r.new * scale); }
    ctx.lineTo(x1, zero - limit * scale); ctx.stroke(); ctx.setLineDash([]); ctx.lineWidth = 1;
    ctx.fillStyle = "#c62828"; ctx.textAlign = "right"; ctx.fillText(`limit ${limit}`, x1 - 3, zero - limit * scale - 3); ctx.textAlign = "left";
  }
  ctx.fillStyle = "#555"; ctx.textAlign = "right";
  ctx.fillText(String(maxUp), x0 - 4, zero - maxUp * scale + 4); ctx.fillText("0", x0 - 4, zero + 4);
  if (maxDown) ctx.fillText(`${maxDown} waiting`, x0 - 4, Math.min(y1, zero + maxDown * scale + 4));
  ctx.textAlign = "left";
  ctx.fillText(`${t0.toFixed(1)} s`, x0, g.H - 6);
  ctx.textAlign = "right"; ctx.fillText(`${t1.toFixed(1)} s`, x1, g.H - 6); ctx.textAlign = "left";
}

function drawWaits(ctx, g, box, numbers) {
  // Finished waits in the window and, stacked on them in a darker colour, the waits still going at their age.
  const { x0, x1, y0, y1 } = box, w = x1 - x0, BINS = 24;
  ctx.fillStyle = "#333"; fitText(ctx, "wait per request (window)", x0, y0 - 6, w);
  ctx.strokeStyle = "#ccc"; ctx.strokeRect(x0, y0, w, y1 - y0);
  const all = numbers.finished.concat(numbers.ongoing).sort((a, b) => a - b);
  const top = Math.max(quantile(all, 0.99), numbers.oldest, 1e-4) * 1.05;
  const done = new Array(BINS).fill(0), going = new Array(BINS).fill(0);
  const bin = (v) => Math.min(BINS - 1, Math.floor((v / top) * BINS));
  for (const v of numbers.finished) done[bin(v)]++;
  for (const v of numbers.ongoing) going[bin(v)]++;
  const most = Math.max(1, ...done.map((d, i) => d + going[i])), room = y1 - y0 - 4;
  for (let i = 0; i < BINS; i++) {
    const bx = x0 + (i * w) / BINS, bw = w / BINS - 1;
    // At least 2 px, so a handful of waits beside hundreds of instant checkouts still shows.
    const hd = done[i] ? Math.max(2, (done[i] / most) * room) : 0, hg = going[i] ? Math.max(6, (going[i] / most) * room) : 0;
    ctx.fillStyle = "rgba(239,108,0,.8)"; ctx.fillRect(bx, y1 - hd, bw, hd);
    ctx.fillStyle = "rgba(183,28,28,.9)"; ctx.fillRect(bx, y1 - hd - hg, bw, hg);
    // The count above each bar of waits still going: a few of them beside hundreds of instant checkouts.
    if (going[i]) { ctx.textAlign = "center"; ctx.fillText(String(going[i]), bx + bw / 2, y1 - hd - hg - 3); ctx.textAlign = "left"; }
  }
  ctx.fillStyle = "rgba(183,28,28,.9)"; ctx.fillRect(x0 + 4, y0 + 5, 8, 8);
  ctx.fillStyle = "#333"; fitText(ctx, `still waiting (age so far): ${numbers.ongoingCount}`, x0 + 16, y0 + 13, w - 20);
  ctx.fillStyle = "#555"; ctx.fillText("0", x0, g.H - 6); ctx.textAlign = "right"; ctx.fillText(ms(top), x1, g.H - 6); ctx.textAlign = "left";
}

function drawService(ctx, g, box, numbers) {
  // Checkouts per worker since the start, busiest first, in each worker's timeline colour; a red
  // foot under the workers waiting now. Barging shows as a few tall bars and a row of empty ones.
  const { x0, x1, y0, y1 } = box, rows = numbers.rows;
  ctx.fillStyle = "#333"; fitText(ctx, "checkouts per worker (red: waiting)", x0, y0 - 6, x1 - x0);
  ctx.strokeStyle = "#ccc"; ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
  if (!rows.length) return;
  const most = Math.max(1, rows[0].checkouts), room = y1 - y0 - 18, bw = (x1 - x0) / rows.length;
  rows.forEach((r, i) => {
    const h = (r.checkouts / most) * room, bx = x0 + i * bw;
    ctx.fillStyle = r.id === undefined ? "#999" : colour(r.id, 0.85);
    ctx.fillRect(bx + 1, y1 - 6 - h, Math.max(1, bw - 2), h);
    if (r.waiting) { ctx.fillStyle = "#c62828"; ctx.fillRect(bx + 1, y1 - 5, Math.max(1, bw - 2), 4); }
  });
  ctx.fillStyle = "#555"; ctx.fillText(String(most), x0 + 3, y0 + 11);
  ctx.textAlign = "right"; ctx.fillText(`${rows.length} workers`, x1, g.H - 6); ctx.textAlign = "left";
}

function stripText(s, numbers, g, totals, fps) {
  const n = numbers, span = Math.max(1e-9, Math.min(g.t1, g.tEnd) - g.t0);
  const longest = n.longest && n.longest.waitMax > 0
    ? `longest wait ${n.longest.name} ${ms(n.longest.waitMax)}${n.longest.waiting ? " (still waiting)" : ""}` : "longest wait –";
  return [
    `now      in use ${n.inUse}  idle ${n.idle}  waiting ${n.waiting}  oldest wait ${n.ongoingCount ? ms(n.oldest) : "–"}`,
    `window   ${(n.checkouts / span).toFixed(1)} checkouts/s  wait p50 ${ms(n.p50)}  p95 ${ms(n.p95)}  p99 ${ms(n.p99)}  (ongoing counted at their age)`,
    `workers  ${n.workers}: checkouts min ${n.workers ? n.checkoutsMin : "–"} · median ${n.workers ? n.checkoutsMedian : "–"} · max ${n.workers ? n.checkoutsMax : "–"}` +
      `  never served ${n.starved}  ${longest}`,
    `totals   timeouts ${totals.timeouts}  opened ${totals.opened}  closed ${totals.closed}  leaks ${totals.leaks}  dropped ${s.dropped + s.lost}  │ ${fps.toFixed(0)} fps`,
  ].join("\n");
}

function numbersData(n) {
  // What a test reads: the same numbers as the strip, as data- attributes (milliseconds, plain numbers).
  const msOf = (x) => (Number.isFinite(x) ? (x * 1000).toFixed(3) : "");
  return {
    waiting: String(n.waiting), ongoing: String(n.ongoingCount), oldestWaitMs: msOf(n.oldest),
    waitP50Ms: msOf(n.p50), waitP95Ms: msOf(n.p95), waitP99Ms: msOf(n.p99), workers: String(n.workers),
    checkoutsMin: n.workers ? String(n.checkoutsMin) : "", checkoutsMedian: n.workers ? String(n.checkoutsMedian) : "",
    checkoutsMax: n.workers ? String(n.checkoutsMax) : "", starved: String(n.starved),
    longestWaitMs: n.longest ? msOf(n.longest.waitMax) : "", longestWaitThread: n.longest ? n.longest.name : "",
  };
}

function totalsUpTo(s, hi) {
  // Totals up to a replay's cursor (a live view trims old events, so it keeps running totals instead).
  const c = s.cols, totals = { timeouts: 0, opened: 0, closed: 0, leaks: 0 };
  for (let i = 0; i < hi; i++) {
    const k = c.kind[i];
    if (k === K.timeout) totals.timeouts++;
    else if (k === K.connect) totals.opened++;
    else if (k === K.close) totals.closed++;
    else if (k === K.leak) totals.leaks++;
  }
  return totals;
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
  const SETTINGS = ["window_s", "max_connections", "cursor_t", "span", "title", "height", "workers"];

  const setPause = () => { pause.textContent = model.get("paused") ? "resume" : "pause"; };
  pause.onclick = () => {
    frozenEnd = model.get("paused") ? null : currentEnd();
    model.set("paused", !model.get("paused"));
    model.save_changes();
  };
  const onPaused = () => { if (!model.get("paused")) frozenEnd = null; else if (frozenEnd === null) frozenEnd = currentEnd(); setPause(); drawnVersion = -1; };
  const onAny = () => { drawnVersion = -1; title.textContent = model.get("title"); };
  model.on("change:paused", onPaused);
  for (const name of SETTINGS) model.on(`change:${name}`, onAny);
  setPause();
  onAny();

  function cursorSet() {
    const cursor = model.get("cursor_t");
    return cursor !== null && cursor !== undefined;
  }

  function currentEnd() {
    if (cursorSet()) return model.get("cursor_t");
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
    const lanes = Math.max(s.laneCount, 1);
    const timelineH = Math.round(H * 0.55);
    const laneH = Math.min(48, (timelineH - 34) / (lanes + 1));
    const top = 16;
    const lo = Math.max(0, lowerBound(c.t || [], s.n, t0) - 1), hi = lowerBound(c.t || [], s.n, tEnd + 1e-9);
    const x = (t) => left + ((t - t0) / (t1 - t0 || 1)) * (right - left);
    geo = { t0, t1, tEnd, left, right, top, laneH, lanes, waitY: top + lanes * laneH, timelineH, x, H, lo, hi, limit: limitAt(s, tEnd) };
    const cursor = cursorSet();
    const service = cursor ? serviceUpTo(s, hi) : s.service;
    const n = viewNumbers(s, t0, tEnd, hi, service, model.get("workers"));
    drawTimeline(ctx, s, geo, mouse);
    // The bottom row: occupancy, the waits, and who was served.
    const y0 = timelineH + 22, y1 = H - 22, occRight = left + (right - left) * 0.5;
    const waitsLeft = occRight + 30, waitsRight = waitsLeft + (right - waitsLeft) * 0.5 - 12;
    drawOccupancy(ctx, s, geo, { x0: left, x1: occRight, y0, y1 }, n);
    drawWaits(ctx, geo, { x0: waitsLeft, x1: waitsRight, y0, y1 }, n);
    drawService(ctx, geo, { x0: waitsRight + 24, x1: right, y0, y1 }, n);
    const now = performance.now();
    // The strip is text: refreshed four times a second while live, and always on a settled picture.
    if (settled || now - lastNumbers > 250) {
      lastNumbers = now;
      numbers.textContent = stripText(s, n, geo, cursor ? totalsUpTo(s, hi) : s.totals, fps);
      Object.assign(el.dataset, numbersData(n));
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
    const moving = s.ended === null && s.batches > 0 && frozenEnd === null && !cursorSet();
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
    for (const name of SETTINGS) model.off(`change:${name}`, onAny);
  };
}

// For tests that run the view's arithmetic without a browser (node): anywidget uses the default export.
export { newStore, ingest, serviceUpTo, viewNumbers, occupancyMeans };

export default {
  initialize({ model }) {
    storeFor(model);
    // Batches sent before this module loaded are lost: ask the kernel for them again.
    model.send({ type: "hello" });
  },
  render,
};
