// The fleet page: reads /api/v1/nodes and one node's history from this server every few seconds and draws
// the fleet table, the path matrix (an SVG heat map) and the throughput chart. Plain DOM, no library; every
// value from the API is set as text, never parsed as HTML.
"use strict";

const REFRESH_MS = 5000;
// The column of each node's path to the control plane (the peer name the server's history uses for it).
const CONTROL_PLANE = "cara-server";
// The matrix shows at most this many nodes (rows and columns), in name order; the table shows every node.
const MATRIX_LIMIT = 60;
const SVG_NS = "http://www.w3.org/2000/svg";
const COLORS = { Direct: "#2e7d32", DERP: "#e65100", unknown: "#9e9e9e", self: "#37474f" };
const RATE_UNITS = { bps: 1, Kbps: 1e3, Mbps: 1e6, Gbps: 1e9 };

let selected = null;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

async function getJSON(path) {
  const response = await fetch(path, { cache: "no-store", headers: { accept: "application/json" } });
  if (!response.ok) {
    let detail = "";
    try { detail = (await response.json()).detail || ""; } catch (_) { /* not a problem document */ }
    throw new Error(`${path}: HTTP ${response.status} ${detail}`.trim());
  }
  return response.json();
}

function rateBits(text) {
  const match = /^([0-9]+(?:\.[0-9]+)?)\s*(bps|Kbps|Mbps|Gbps)$/.exec((text || "").trim());
  return match ? Number(match[1]) * RATE_UNITS[match[2]] : null;
}

function ago(iso, now) {
  if (!iso) return "never";
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 120) return `${seconds}s ago`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m ago`;
  return `${Math.round(seconds / 3600)}h ago`;
}

function latencyText(ms) {
  return ms === undefined || ms === null ? "" : `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
}

function modeText(mode, region) {
  if (mode === "Direct") return "Direct";
  if (mode === "DERP") return region ? `DERP(${region})` : "DERP";
  return "unknown";
}

// pathOf returns {mode, derpRegion, latencyMs} of the path from node to peer (CONTROL_PLANE: the control plane).
function pathOf(node, peer) {
  const network = (node.status || {}).network || {};
  if (peer === CONTROL_PLANE) return { mode: network.mode, derpRegion: network.derpRegion, latencyMs: network.latencyMs };
  return (network.peers || []).find((p) => p.name === peer) || {};
}

function renderFleet(nodes, now) {
  const body = document.querySelector("#fleet tbody");
  const rows = nodes.map((node) => {
    const status = node.status || {};
    const network = status.network || {};
    const throughput = network.throughput || {};
    const path = pathOf(node, CONTROL_PLANE);
    const conditions = (status.conditions || []).map((c) => `${c.type}=${c.status}`).join(", ");
    const row = el(
      "tr",
      { "data-node": node.metadata.name },
      el("td", {}, node.metadata.name),
      el("td", { class: `state-${status.state || "unknown"}` }, status.state || "unknown"),
      el("td", {}, network.ip || "—"),
      el("td", {}, network.dnsName || "—"),
      el("td", { class: `mode-${path.mode || "unknown"}` }, `${modeText(path.mode, path.derpRegion)} ${latencyText(path.latencyMs)}`.trim()),
      el("td", {}, throughput.download || throughput.upload ? `${throughput.download || "?"} / ${throughput.upload || "?"}` : "—"),
      el("td", { class: "conditions" }, conditions || "—"),
      el("td", { title: status.lastHeartbeat || "" }, ago(status.lastHeartbeat, now)),
    );
    if (node.metadata.name === selected) row.classList.add("selected");
    row.addEventListener("click", () => { selected = node.metadata.name; refresh(); });
    return row;
  });
  body.replaceChildren(...rows);
  const counts = {};
  for (const node of nodes) {
    const state = (node.status || {}).state || "unknown";
    counts[state] = (counts[state] || 0) + 1;
  }
  document.getElementById("summary").textContent =
    `${nodes.length} nodes: ` + Object.entries(counts).map(([state, n]) => `${n} ${state}`).join(", ");
}

function renderMatrix(nodes) {
  const target = document.getElementById("matrix");
  if (!nodes.length) {
    target.replaceChildren(el("p", { class: "empty" }, "no nodes"));
    return;
  }
  const shown = nodes.slice(0, MATRIX_LIMIT);
  const names = shown.map((n) => n.metadata.name);
  const columns = [CONTROL_PLANE, ...names];
  const cellW = 92, cellH = 38, left = 120, top = 100;
  const width = left + columns.length * cellW + 10, height = top + names.length * cellH + 10;
  const image = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "path matrix" });
  columns.forEach((name, j) => {
    const x = left + j * cellW + cellW / 2;
    image.append(svg("text", { class: "head col", x, y: top - 8, transform: `rotate(-35 ${x} ${top - 8})` }, name));
  });
  shown.forEach((node, i) => {
    const from = node.metadata.name;
    const y = top + i * cellH;
    image.append(svg("text", { class: "head row", x: left - 8, y: y + cellH / 2 + 4, "text-anchor": "end" }, from));
    columns.forEach((to, j) => {
      const x = left + j * cellW;
      const path = to === from ? null : pathOf(node, to);
      const mode = path === null ? "self" : path.mode || "unknown";
      const label = path === null ? "—" : modeText(path.mode, path.derpRegion);
      const cell = svg("g", { class: "cell", "data-from": from, "data-to": to, "data-mode": mode });
      if (path && path.relayReason) cell.setAttribute("data-reason", path.relayReason);
      const why = path && path.relayReason ? ` — ${path.relayReason}: ${path.relayMessage || ""}` : "";
      cell.append(
        svg("title", {}, path === null ? from : `${from} → ${to}: ${label} ${latencyText(path.latencyMs)}${why}`.trim()),
        svg("rect", { x: x + 1, y: y + 1, width: cellW - 2, height: cellH - 2, rx: 3, fill: COLORS[mode] }),
        svg("text", { x: x + cellW / 2, y: y + (path && path.latencyMs != null ? 16 : 23) }, label),
      );
      if (path && path.latencyMs != null) {
        cell.append(svg("text", { x: x + cellW / 2, y: y + 31 }, latencyText(path.latencyMs)));
      }
      image.append(cell);
    });
  });
  const parts = [image];
  if (nodes.length > shown.length) parts.push(el("p", { class: "empty" }, `showing the first ${shown.length} of ${nodes.length} nodes`));
  target.replaceChildren(...parts);
}

// renderRelayed lists every reported path that is not Direct, with why and since when.
function renderRelayed(nodes, now) {
  const rows = [];
  for (const node of nodes) {
    for (const p of ((node.status || {}).network || {}).peers || []) {
      if (p.mode === "Direct" || !p.relayReason) continue;
      rows.push(el("tr", { "data-from": node.metadata.name, "data-to": p.name, "data-reason": p.relayReason },
        el("td", {}, node.metadata.name), el("td", {}, p.name), el("td", {}, modeText(p.mode, p.derpRegion)),
        el("td", {}, p.relayReason), el("td", {}, p.relayMessage || ""),
        el("td", { title: p.since || "" }, p.since ? ago(p.since, now) : "—")));
    }
  }
  document.querySelector("#relayed tbody").replaceChildren(
    ...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 6, class: "empty" }, "every reported path is Direct"))]));
}

function renderChart(history) {
  const target = document.getElementById("chart");
  const samples = (history.throughput || [])
    .map((s) => ({ t: Date.parse(s.time), down: rateBits(s.download), up: rateBits(s.upload), s }))
    .filter((p) => !Number.isNaN(p.t));
  if (!samples.length) {
    target.replaceChildren(el("p", { class: "empty" }, "no throughput samples yet"));
    return;
  }
  const width = 780, height = 240, left = 84, right = 16, top = 12, bottom = 36;
  const t0 = samples[0].t, t1 = samples[samples.length - 1].t;
  const peak = Math.max(1, ...samples.flatMap((p) => [p.down || 0, p.up || 0]));
  const xOf = (t) => left + (t1 === t0 ? (width - left - right) / 2 : ((t - t0) / (t1 - t0)) * (width - left - right));
  const yOf = (bits) => top + (1 - bits / peak) * (height - top - bottom);
  const image = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "throughput history" });
  for (const fraction of [0, 0.25, 0.5, 0.75, 1]) {
    const y = yOf(peak * fraction);
    image.append(
      svg("line", { class: "grid", x1: left, x2: width - right, y1: y, y2: y }),
      svg("text", { x: left - 6, y: y + 4, "text-anchor": "end" }, `${((peak * fraction) / 1e6).toFixed(1)} Mbps`),
    );
  }
  image.append(
    svg("line", { class: "axis", x1: left, x2: width - right, y1: height - bottom, y2: height - bottom }),
    svg("text", { x: left, y: height - 12 }, new Date(t0).toISOString().replace(".000Z", "Z")),
    svg("text", { x: width - right, y: height - 12, "text-anchor": "end" }, new Date(t1).toISOString().replace(".000Z", "Z")),
  );
  for (const [key, color, direction] of [["down", "#1565c0", "download"], ["up", "#8e24aa", "upload"]]) {
    const points = samples.filter((p) => p[key] !== null);
    if (!points.length) continue;
    image.append(svg("polyline", { fill: "none", stroke: color, "stroke-width": 2, points: points.map((p) => `${xOf(p.t)},${yOf(p[key])}`).join(" ") }));
    for (const p of points) {
      image.append(svg("circle", { class: `sample ${direction}`, cx: xOf(p.t), cy: yOf(p[key]), r: 3.5, fill: color, "data-time": p.s.time, "data-rate": p.s[direction] },
        svg("title", {}, `${direction} ${p.s[direction]} at ${p.s.time}`)));
    }
  }
  const last = samples[samples.length - 1].s;
  target.replaceChildren(image, el("p", { class: "latest" }, `latest: ↓ ${last.download || "?"} ↑ ${last.upload || "?"} at ${last.time}`));
}

function renderChanges(history) {
  const rows = (history.paths || []).slice(-10).reverse().map((c) =>
    el("tr", { "data-peer": c.peer },
      el("td", {}, c.time), el("td", {}, c.peer), el("td", {}, modeText(c.from)),
      el("td", {}, modeText(c.to, c.derpRegion)), el("td", {}, latencyText(c.latencyMs) || "—")));
  document.querySelector("#changes tbody").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 5, class: "empty" }, "no path changes recorded"))]));
}

async function refresh() {
  const status = document.getElementById("updated");
  try {
    const list = await getJSON("/api/v1/nodes");
    const nodes = (list.items || []).slice().sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
    const names = nodes.map((n) => n.metadata.name);
    if (!names.includes(selected)) selected = names.length ? names[0] : null;
    const now = Date.now();
    renderFleet(nodes, now);
    renderMatrix(nodes);
    renderRelayed(nodes, now);
    document.getElementById("chart-node").textContent = selected || "no node selected";
    const history = selected ? await getJSON(`/api/v1/nodes/${encodeURIComponent(selected)}/history`) : {};
    renderChart(history);
    renderChanges(history);
    status.textContent = `updated ${new Date(now).toISOString().replace(/\.\d+Z$/, "Z")}`;
    status.classList.remove("error");
  } catch (error) {
    status.textContent = `refresh failed: ${error.message}`;
    status.classList.add("error");
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
