// The data a view draws: a bounded window of decoded events, what the timeline needs (holds, waits,
// marks, lanes), running totals and per-worker service. One store per model, shared by its views.
// The kinds and column names come from Python (the model's `wire` trait and every reset message:
// poolviz/live/packing.py), so this file holds no copy of them; `s.K` maps a kind's name to its code.

const WIRE_ARRAYS = { Uint8Array, Uint16Array, Uint32Array, Float64Array };
// How the store keeps each decoded column (its own choice, not the wire's): times and values in seconds.
const STORE_ARRAYS = { t: Float64Array, kind: Uint8Array, reason: Uint32Array, thread: Uint32Array,
  conn: Float64Array, value: Float64Array, in_use: Uint32Array, idle: Uint32Array, waiting: Uint32Array };
const stores = new WeakMap();

function newStore(wire) {
  return { wire, K: Object.fromEntries(wire.kinds.map((k, i) => [k, i])), n: 0, cap: 0, cols: {}, threads: [],
    reasons: [""], holds: [], openHold: new Map(), waits: [], openWait: new Map(), marks: [], lanes: new Map(),
    laneFree: [], laneCount: 0, resizes: [], limit: null, nowK: 0, recvAt: 0, ended: null, lost: 0, dropped: 0,
    batches: 0, service: newService(), listeners: new Set(),
    totals: { checkouts: 0, timeouts: 0, opened: 0, closed: 0, leaks: 0 } };
}

function resetStore(s, wire, limit) {
  const listeners = s.listeners;
  Object.assign(s, newStore(wire), { limit, listeners });
}

function changed(s) {
  for (const wake of s.listeners) wake();
}

// Who the pool served: per caller (thread id), checkouts, timeouts and the longest finished wait, and
// the callers waiting now (thread id -> when the wait began). A live view keeps these as running totals,
// because it trims old events; a replay recounts them up to its cursor (serviceUpTo).
function newService() { return { byThread: new Map(), open: new Map() }; }

function serve(sv, K, kind, thread, value, t) {
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
  for (let i = 0; i < hi; i++) serve(sv, s.K, c.kind[i], c.thread[i], c.value[i], c.t[i]);
  return sv;
}

function grow(s, need) {
  if (s.n + need <= s.cap) return;
  const cap = Math.max(4096, 2 * (s.n + need));
  const cols = {};
  for (const [name, Type] of Object.entries(STORE_ARRAYS)) {
    cols[name] = new Type(cap);
    if (s.cols[name]) cols[name].set(s.cols[name].subarray(0, s.n));
  }
  s.cols = cols;
  s.cap = cap;
}

function decodeBatch(msg, buffers) {
  // One batch's columns as typed arrays (a column of zeros travels as no buffer), and its times in
  // seconds: whole microsecond steps summed exactly (integers in float64), then scaled once.
  const col = {};
  let next = 0;
  for (const [name, array] of msg.columns) {
    if (array === null) { col[name] = new Uint8Array(msg.n); continue; }
    const dv = buffers[next++], Type = WIRE_ARRAYS[array];
    if (!Type) throw new Error(`poolviz live view: unknown column array ${array}`);
    col[name] = new Type(dv.buffer.slice(dv.byteOffset, dv.byteOffset + dv.byteLength));
  }
  const t = new Float64Array(msg.n);
  let ticks = 0;
  for (let i = 0; i < msg.n; i++) { ticks += col.dt[i] + msg.dt_min; t[i] = msg.t_base + ticks * msg.unit_s; }
  return { col, t };
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

function endWait(s, thread, t, timedOut) {
  const wait = s.openWait.get(thread);
  if (wait) { wait.end = t; wait.timedOut = timedOut; s.openWait.delete(thread); }
  return wait;
}

function track(s, j) {
  // What event j (already stored) starts or ends: holds per connection lane, waits, marks, totals.
  const c = s.cols, K = s.K, kind = c.kind[j], t = c.t[j], conn = c.conn[j], thread = c.thread[j], value = c.value[j];
  const mark = (lane) => s.marks.push({ t, kind, lane, conn, reason: s.reasons[c.reason[j]] ?? "" });
  serve(s.service, K, kind, thread, value, t);
  if (kind === K.checkout) {
    s.totals.checkouts++;
    if (!endWait(s, thread, t, false) && value > 0) s.waits.push({ thread, start: t - value, end: t, timedOut: false });
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
    endWait(s, thread, t, true);
    mark(-1);
  } else if (kind === K.connect) {
    s.totals.opened++;
    mark(laneOf(s, conn));
  } else if (kind === K.close) {
    s.totals.closed++;
    endHold(s, conn, t);
    mark(laneOf(s, conn));
    freeLane(s, conn);
  } else if (kind === K.leak) {
    s.totals.leaks++;
    mark(laneOf(s, conn));
  } else if (kind === K.error) {
    endWait(s, thread, t, false);
    mark(-1);
  } else if (kind === K.dispose) {
    for (const open of [...s.openHold.keys()]) endHold(s, open, t);
    for (const held of [...s.lanes.keys()]) freeLane(s, held);
  }
}

function ingest(s, msg, buffers) {
  for (const [id, name] of msg.threads) s.threads[id] = name;
  for (const [id, name] of msg.reasons) s.reasons[id] = name;
  const { col, t } = decodeBatch(msg, buffers);
  grow(s, msg.n);
  const c = s.cols;
  for (let i = 0; i < msg.n; i++) {
    const j = s.n + i;
    c.t[j] = t[i]; c.kind[j] = col.kind[i]; c.reason[j] = col.reason[i]; c.thread[j] = col.thread[i];
    c.conn[j] = col.conn[i]; c.value[j] = col.value[i] * msg.unit_s;
    c.in_use[j] = col.in_use[i]; c.idle[j] = col.idle[i]; c.waiting[j] = col.waiting[i];
    track(s, j);
  }
  s.n += msg.n;
  s.nowK = msg.now;
  s.recvAt = performance.now();
  s.lost += msg.lost;
  s.dropped = msg.dropped;
  s.batches++;
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
  s = newStore(model.get("wire"));
  s.limit = model.get("max_connections");
  stores.set(model, s);
  model.on("msg:custom", (msg, buffers) => {
    if (msg.type === "events") ingest(s, msg, buffers);
    else if (msg.type === "reset") resetStore(s, msg.wire ?? s.wire, msg.max_connections);
    else if (msg.type === "resize") s.resizes.push(msg);
    else if (msg.type === "end") s.ended = msg.t;
    else return;
    changed(s);
  });
  return s;
}
