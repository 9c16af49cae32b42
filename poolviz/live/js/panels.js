// The bottom row's panels (occupancy, the waits histogram, per-worker service) and the strip of
// numbers above the canvas. Each panel draws in its box ({x0, x1, y0, y1}) with the palette p.

function fitText(ctx, text, x, y, width) {
  // A panel's title, cut with an ellipsis where the panel is narrower than the text (side-by-side views).
  let t = text;
  while (t.length > 4 && ctx.measureText(t).width > width) t = t.slice(0, -2);
  ctx.fillText(t === text ? t : `${t.slice(0, -1)}…`, x, y);
}

function panelFrame(ctx, box, title, p) {
  const { x0, x1, y0, y1 } = box;
  ctx.fillStyle = p.text; fitText(ctx, title, x0, y0 - 6, x1 - x0);
  ctx.strokeStyle = p.grid; ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
}

function occupancyScale(s, g, box, numbers) {
  // The axis reaches the most in use + idle (and the limit, with headroom) up, the most waiting down.
  const c = s.cols;
  let maxUp = Math.max(1, g.limit || 1), maxDown = numbers.waiting;
  for (const r of s.resizes) if (r.t <= g.tEnd) maxUp = Math.max(maxUp, r.old, r.new);
  for (let i = g.lo; i < g.hi; i++) { maxUp = Math.max(maxUp, c.in_use[i] + c.idle[i]); maxDown = Math.max(maxDown, c.waiting[i]); }
  const up = maxUp * 1.15, scale = (box.y1 - box.y0) / (up + maxDown * 1.05 || 1);
  return { maxUp, maxDown, scale, zero: box.y0 + up * scale };
}

function drawLimit(ctx, s, g, box, sc, ox, p) {
  // The limit line drawn last, above the fill, stepping where the pool was resized.
  const { t0, tEnd, limit } = g, { zero, scale } = sc;
  ctx.strokeStyle = p.error; ctx.lineWidth = 1.5; ctx.setLineDash([5, 3]); ctx.beginPath();
  ctx.moveTo(box.x0, zero - limitAt(s, t0) * scale);
  for (const r of s.resizes) if (r.t > t0 && r.t <= tEnd) { ctx.lineTo(ox(r.t), zero - r.old * scale); ctx.lineTo(ox(r.t), zero - r.new * scale); }
  ctx.lineTo(box.x1, zero - limit * scale); ctx.stroke(); ctx.setLineDash([]); ctx.lineWidth = 1;
  ctx.fillStyle = p.error; ctx.textAlign = "right"; ctx.fillText(`limit ${limit}`, box.x1 - 3, zero - limit * scale - 3); ctx.textAlign = "left";
}

function drawOccupancy(ctx, s, g, box, numbers, p) {
  // In use and idle stacked upwards, waiting beneath the zero line, as time-weighted means per bucket.
  const { t0, t1, tEnd } = g, { x0, x1, y1 } = box;
  const ox = (t) => x0 + ((t - t0) / (t1 - t0 || 1)) * (x1 - x0);
  const sc = occupancyScale(s, g, box, numbers), { zero, scale } = sc;
  panelFrame(ctx, box, "occupancy (time-weighted): in use, idle; waiting beneath", p);
  const buckets = Math.max(1, Math.floor((x1 - x0) / 2));
  const m = occupancyMeans(s, g.lo, g.hi, t0, t1, tEnd, buckets);
  const fills = [withAlpha(p.brand, 0.75), withAlpha(p.success, 0.6), withAlpha(p.warn, 0.7)];
  for (let k = 0; k < buckets; k++) {
    const cov = m.covered[k];
    if (!cov) continue;
    const a = ox(t0 + k * m.bw), w = Math.max(1, ox(t0 + (k + 1) * m.bw) - a);
    const used = m.inUse[k] / cov, idle = m.idle[k] / cov, waiting = m.waiting[k] / cov;
    ctx.fillStyle = fills[0]; ctx.fillRect(a, zero - used * scale, w, used * scale);
    ctx.fillStyle = fills[1]; ctx.fillRect(a, zero - (used + idle) * scale, w, idle * scale);
    ctx.fillStyle = fills[2]; ctx.fillRect(a, zero, w, waiting * scale);
  }
  ctx.strokeStyle = p.muted; ctx.beginPath(); ctx.moveTo(x0, zero); ctx.lineTo(x1, zero); ctx.stroke();
  if (g.limit) drawLimit(ctx, s, g, box, sc, ox, p);
  ctx.fillStyle = p.muted; ctx.textAlign = "right";
  ctx.fillText(String(sc.maxUp), x0 - 4, zero - sc.maxUp * scale + 4); ctx.fillText("0", x0 - 4, zero + 4);
  if (sc.maxDown) ctx.fillText(`${sc.maxDown} waiting`, x0 - 4, Math.min(y1, zero + sc.maxDown * scale + 4));
  ctx.textAlign = "left"; ctx.fillText(`${t0.toFixed(1)} s`, x0, g.H - 6);
  ctx.textAlign = "right"; ctx.fillText(`${t1.toFixed(1)} s`, x1, g.H - 6); ctx.textAlign = "left";
}

function drawWaits(ctx, g, box, numbers, p) {
  // Finished waits in the window and, stacked on them in a darker colour, the waits still going at their age.
  const { x0, x1, y0, y1 } = box, w = x1 - x0, BINS = 24;
  panelFrame(ctx, box, "wait per request (window)", p);
  const all = numbers.finished.concat(numbers.ongoing).sort((a, b) => a - b);
  const top = Math.max(quantile(all, 0.99), numbers.oldest, 1e-4) * 1.05;
  const done = new Array(BINS).fill(0), going = new Array(BINS).fill(0);
  const bin = (v) => Math.min(BINS - 1, Math.floor((v / top) * BINS));
  for (const v of numbers.finished) done[bin(v)]++;
  for (const v of numbers.ongoing) going[bin(v)]++;
  const most = Math.max(1, ...done.map((d, i) => d + going[i])), room = y1 - y0 - 4;
  const doneFill = withAlpha(p.warn, 0.8), goingFill = withAlpha(p.error, 0.9);
  for (let i = 0; i < BINS; i++) {
    const bx = x0 + (i * w) / BINS, bw = w / BINS - 1;
    // At least 2 px, so a handful of waits beside hundreds of instant checkouts still shows.
    const hd = done[i] ? Math.max(2, (done[i] / most) * room) : 0, hg = going[i] ? Math.max(6, (going[i] / most) * room) : 0;
    ctx.fillStyle = doneFill; ctx.fillRect(bx, y1 - hd, bw, hd);
    ctx.fillStyle = goingFill; ctx.fillRect(bx, y1 - hd - hg, bw, hg);
    // The count above each bar of waits still going: a few of them beside hundreds of instant checkouts.
    if (going[i]) { ctx.fillStyle = p.text; ctx.textAlign = "center"; ctx.fillText(String(going[i]), bx + bw / 2, y1 - hd - hg - 3); ctx.textAlign = "left"; }
  }
  ctx.fillStyle = goingFill; ctx.fillRect(x0 + 4, y0 + 5, 8, 8);
  ctx.fillStyle = p.text; fitText(ctx, `still waiting (age so far): ${numbers.ongoingCount}`, x0 + 16, y0 + 13, w - 20);
  ctx.fillStyle = p.muted; ctx.fillText("0", x0, g.H - 6); ctx.textAlign = "right"; ctx.fillText(ms(top), x1, g.H - 6); ctx.textAlign = "left";
}

function drawService(ctx, g, box, numbers, p) {
  // Checkouts per worker since the start, busiest first, in each worker's timeline colour; a red
  // foot under the workers waiting now. Barging shows as a few tall bars and a row of empty ones.
  const { x0, x1, y0, y1 } = box, rows = numbers.rows;
  panelFrame(ctx, box, "checkouts per worker (red: waiting)", p);
  if (!rows.length) return;
  const most = Math.max(1, rows[0].checkouts), room = y1 - y0 - 18, bw = (x1 - x0) / rows.length;
  rows.forEach((r, i) => {
    const h = (r.checkouts / most) * room, bx = x0 + i * bw;
    ctx.fillStyle = r.id === undefined ? p.muted : threadColour(p, r.id, 0.85);
    ctx.fillRect(bx + 1, y1 - 6 - h, Math.max(1, bw - 2), h);
    if (r.waiting) { ctx.fillStyle = p.error; ctx.fillRect(bx + 1, y1 - 5, Math.max(1, bw - 2), 4); }
  });
  ctx.fillStyle = p.muted; ctx.fillText(String(most), x0 + 3, y0 + 11);
  ctx.textAlign = "right"; ctx.fillText(`${rows.length} workers`, x1, g.H - 6); ctx.textAlign = "left";
}

function drawStrip(el, strip, s, numbers, g, totals, fps) {
  // The numbers above the canvas, as text (themed by CSS, so it follows the theme by itself), and the
  // same numbers on the element's data- attributes for tests.
  strip.textContent = stripText(s, numbers, g, totals, fps);
  Object.assign(el.dataset, numbersData(numbers));
}
