// The data a view draws: a bounded window of decoded events, what the timeline needs (holds, waits,
// marks, lanes), running totals and per-worker service. One store per model, shared by its views.
// Lanes come in groups: one group in all, or (byProcess: a merged log of several processes, whose
// thread labels are "p<pid>:<thread>") one group per process, so each process's connections sit together.
// A process gone (its stream ended) keeps its lanes while anything of it is in view, then gives them up.
// A hold keeps its checkout's site (an id in s.sites; the sites travel once, like thread names).
// The kinds and column names come from Python (the model's `wire` trait and every reset message:
// poolviz/live/packing.py), so this file holds no copy of them; `s.K` maps a kind's name to its code.

const WIRE_ARRAYS = { Uint8Array, Uint16Array, Uint32Array, Float64Array };
// How the store keeps each decoded column (its own choice, not the wire's): times and values in seconds.
const STORE_ARRAYS = { t: Float64Array, kind: Uint8Array, reason: Uint32Array, thread: Uint32Array,
  conn: Float64Array, value: Float64Array, in_use: Uint32Array, idle: Uint32Array, waiting: Uint32Array };
const stores = new WeakMap();

function newStore(wire, byProcess = false) {
  return { wire, K: Object.fromEntries(wire.kinds.map((k, i) => [k, i])), n: 0, cap: 0, cols: {}, threads: [],
    reasons: [""], sites: [""], byProcess, threadGroup: [], groups: [], groupOf: new Map(), holds: [],
    openHold: new Map(), waits: [], openWait: new Map(), marks: [], lanes: new Map(), laneCount: 0, resizes: [],
    limit: null, nowK: 0, recvAt: 0, ended: null, lost: 0, dropped: 0, batches: 0, service: newService(),
    listeners: new Set(), totals: { checkouts: 0, timeouts: 0, opened: 0, closed: 0, leaks: 0 } };
}

function resetStore(s, wire, limit, byProcess) {
  const listeners = s.listeners;
  Object.assign(s, newStore(wire, byProcess), { limit, listeners });
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

function readColumns(specs, n, buffers, next, into) {
  // Columns as typed arrays of n entries (a column of zeros travels as no buffer); returns the next buffer's index.
  for (const [name, array] of specs) {
    if (array === null) { into[name] = new Uint8Array(n); continue; }
    const dv = buffers[next++], Type = WIRE_ARRAYS[array];
    if (!Type) throw new Error(`poolviz live view: unknown column array ${array}`);
    into[name] = new Type(dv.buffer.slice(dv.byteOffset, dv.byteOffset + dv.byteLength));
  }
  return next;
}

function decodeBatch(msg, buffers) {
  // One batch's columns as typed arrays, the sparse per-checkout ones (`per`: the i-th checkout's
  // site), and its times in seconds: whole microsecond steps summed exactly (integers in float64), then scaled once.
  const col = {}, per = {};
  const next = readColumns(msg.columns, msg.n, buffers, 0, col);
  readColumns(msg.checkout_columns ?? [], msg.checkouts ?? 0, buffers, next, per);
  const t = new Float64Array(msg.n);
  let ticks = 0;
  for (let i = 0; i < msg.n; i++) { ticks += col.dt[i] + msg.dt_min; t[i] = msg.t_base + ticks * msg.unit_s; }
  return { col, per, t };
}

function processOf(name) {
  // The process of a merged log's thread label "p<pid>:<thread>": ["p<pid>", "<thread>"].
  const m = /^(p\d+):(.*)$/s.exec(name ?? "");
  return m ? [m[1], m[2]] : ["", name ?? ""];
}

function groupOfThread(s, thread) {
  // The lane group of a thread id: 0 unless the store groups by process; new processes get the next group.
  if (!s.byProcess) return s.groups.length ? 0 : groupIndex(s, "");
  let g = s.threadGroup[thread];
  if (g === undefined) g = s.threadGroup[thread] = groupIndex(s, processOf(s.threads[thread])[0]);
  return g;
}

function groupIndex(s, key) {
  let g = s.groupOf.get(key);
  if (g === undefined) { g = s.groups.length; s.groups.push({ key, slots: 0, free: [], goneAt: NaN }); s.groupOf.set(key, g); }
  return g;
}

function laneOf(s, conn, thread) {
  // A connection's lane, {group, slot}: the lowest free slot of its process's group (its first event's thread).
  let lane = s.lanes.get(conn);
  if (lane === undefined) {
    const g = groupOfThread(s, thread), group = s.groups[g];
    group.goneAt = NaN;
    group.free.sort((a, b) => a - b);
    if (!group.free.length) s.laneCount++;
    lane = { group: g, slot: group.free.length ? group.free.shift() : group.slots++ };
    s.lanes.set(conn, lane);
  }
  return lane;
}

function freeLane(s, conn) {
  const lane = s.lanes.get(conn);
  if (lane !== undefined) { s.lanes.delete(conn); s.groups[lane.group].free.push(lane.slot); }
}

function groupStarts(s, t0 = -Infinity) {
  // The first row of each lane group, top to bottom in the order the groups appeared, and the rows in all.
  // A group gone before t0 (nothing of it left in view) has no rows: its start is -1.
  const starts = [];
  let rows = 0;
  for (const group of s.groups) {
    if (group.goneAt < t0) { starts.push(-1); continue; }
    starts.push(rows);
    rows += group.slots;
  }
  return { starts, rows };
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

function track(s, j, site) {
  // What event j (already stored) starts or ends: holds per connection lane, waits, marks, totals.
  // `site` is a checkout's site id (0 for other events).
  const c = s.cols, K = s.K, kind = c.kind[j], t = c.t[j], conn = c.conn[j], thread = c.thread[j], value = c.value[j];
  const mark = (lane) => s.marks.push({ t, kind, lane, conn, reason: s.reasons[c.reason[j]] ?? "" });
  serve(s.service, K, kind, thread, value, t);
  if (kind === K.checkout) {
    s.totals.checkouts++;
    if (!endWait(s, thread, t, false) && value > 0) s.waits.push({ thread, start: t - value, end: t, timedOut: false });
    const hold = { conn, lane: laneOf(s, conn, thread), thread, start: t, end: NaN, wait: value, site, leakedAt: NaN };
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
    mark(null);
  } else if (kind === K.connect) {
    s.totals.opened++;
    mark(laneOf(s, conn, thread));
  } else if (kind === K.close) {
    s.totals.closed++;
    endHold(s, conn, t);
    mark(laneOf(s, conn, thread));
    freeLane(s, conn);
  } else if (kind === K.leak) {
    s.totals.leaks++;
    const hold = s.openHold.get(conn);
    if (hold && Number.isNaN(hold.leakedAt)) hold.leakedAt = t;
    mark(laneOf(s, conn, thread));
  } else if (kind === K.error) {
    endWait(s, thread, t, false);
    mark(null);
  } else if (kind === K.dispose) {
    dispose(s, groupOfThread(s, thread), t);
  }
}

function dispose(s, group, t) {
  // The pool forgot its connections: their holds end and their lanes free (only its own process's, when grouped).
  for (const [conn, lane] of [...s.lanes]) {
    if (lane.group === group) { endHold(s, conn, t); freeLane(s, conn); }
  }
  for (const [conn, hold] of [...s.openHold]) if (hold.lane.group === group) endHold(s, conn, t);
}

function gone(s, process, t) {
  // A process of a merged log ended (exited, or stopped recording) after its last event: it holds nothing now.
  const group = s.byProcess ? s.groupOf.get(process) : undefined;
  if (group !== undefined) { dispose(s, group, t); s.groups[group].goneAt = t; }
}

function ingest(s, msg, buffers) {
  for (const [id, name] of msg.threads) s.threads[id] = name;
  for (const [id, name] of msg.reasons) s.reasons[id] = name;
  for (const [id, name] of msg.sites ?? []) s.sites[id] = name;
  const { col, per, t } = decodeBatch(msg, buffers), sites = per.site, checkout = s.K.checkout;
  grow(s, msg.n);
  const c = s.cols;
  let k = 0;
  for (let i = 0; i < msg.n; i++) {
    const j = s.n + i;
    c.t[j] = t[i]; c.kind[j] = col.kind[i]; c.reason[j] = col.reason[i]; c.thread[j] = col.thread[i];
    c.conn[j] = col.conn[i]; c.value[j] = col.value[i] * msg.unit_s;
    c.in_use[j] = col.in_use[i]; c.idle[j] = col.idle[i]; c.waiting[j] = col.waiting[i];
    track(s, j, col.kind[i] === checkout && sites ? sites[k++] : 0);
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
  s = newStore(model.get("wire"), Boolean(model.get("by_process")));
  s.limit = model.get("max_connections");
  stores.set(model, s);
  model.on("msg:custom", (msg, buffers) => {
    if (msg.type === "events") ingest(s, msg, buffers);
    else if (msg.type === "reset") resetStore(s, msg.wire ?? s.wire, msg.max_connections, Boolean(msg.by_process));
    else if (msg.type === "resize") s.resizes.push(msg);
    else if (msg.type === "end") s.ended = msg.t;
    else if (msg.type === "gone") gone(s, msg.process, msg.t);
    else return;
    changed(s);
  });
  return s;
}
