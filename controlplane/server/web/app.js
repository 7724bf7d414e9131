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
const COLORS = { Direct: "#2e7d32", DERP: "#e65100", unknown: "#9e9e9e", self: "#37474f", stale: "#b0bec5" };
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

// isStale is the server's verdict on a node's facts (status.factsStale, from the freshness rule of
// controlplane.api): stale facts are last known values, shown greyed with "?" and their age, never as current.
function isStale(node) {
  return ((node.status || {}).factsStale) === true;
}

// stateText is the state, and for NotReady why (the Ready condition's reason): "NotReady(ControlLinkDown)".
function stateText(status) {
  const ready = (status.conditions || []).find((c) => c.type === "Ready");
  if (status.state === "NotReady" && ready && ready.reason) return `NotReady(${ready.reason})`;
  return status.state || "unknown";
}

function pathText(path, stale, confirmedAgo) {
  if (stale && !path.mode) return "unknown";
  if (stale) return `${modeText(path.mode, path.derpRegion)}? · stale ${confirmedAgo}`;
  return `${modeText(path.mode, path.derpRegion)} ${latencyText(path.latencyMs)}`.trim();
}

function throughputText(throughput, stale, now) {
  if (!throughput.download && !throughput.upload) return "—";
  const rates = `${throughput.download || "?"} / ${throughput.upload || "?"}${stale ? "?" : ""}`;
  return throughput.lastTestTime ? `${rates} · ${ago(throughput.lastTestTime, now)}` : rates;
}

function renderFleet(nodes, now) {
  const body = document.querySelector("#fleet tbody");
  const rows = nodes.map((node) => {
    const status = node.status || {};
    const network = status.network || {};
    const throughput = network.throughput || {};
    const path = pathOf(node, CONTROL_PLANE);
    const stale = isStale(node);
    const conditions = (status.conditions || []).map((c) => `${c.type}=${c.status}`).join(", ");
    const row = el(
      "tr",
      { "data-node": node.metadata.name, "data-stale": String(stale) },
      el("td", {}, node.metadata.name),
      el("td", { class: `state-${status.state || "unknown"}` }, stateText(status)),
      el("td", {}, network.ip || "—"),
      el("td", {}, network.dnsName || "—"),
      el("td", { class: stale ? "path stale" : `path mode-${path.mode || "unknown"}` }, pathText(path, stale, ago(status.lastHeartbeat, now))),
      el("td", { class: stale ? "throughput stale" : "throughput" }, throughputText(throughput, stale, now)),
      el("td", { class: "conditions" }, conditions || "—"),
      el("td", { title: status.lastHeartbeat || "" }, ago(status.lastHeartbeat, now)),
    );
    if (stale) row.classList.add("stale");
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
    const stale = isStale(node);
    image.append(svg("text", { class: "head row", x: left - 8, y: y + cellH / 2 + 4, "text-anchor": "end" }, stale ? `${from} (stale)` : from));
    columns.forEach((to, j) => {
      const x = left + j * cellW;
      const path = to === from ? null : pathOf(node, to);
      const mode = path === null ? "self" : path.mode || "unknown";
      // A stale row keeps its last known modes as text with "?", greyed: never a green or orange "current" cell.
      const label = path === null ? "—" : modeText(path.mode, path.derpRegion) + (stale && path.mode ? "?" : "");
      const fill = stale && path !== null ? COLORS.stale : COLORS[mode];
      const cell = svg("g", { class: "cell", "data-from": from, "data-to": to, "data-mode": mode, "data-stale": String(stale) });
      const detail = stale ? "last known, not current" : latencyText(path ? path.latencyMs : null);
      cell.append(
        svg("title", {}, path === null ? from : `${from} → ${to}: ${label} ${detail}`.trim()),
        svg("rect", { x: x + 1, y: y + 1, width: cellW - 2, height: cellH - 2, rx: 3, fill }),
        svg("text", { x: x + cellW / 2, y: y + (path && path.latencyMs != null && !stale ? 16 : 23) }, label),
      );
      if (path && path.latencyMs != null && !stale) {
        cell.append(svg("text", { x: x + cellW / 2, y: y + 31 }, latencyText(path.latencyMs)));
      }
      image.append(cell);
    });
  });
  const parts = [image];
  if (nodes.length > shown.length) parts.push(el("p", { class: "empty" }, `showing the first ${shown.length} of ${nodes.length} nodes`));
  target.replaceChildren(...parts);
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

// Phases in which a project sits on its node: on a node that is not Ready, the phase is not the whole truth.
const ON_NODE_PHASES = ["Scheduled", "Running"];

function renderProjects(projects, nodes) {
  const states = Object.fromEntries(nodes.map((n) => [n.metadata.name, (n.status || {}).state || "Unknown"]));
  const rows = projects.map((project) => {
    const status = project.status || {};
    const phase = status.phase || "unknown";
    const nodeState = status.nodeRef ? (states[status.nodeRef] || "Missing") : null;
    const unready = ON_NODE_PHASES.includes(phase) && nodeState !== null && nodeState !== "Ready";
    return el("tr", { "data-project": project.metadata.name, class: unready ? "unready" : "" },
      el("td", {}, project.metadata.name),
      el("td", { class: `phase-${phase}` }, unready ? `${phase} (node ${nodeState})` : phase),
      el("td", {}, status.nodeRef || "—"));
  });
  document.querySelector("#projects tbody").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 3, class: "empty" }, "no projects"))]));
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
    const projects = ((await getJSON("/api/v1/projects")).items || []).slice().sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
    renderProjects(projects, nodes);
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
