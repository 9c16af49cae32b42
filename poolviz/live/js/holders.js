// "Holders now": who holds every connection at the view's time, longest held first (connection,
// process when grouped, holder thread or task, checkout site, held for) as an HTML table under the
// canvas. Live, the holds still open are the store's openHold, one per connection held, so nothing is
// scanned; paused or at a replay's cursor, the holds that began by then and had not ended. The table
// is refreshed with the strip (four times a second while live) and rebuilt only when its text changed.

const HOLDERS_SHOWN = 50;

function holdersAt(s, t, live) {
  // The rows of the table at time t: one per connection held then, longest held first. A hold that ends at
  // t has ended, to the wire's half unit (Python's t and a time decoded from whole microseconds differ by that).
  const at = t + s.wire.unit_s / 2;
  const open = live ? [...s.openHold.values()].filter((h) => h.start <= at) : s.holds.filter((h) => h.start <= at && !(h.end <= at));
  const rows = open.map((h) => {
    const name = s.threads[h.thread] ?? String(h.thread), [process, thread] = s.byProcess ? processOf(name) : ["", name];
    return { conn: h.conn, process: process.slice(1), thread, threadId: h.thread, site: s.sites[h.site] ?? "",
      held: Math.max(0, t - h.start), leaked: h.leakedAt <= t };
  });
  rows.sort((a, b) => b.held - a.held || a.conn - b.conn);
  return rows;
}

function buildHolders(make, ink) {
  // The table's DOM: a caption line and a scrolling table; colours are JupyterLab variables with light fallbacks.
  const box = make("div", "poolviz-live-holders", `margin-top:4px;color:${ink};max-height:210px;overflow:auto;` +
    "border:1px solid var(--jp-border-color2, #e0e0e0)");
  const caption = make("div", "poolviz-live-holders-caption",
    "font:bold 11px var(--jp-ui-font-family, sans-serif);padding:2px 6px;color:var(--jp-ui-font-color0, #000)");
  // The colour is set on the table too: a page in quirks mode does not let tables inherit it.
  const table = make("table", "poolviz-live-holders-table",
    `border-collapse:collapse;width:100%;font:11px var(--jp-code-font-family, monospace);color:${ink}`);
  const head = document.createElement("thead"), body = document.createElement("tbody");
  table.append(head, body);
  box.append(caption, table);
  return { box, caption, head, body, key: "", at: "" };
}

function holderCells(r, byProcess) {
  return [...(byProcess ? [r.process] : []), `#${r.conn}`, r.thread, r.site || "–", `${ms(r.held)}${r.leaked ? "  leaked" : ""}`];
}

function holdersCaption(rows, t, live) {
  const when = live ? "holders now" : `holders at t = ${t.toFixed(3)} s`;
  if (!rows.length) return `${when}: no connection is held`;
  const more = rows.length > HOLDERS_SHOWN ? ` (the longest ${HOLDERS_SHOWN} shown)` : "";
  return `${when}: ${rows.length} connection${rows.length === 1 ? "" : "s"} held, longest first${more}`;
}

function tableRow(tag, cells, css) {
  const tr = document.createElement("tr");
  for (const [i, text] of cells.entries()) {
    const cell = document.createElement(tag);
    cell.textContent = text;
    cell.style.cssText = css(i);
    tr.append(cell);
  }
  return tr;
}

function showHolders(el, dom, s, t, live, p) {
  // Refresh the table for time t (live: from the open holds); nothing is touched when the text is the same.
  // A settled view redrawn for the pointer (same time, same events, same colours) skips even the scan.
  const at = `${t}|${s.n}|${s.batches}|${p.key}|${live}`;
  if (!live && at === dom.at) return;
  dom.at = at;
  const rows = holdersAt(s, t, live), shown = rows.slice(0, HOLDERS_SHOWN), caption = holdersCaption(rows, t, live);
  const key = [caption, p.key, s.byProcess, ...shown.map((r) => holderCells(r, s.byProcess).join("\u0001"))].join("\u0002");
  el.dataset.holders = String(rows.length);
  if (key === dom.key) return;
  dom.key = key;
  dom.caption.textContent = caption;
  const heads = [...(s.byProcess ? ["process"] : []), "connection", "holder (thread or task)", "checkout site", "held for"];
  const last = heads.length - 1, pad = "padding:1px 6px;text-align:left;border-top:1px solid var(--jp-border-color2, #e0e0e0);";
  // No one holds a connection: the caption says so, without a table head over no rows.
  if (!rows.length) { dom.head.replaceChildren(); dom.body.replaceChildren(); return; }
  dom.head.replaceChildren(tableRow("th", heads, (i) => `${pad}background:var(--jp-layout-color2, #eeeeee);` +
    `font-weight:bold;${i === last ? "text-align:right" : ""}`));
  dom.body.replaceChildren(...shown.map((r) => {
    const tr = tableRow("td", holderCells(r, s.byProcess), (i) => `${pad}white-space:nowrap;${i === last ? "text-align:right;" : ""}` +
      (i === last && r.leaked ? `color:${p.error};font-weight:bold` : ""));
    tr.className = "poolviz-live-holder";
    tr.dataset.conn = String(r.conn);
    // The holder's timeline colour on the row's edge, so a row and its bar are found together.
    tr.firstChild.style.borderLeft = `4px solid ${threadColour(p, r.threadId, 0.85)}`;
    return tr;
  }));
}
