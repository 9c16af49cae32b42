// The numbers a view shows, computed from the store: what the strip prints, what the panels scale
// to, and what tests read from the data- attributes. No drawing here.

function lowerBound(arr, n, x) {
  let lo = 0, hi = n;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (arr[mid] < x) lo = mid + 1; else hi = mid; }
  return lo;
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

function workerRows(s, sv, ages, workers) {
  // One row per worker (the named ones, else every thread that asked), busiest first.
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
  return rows;
}

function viewNumbers(s, t0, tEnd, hi, sv, workers) {
  // The numbers the strip shows at tEnd: finished waits in the window plus the waits still going,
  // counted at their age so far (a wait's length is only recorded when it ends, and under barging a
  // worker can wait the whole run), and per-worker service since the start.
  const c = s.cols, K = s.K;
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
  const rows = workerRows(s, sv, ages, workers);
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

function totalsUpTo(s, hi) {
  // Totals up to a replay's cursor (a live view trims old events, so it keeps running totals instead).
  const c = s.cols, K = s.K, totals = { timeouts: 0, opened: 0, closed: 0, leaks: 0 };
  for (let i = 0; i < hi; i++) {
    const k = c.kind[i];
    if (k === K.timeout) totals.timeouts++;
    else if (k === K.connect) totals.opened++;
    else if (k === K.close) totals.closed++;
    else if (k === K.leak) totals.leaks++;
  }
  return totals;
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
    `totals   timeouts ${totals.timeouts}  opened ${totals.opened}  closed ${totals.closed}  leaks ${totals.leaks}  dropped ${s.dropped + s.lost}` +
      (fps === null ? "" : `  │ ${fps.toFixed(0)} fps`),
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
