// The timeline panel: one lane per connection with its holds in the holder's colour, a lane of
// waits beneath, marks for opens, closes, timeouts, errors and leaks, and the pool's resizes. The
// crosshair (hover) is drawn over it, and holdAt finds the hold under the pointer for the tooltip:
// its connection, holder, checkout site and how long it was held. Grouped by process (a merged log),
// each process's lanes sit together under its name, with a line between processes.

function visibleEnd(item, tEnd) {
  return Number.isNaN(item.end) || item.end > tEnd ? tEnd : item.end;
}

function rowOf(g, lane) {
  // The timeline row of a lane; -1 for a lane of a process gone out of view.
  const start = g.starts[lane.group];
  return start < 0 ? -1 : start + lane.slot;
}

function laneLabel(s, g, l) {
  // "lane 3", or grouped by process: the process's name on its first lane, the lane's number on the others.
  if (!s.byProcess) return `lane ${l + 1}`;
  const group = g.starts.findLastIndex((start) => start >= 0 && start <= l), slot = l - g.starts[group];
  return slot ? String(slot + 1) : `${s.groups[group].key} 1`;
}

function drawLanes(ctx, s, g, p) {
  const { left, right, top, laneH, lanes, waitY } = g;
  ctx.fillStyle = p.text;
  ctx.fillText(`holds by connection${s.byProcess ? ", grouped by process" : ""} (colour: thread; hover: site)`, left, 11);
  ctx.textAlign = "right";
  for (let l = 0; l < lanes; l++) {
    if (l % 2) { ctx.fillStyle = p.band; ctx.fillRect(left, top + l * laneH, right - left, laneH); }
    ctx.fillStyle = p.muted;
    ctx.fillText(laneLabel(s, g, l), left - 4, top + l * laneH + laneH * 0.7);
  }
  ctx.strokeStyle = p.frame;
  for (const start of s.byProcess ? g.starts.filter((row) => row > 0) : []) {
    ctx.beginPath(); ctx.moveTo(4, top + start * laneH); ctx.lineTo(right, top + start * laneH); ctx.stroke();
  }
  ctx.fillStyle = p.waitLane;
  ctx.fillRect(left, waitY, right - left, laneH);
  ctx.fillStyle = p.muted;
  ctx.fillText("waits", left - 4, waitY + laneH * 0.7);
  ctx.textAlign = "left";
}

function drawHolds(ctx, s, g, p) {
  const { t0, tEnd, left, right, top, laneH, lanes, x, limit } = g;
  for (const h of s.holds) {
    if (h.start > tEnd) continue;
    const end = visibleEnd(h, tEnd);
    if (end < t0) continue;
    const row = rowOf(g, h.lane);
    if (row < 0) continue;
    ctx.fillStyle = threadColour(p, h.thread, 0.85);
    const x0 = x(Math.max(h.start, t0));
    ctx.fillRect(x0, top + row * laneH + 2, Math.max(1, x(end) - x0), laneH - 4);
  }
  if (limit && limit < lanes && !s.byProcess) {
    ctx.strokeStyle = p.error; ctx.setLineDash([5, 3]);
    ctx.beginPath(); ctx.moveTo(left, top + limit * laneH); ctx.lineTo(right, top + limit * laneH); ctx.stroke();
    ctx.setLineDash([]);
  }
}

function drawWaitBars(ctx, s, g, p) {
  const { t0, tEnd, laneH, waitY, x } = g;
  const rowH = Math.max(1, (laneH - 4) / 4);
  for (const w of s.waits) {
    if (w.start > tEnd) continue;
    const end = visibleEnd(w, tEnd);
    if (end < t0) continue;
    ctx.fillStyle = w.timedOut ? withAlpha(p.error, 0.8) : threadColour(p, w.thread, 0.6);
    const x0 = x(Math.max(w.start, t0));
    ctx.fillRect(x0, waitY + 2 + (w.thread % 4) * rowH, Math.max(1, x(end) - x0), rowH);
  }
}

function drawMark(ctx, m, px, y, p, K) {
  if (m.kind === K.connect) {
    ctx.fillStyle = p.success; ctx.beginPath(); ctx.moveTo(px, y - 5); ctx.lineTo(px + 6, y); ctx.lineTo(px, y + 5); ctx.fill();
  } else if (m.kind === K.close) {
    ctx.strokeStyle = p.text; ctx.beginPath();
    ctx.moveTo(px - 4, y - 4); ctx.lineTo(px + 4, y + 4); ctx.moveTo(px + 4, y - 4); ctx.lineTo(px - 4, y + 4); ctx.stroke();
    ctx.fillStyle = p.text; ctx.fillText(m.reason, px + 5, y - 3);
  } else if (m.kind === K.timeout || m.kind === K.error) {
    ctx.fillStyle = p.error; ctx.fillRect(px - 2, y - 6, 4, 12);
  } else if (m.kind === K.leak) {
    const font = ctx.font;
    ctx.fillStyle = p.warn; ctx.font = `bold 14px ${p.font}`; ctx.fillText("!", px - 2, y + 5); ctx.font = font;
  }
}

function drawMarksAndResizes(ctx, s, g, p) {
  const { t0, tEnd, top, laneH, waitY, x } = g;
  for (const m of s.marks) {
    if (m.t < t0 || m.t > tEnd || (m.lane !== null && rowOf(g, m.lane) < 0)) continue;
    drawMark(ctx, m, x(m.t), m.lane === null ? waitY + laneH / 2 : top + rowOf(g, m.lane) * laneH + laneH / 2, p, s.K);
  }
  ctx.strokeStyle = p.resize; ctx.fillStyle = p.resize;
  for (const r of s.resizes) {
    if (r.t < t0 || r.t > tEnd) continue;
    ctx.beginPath(); ctx.moveTo(x(r.t), top); ctx.lineTo(x(r.t), g.H - 20); ctx.stroke();
    ctx.fillText(`${r.old}→${r.new}`, x(r.t) + 3, top + 10);
  }
}

function drawTimeline(ctx, s, g, p) {
  drawLanes(ctx, s, g, p);
  drawHolds(ctx, s, g, p);
  drawWaitBars(ctx, s, g, p);
  drawMarksAndResizes(ctx, s, g, p);
}

function drawCrosshair(ctx, g, p, mouse) {
  // A vertical line through the timeline at the pointer, with the time it stands for.
  const { t0, t1, left, right, top, laneH, waitY } = g;
  if (!mouse || mouse.x < left || mouse.x > right || mouse.y >= waitY + laneH) return;
  const tm = t0 + ((mouse.x - left) / (right - left)) * (t1 - t0);
  ctx.strokeStyle = withAlpha(p.text, 0.5);
  ctx.beginPath(); ctx.moveTo(mouse.x, top); ctx.lineTo(mouse.x, waitY + laneH); ctx.stroke();
  ctx.fillStyle = p.text;
  ctx.fillText(`t = ${tm.toFixed(3)} s`, Math.min(mouse.x + 4, right - 80), top + 8);
}

function holdAt(s, g, mouse) {
  // The hold under the pointer, or null.
  const { t0, t1, tEnd, left, right, top, laneH } = g;
  const row = Math.floor((mouse.y - top) / laneH);
  const t = t0 + ((mouse.x - left) / (right - left)) * (t1 - t0);
  if (row < 0 || row >= g.lanes) return null;
  for (let i = s.holds.length - 1; i >= 0; i--) {
    const h = s.holds[i];
    if (rowOf(g, h.lane) === row && h.start <= t && t <= visibleEnd(h, tEnd)) return h;
  }
  return null;
}

function holdText(s, h, tEnd) {
  // The tooltip's text for a hold: connection, process (grouped), holder, checkout site, how long held.
  const end = visibleEnd(h, tEnd), [process, thread] = s.byProcess ? processOf(s.threads[h.thread]) : ["", s.threads[h.thread]];
  const leaked = h.leakedAt <= end ? `  (reported as leaked at ${h.leakedAt.toFixed(3)} s)` : "";
  return `connection #${h.conn}${process ? ` in process ${process.slice(1)}` : ""}\nthread ${thread ?? h.thread}\n` +
    `site ${s.sites[h.site] || "–"}\nheld ${ms(end - h.start)}${!(h.end <= tEnd + s.wire.unit_s / 2) ? " (still held)" : ""}${leaked}\n` +
    `waited ${ms(h.wait)} before`;
}
