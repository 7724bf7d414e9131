// The fleet page, made for hundreds of nodes: a summary strip, the problems first, a compact path matrix (one small
// cell per pair, problems sorted to the top left) beside the list of paths that are not Direct, a node drill-down
// (history charts, events, availability, projects), the node table (problems first) and the projects. It reads
// only this server's API; plain DOM, no library; every value from the API is set as text, never parsed as HTML.
"use strict";

const CONTROL_PLANE = "cara-server";
// The matrix draws at most this many nodes (rows and columns); past it, the nodes with problems come first and the
// filter finds the others. The node table shows TABLE_PAGE rows more at each "Show more".
const MATRIX_LIMIT = 200;
const TABLE_PAGE = 100;
const SVG_NS = "http://www.w3.org/2000/svg";
// Cell kinds of the matrix and their colours (the CSS legend uses the same names).
const COLORS = {
  Direct: "#2e7d32", DERP: "#e65100", relay: "#6a1b9a", unknown: "#9e9e9e", notprobed: "#eef1f4",
  self: "#37474f", stale: "#b0bec5",
};
const RATE_UNITS = { bps: 1, Kbps: 1e3, Mbps: 1e6, Gbps: 1e9 };
const PRESSURES = ["MemoryPressure", "DiskPressure"];
const ON_NODE_PHASES = ["Scheduled", "Running"];
// Each kind of problem lists at most this many (the rest are counted): at 5,000 nodes the list stays readable.
const PROBLEMS_PER_KIND = 25;

// The node the drill-down shows: `#node=NAME` in the address selects one (a link to share), else the first problem.
let selected = new URLSearchParams(location.hash.slice(1)).get("node");
let tableRows = TABLE_PAGE;
let model = null; // the last fetched fleet, for hover and clicks between refreshes
let firstRender = true;

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

// ago is a human age: "12 s ago", "6 m ago", "3 h ago", "2 d ago".
function ago(iso, now) {
  if (!iso) return "never";
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 90) return `${seconds} s ago`;
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)} m ago`;
  if (seconds < 36 * 3600) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

// exact is a timestamp for a tooltip: to the second, no fractions.
function exact(iso) {
  return iso ? iso.replace(/\.\d+Z$/, "Z") : "";
}

function latencyText(ms) {
  return ms === undefined || ms === null ? "" : `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
}

function modeText(mode, region) {
  if (mode === "Direct") return "Direct";
  if (mode === "DERP") return region ? `DERP(${region})` : "DERP";
  return "unknown";
}

function condition(status, type) {
  return (status.conditions || []).find((c) => c.type === type);
}

// Node facts the page needs, computed once per refresh.
function describeNode(node, now) {
  const status = node.status || {};
  const network = status.network || {};
  const ready = condition(status, "Ready");
  const notReady = status.state === "NotReady" || (ready && ready.status !== "True");
  const pressures = PRESSURES.filter((type) => { const c = condition(status, type); return c && c.status === "True"; });
  // The paths to other Nodes (the agent leaves the control plane's host out of its peers: that path is `own`);
  // a peer that is not a Node (a laptop) is kept here and left out wherever pairs are drawn or counted.
  const peers = {};
  for (const p of network.peers || []) peers[p.name] = p;
  return {
    name: node.metadata.name, node, status, network, peers, pressures,
    state: status.state || "unknown",
    reason: ready && ready.status !== "True" ? ready.reason || "" : "",
    notReady,
    stale: status.factsStale === true,
    cordoned: !!(node.spec || {}).unschedulable,
    draining: status.state === "Draining",
    own: {
      name: CONTROL_PLANE, mode: network.mode, derpRegion: network.derpRegion, latencyMs: network.latencyMs,
      relayReason: network.relayReason, relayMessage: network.relayMessage,
    },
    beat: status.lastHeartbeat,
    // confirmed: when the facts were last reconfirmed (a beat with rejected facts renews beat, not this).
    confirmed: status.factsConfirmedAt || status.lastHeartbeat,
    notDirect: 0,
    score: 0,
  };
}

// kindOf is a reported path's cell kind: Direct, DERP, relay (a peer relay), unknown; undefined when not reported.
function kindOf(path) {
  if (!path) return undefined;
  if (path.mode === "Direct") return "Direct";
  if (path.mode === "DERP") return path.relayReason === "PeerRelay" ? "relay" : "DERP";
  return "unknown";
}

function build(nodes, projects, now) {
  const facts = nodes.map((node) => describeNode(node, now));
  const byName = Object.fromEntries(facts.map((f) => [f.name, f]));
  const notDirect = [];
  for (const f of facts) {
    // Its own path (unless never reported), then its pairs: the peers that are other Nodes.
    const own = f.own.mode || f.own.relayReason ? [f.own] : [];
    const pairs = Object.values(f.peers).filter((p) => byName[p.name] && p.name !== f.name);
    for (const p of [...own, ...pairs]) {
      if (p.mode === "Direct") continue;
      notDirect.push({ from: f.name, to: p.name, path: p, stale: f.stale });
      f.notDirect += 1;
      if (byName[p.name]) byName[p.name].notDirect += 1;
    }
  }
  for (const f of facts) {
    f.score = (f.notReady ? 1000 : 0) + (f.stale ? 300 : 0) + (f.draining || f.cordoned ? 100 : 0)
      + f.pressures.length * 50 + Math.min(f.notDirect, 40) * 5;
  }
  const ranked = facts.slice().sort((a, b) => b.score - a.score || (a.name < b.name ? -1 : 1));
  notDirect.sort((a, b) => (byName[b.from].score - byName[a.from].score) || (a.from < b.from ? -1 : a.from > b.from ? 1 : a.to < b.to ? -1 : 1));
  return { facts, byName, ranked, notDirect, projects, now };
}

// pathCounts is controlplane/api/_pathcounts.py's path_counts, the rule `caractrl mesh`'s summary applies too
// (tests/web checks the two agree on one fleet): pairs are the paths a Node reports to another Node, by kind
// (Direct, relayed: DERP or a peer relay, unknown), all of a Node whose facts are stale counted as stale only, and
// the pairs no agent reported are not probed; relayedControl counts the Nodes with current facts whose own path to
// the control plane is relayed (DERP).
function pathCounts(m) {
  const counts = { direct: 0, relayed: 0, unknown: 0, stale: 0, notProbed: 0, relayedControl: 0 };
  let reported = 0;
  for (const f of m.facts) {
    if (!f.stale && f.own.mode === "DERP") counts.relayedControl += 1;
    for (const p of Object.values(f.peers)) {
      if (!m.byName[p.name] || p.name === f.name) continue;
      reported += 1;
      const kind = kindOf(p);
      if (f.stale) counts.stale += 1;
      else if (kind === "Direct") counts.direct += 1;
      else if (kind === "unknown") counts.unknown += 1;
      else counts.relayed += 1;
    }
  }
  counts.notProbed = m.facts.length * (m.facts.length - 1) - reported;
  return counts;
}

function card(kind, big, title, small) {
  return el("div", { class: `card ${kind}`, "data-card": title }, el("div", { class: "big" }, big), el("div", {}, title), el("div", { class: "small" }, small));
}

function renderSummary(m) {
  const counts = {};
  const reasons = {};
  for (const f of m.facts) {
    counts[f.state] = (counts[f.state] || 0) + 1;
    if (f.notReady && f.reason) reasons[f.reason] = (reasons[f.reason] || 0) + 1;
  }
  const notReady = m.facts.filter((f) => f.notReady).length;
  const cordoned = m.facts.filter((f) => f.cordoned).length;
  const pressure = m.facts.filter((f) => f.pressures.length).length;
  const stale = m.facts.filter((f) => f.stale).length;
  const paths = pathCounts(m);
  const phases = {};
  for (const p of m.projects) { const phase = (p.status || {}).phase || "unknown"; phases[phase] = (phases[phase] || 0) + 1; }
  const byState = Object.entries(counts).sort().map(([s, n]) => `${n} ${s}`).join(" · ");
  const byReason = Object.entries(reasons).sort().map(([r, n]) => `${n} ${r}`).join(" · ");
  document.getElementById("summary").replaceChildren(
    card(notReady ? "bad" : "ok", `${counts.Ready || 0}/${m.facts.length}`, "Nodes Ready", byState || "no nodes"),
    card(notReady ? "bad" : "ok", String(notReady), "NotReady", byReason || "none"),
    card(cordoned ? "warn" : "", String(cordoned), "Cordoned or draining", `${counts.Draining || 0} draining`),
    card(paths.relayed ? "warn" : "ok", String(paths.relayed), "Relayed pairs",
      `${paths.unknown} unknown · ${paths.stale} stale`),
    card(paths.relayedControl ? "warn" : "ok", String(paths.relayedControl), "Relayed control paths",
      "Nodes' own paths"),
    card(pressure ? "warn" : "ok", String(pressure), "Nodes under pressure", "memory or disk"),
    card(stale ? "warn" : "ok", String(stale), "Stale facts", "not reconfirmed within the grace"),
    card("", String(m.projects.length), "Projects", Object.entries(phases).sort().map(([p, n]) => `${n} ${p}`).join(" · ") || "none"),
  );
}

function problem(kind, attrs, text) {
  const item = el("li", { class: kind, ...attrs }, text);
  if (attrs["data-node"]) item.addEventListener("click", () => select(attrs["data-node"]));
  return item;
}

function renderProblems(m) {
  const items = [];
  const add = (kind, found, more) => {
    items.push(...found.slice(0, PROBLEMS_PER_KIND));
    if (found.length > PROBLEMS_PER_KIND) items.push(el("li", { class: kind, "data-kind": "more" }, `… and ${found.length - PROBLEMS_PER_KIND} more ${more}`));
  };
  add("bad", m.ranked.filter((f) => f.notReady).map((f) => problem("bad", { "data-kind": "NotReady", "data-node": f.name },
    `${f.name} is NotReady${f.reason ? ` (${f.reason})` : ""} — last heartbeat ${ago(f.beat, m.now)}${f.stale ? ", facts stale" : ""}`)), "NotReady nodes");
  add("warn", m.ranked.flatMap((f) => f.pressures.map((type) => {
    const c = condition(f.status, type);
    return problem("warn", { "data-kind": type, "data-node": f.name }, `${f.name}: ${type}${c.message ? ` — ${c.message}` : ""}`);
  })), "nodes under pressure");
  add("warn", m.notDirect.filter((x) => x.path.mode === "DERP" && !x.stale).map((x) => problem("warn",
    { "data-kind": "Relayed", "data-node": x.from, "data-to": x.to },
    `${x.from} → ${x.to} relayed (${x.path.relayReason || "no reason given"})${x.path.since ? ` since ${ago(x.path.since, m.now)}` : ""}`)),
  "relayed paths (all in the list beside the matrix)");
  // A silent Node's facts are stale and it is NotReady, listed above; this lists the others (judged not yet).
  add("info", m.ranked.filter((f) => f.stale && !f.notReady).map((f) => problem("info", { "data-kind": "Stale", "data-node": f.name },
    `${f.name}: facts stale, last confirmed ${ago(f.confirmed, m.now)}`)), "nodes with stale facts");
  document.getElementById("problems").replaceChildren(...(items.length ? items : [el("li", { class: "none" }, "No problems: every node Ready, every reported path Direct.")]));
}

function filtered(m) {
  const text = document.getElementById("filter").value.trim().toLowerCase();
  return text ? m.ranked.filter((f) => f.name.toLowerCase().includes(text)) : m.ranked;
}

function renderMatrix(m) {
  const target = document.getElementById("matrix");
  const all = filtered(m);
  if (!all.length) {
    target.replaceChildren(el("p", { class: "empty" }, "no nodes"));
    return;
  }
  const shown = all.slice(0, MATRIX_LIMIT);
  const columns = [CONTROL_PLANE, ...shown.map((f) => f.name)];
  const available = Math.max(200, target.clientWidth || target.parentElement.clientWidth - 32);
  const cell = Math.max(3, Math.min(16, Math.floor((available - 4) / columns.length)));
  const width = columns.length * cell + 2, height = shown.length * cell + 2;
  const image = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "path matrix", "data-cell": cell, "data-rows": shown.length });
  image.append(svg("rect", { x: 0, y: 0, width, height, fill: COLORS.notprobed }));
  shown.forEach((f, i) => {
    columns.forEach((to, j) => {
      let kind;
      if (to === f.name) kind = "self";
      else {
        const path = j === 0 ? (f.own.mode ? f.own : undefined) : f.peers[to];
        kind = kindOf(path);
        if (kind === undefined) return; // not probed: the background shows it
        if (f.stale) kind = "stale";
      }
      image.append(svg("rect", { class: "cell", x: 1 + j * cell, y: 1 + i * cell, width: cell - (cell > 4 ? 1 : 0), height: cell - (cell > 4 ? 1 : 0), fill: COLORS[kind], "data-from": f.name, "data-to": to, "data-mode": kind }));
    });
  });
  const tip = document.getElementById("tip");
  const at = (event) => {
    const box = image.getBoundingClientRect();
    const scale = box.width / width;
    const j = Math.floor((event.clientX - box.left) / scale / cell), i = Math.floor((event.clientY - box.top) / scale / cell);
    return i >= 0 && i < shown.length && j >= 0 && j < columns.length ? [shown[i], columns[j]] : null;
  };
  image.addEventListener("mousemove", (event) => {
    const hit = at(event);
    if (!hit) { tip.hidden = true; return; }
    const [f, to] = hit;
    tip.textContent = cellText(f, to, m);
    tip.style.left = `${event.clientX + 14}px`;
    tip.style.top = `${event.clientY + 14}px`;
    tip.hidden = false;
  });
  image.addEventListener("mouseleave", () => { tip.hidden = true; });
  image.addEventListener("click", (event) => { const hit = at(event); if (hit) select(hit[0].name); });
  const parts = [image];
  if (all.length > shown.length) parts.push(el("p", { class: "note", id: "matrix-note" }, `showing ${shown.length} of ${all.length} nodes, problems first; type in the filter to see others`));
  target.replaceChildren(...parts);
}

function cellText(f, to, m) {
  if (to === f.name) return f.name;
  const path = to === CONTROL_PLANE ? (f.own.mode ? f.own : undefined) : f.peers[to];
  if (!path) return `${f.name} → ${to}: not probed (no agent reported this pair)`;
  let text = `${f.name} → ${to}: ${modeText(path.mode, path.derpRegion)} ${latencyText(path.latencyMs)}`.trim();
  if (f.stale) text += " — last known, not current (stale)";
  if (path.relayReason) text += ` — ${path.relayReason}: ${path.relayMessage || ""}`;
  if (path.since) text += ` (since ${ago(path.since, m.now)})`;
  return text;
}

function renderRelayed(m) {
  const rows = m.notDirect.map((x) => {
    const row = el("tr", { "data-from": x.from, "data-to": x.to, "data-mode": kindOf(x.path), "data-reason": x.path.relayReason || "" },
      el("td", {}, x.from), el("td", {}, x.to),
      el("td", { class: `mode-${x.path.mode || "unknown"}` }, modeText(x.path.mode, x.path.derpRegion) + (x.stale ? "?" : "")),
      el("td", { title: x.path.relayMessage || "" }, x.path.relayReason || "—"),
      el("td", { title: exact(x.path.since) }, x.path.since ? ago(x.path.since, m.now) : "—"));
    row.addEventListener("click", () => select(x.from));
    return row;
  });
  document.querySelector("#relayed tbody").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 5, class: "empty" }, "every reported path is Direct"))]));
}

function stateText(f) {
  if (f.notReady && f.reason) return `NotReady(${f.reason})`;
  return f.state;
}

function renderFleet(m) {
  const all = filtered(m);
  const shown = all.slice(0, tableRows);
  const rows = shown.map((f) => {
    const throughput = f.network.throughput || {};
    const rates = throughput.download || throughput.upload
      ? `${throughput.download || "?"} / ${throughput.upload || "?"}${f.stale ? "?" : ""}${throughput.lastTestTime ? ` · ${ago(throughput.lastTestTime, m.now)}` : ""}` : "—";
    // A stale node's path is its last known one, with "?" and how long ago it was confirmed, never a latency.
    const own = !f.own.mode ? "unknown" : f.stale ? `${modeText(f.own.mode, f.own.derpRegion)}? · stale ${ago(f.confirmed, m.now)}`
      : `${modeText(f.own.mode, f.own.derpRegion)} ${latencyText(f.own.latencyMs)}`.trim();
    const name = el("td", {}, f.name);
    if (f.cordoned) name.append(el("span", { class: "tag cordoned" }, f.draining ? "draining" : "cordoned"));
    const row = el("tr", { "data-node": f.name, "data-stale": String(f.stale), "data-state": f.state },
      name,
      el("td", { class: `state-${f.state}` }, stateText(f)),
      el("td", { class: f.stale ? "stale" : `mode-${f.own.mode || "unknown"}` }, own),
      el("td", {}, String(f.notDirect)),
      el("td", { class: f.stale ? "stale" : "" }, rates),
      el("td", { class: "pressure" }, f.pressures.join(", ") || "—"),
      el("td", { title: exact(f.beat) }, ago(f.beat, m.now)));
    if (f.stale) row.classList.add("stale");
    if (f.name === selected) row.classList.add("selected");
    row.addEventListener("click", () => select(f.name));
    return row;
  });
  document.querySelector("#fleet tbody").replaceChildren(...rows);
  document.getElementById("fleet-note").textContent = `${shown.length} of ${all.length}${all.length !== m.facts.length ? ` matching (${m.facts.length} in all)` : ""}, problems first`;
  document.getElementById("more").hidden = shown.length >= all.length;
}

function renderProjects(m) {
  const rows = m.projects.map((project) => {
    const status = project.status || {};
    const phase = status.phase || "unknown";
    const host = status.nodeRef ? m.byName[status.nodeRef] : null;
    const hostState = status.nodeRef ? (host ? host.state : "Missing") : null;
    const unready = ON_NODE_PHASES.includes(phase) && hostState !== null && hostState !== "Ready";
    return el("tr", { "data-project": project.metadata.name, class: unready ? "unready" : "" },
      el("td", {}, project.metadata.name),
      el("td", { class: `phase-${phase}` }, unready ? `${phase} (node ${hostState})` : phase),
      el("td", {}, status.nodeRef || "—"));
  });
  document.querySelector("#projects tbody").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 3, class: "empty" }, "no projects"))]));
}

// chart draws series [{name, color, points: [{t, v, label}]}] over time with a value axis formatted by unit.
function chart(label, series, unit) {
  const points = series.flatMap((s) => s.points);
  if (!points.length) return el("p", { class: "empty" }, `${label}: nothing recorded yet`);
  const width = 560, height = 200, left = 70, right = 12, top = 10, bottom = 30;
  const t0 = Math.min(...points.map((p) => p.t)), t1 = Math.max(...points.map((p) => p.t));
  const peak = Math.max(1e-9, ...points.map((p) => p.v));
  const xOf = (t) => left + (t1 === t0 ? (width - left - right) / 2 : ((t - t0) / (t1 - t0)) * (width - left - right));
  const yOf = (v) => top + (1 - v / peak) * (height - top - bottom);
  const image = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label });
  for (const fraction of [0, 0.5, 1]) {
    const y = yOf(peak * fraction);
    image.append(svg("line", { class: "grid", x1: left, x2: width - right, y1: y, y2: y }),
      svg("text", { x: left - 6, y: y + 4, "text-anchor": "end" }, unit(peak * fraction)));
  }
  image.append(svg("line", { class: "axis", x1: left, x2: width - right, y1: height - bottom, y2: height - bottom }),
    svg("text", { x: left, y: height - 10 }, exact(new Date(t0).toISOString())),
    svg("text", { x: width - right, y: height - 10, "text-anchor": "end" }, exact(new Date(t1).toISOString())));
  for (const s of series) {
    if (s.points.length > 1) image.append(svg("polyline", { fill: "none", stroke: s.color, "stroke-width": 2, points: s.points.map((p) => `${xOf(p.t)},${yOf(p.v)}`).join(" ") }));
    for (const p of s.points) image.append(svg("circle", { class: `sample ${s.name}`, cx: xOf(p.t), cy: yOf(p.v), r: 3, fill: s.color }, svg("title", {}, p.label)));
  }
  return el("figure", {}, el("figcaption", {}, label), image);
}

function percent(ratio) {
  return ratio === null || ratio === undefined ? "—" : `${(ratio * 100).toFixed(1)} %`;
}

async function renderDrill(m) {
  const target = document.getElementById("drill-body");
  document.getElementById("drill-node").textContent = selected || "—";
  if (!selected || !m.byName[selected]) return;
  const f = m.byName[selected];
  const name = encodeURIComponent(selected);
  const [history, events, availability] = await Promise.all([
    getJSON(`/api/v1/nodes/${name}/history`).catch(() => ({})),
    getJSON(`/api/v1/events?kind=Node&name=${name}&limit=15`).catch(() => ({ items: [] })),
    getJSON(`/api/v1/nodes/${name}/availability`).catch(() => null),
  ]);
  const samples = (history.throughput || []).map((s) => ({ t: Date.parse(s.time), s })).filter((p) => !Number.isNaN(p.t));
  const rates = [["download", "#1565c0"], ["upload", "#8e24aa"]].map(([direction, color]) => ({
    name: direction, color,
    points: samples.filter((p) => rateBits(p.s[direction]) !== null).map((p) => ({ t: p.t, v: rateBits(p.s[direction]), label: `${direction} ${p.s[direction]} at ${exact(p.s.time)}` })),
  }));
  const changes = (history.paths || []).filter((c) => c.latencyMs !== undefined && c.latencyMs !== null);
  const latency = [{ name: "latency", color: "#00897b", points: changes.map((c) => ({ t: Date.parse(c.time), v: c.latencyMs, label: `${c.peer}: ${modeText(c.to, c.derpRegion)} ${latencyText(c.latencyMs)} at ${exact(c.time)}` })) }];
  const mbps = (v) => `${(v / 1e6).toFixed(1)} Mbps`;
  const ms = (v) => `${v.toFixed(1)} ms`;
  const head = el("p", {}, `${stateText(f)}${f.cordoned ? (f.draining ? " · draining" : " · cordoned") : ""} · last heartbeat ${ago(f.beat, m.now)}`
    + (f.stale ? " · facts stale (last known values)" : ""));
  const ready = availability ? availability.ready.map((w) => `${w.window}: ${percent(w.ratio)}`).join(" · ") : "—";
  const avail = el("p", { id: "drill-availability" }, `Ready ${ready}`);
  const changeRows = (history.paths || []).slice(-10).reverse().map((c) => el("tr", { "data-peer": c.peer },
    el("td", { title: exact(c.time) }, ago(c.time, m.now)), el("td", {}, c.peer), el("td", {}, modeText(c.from)),
    el("td", {}, modeText(c.to, c.derpRegion)), el("td", {}, latencyText(c.latencyMs) || "—")));
  const eventRows = (events.items || []).slice().reverse().map((e) => el("tr", { "data-reason": e.reason },
    el("td", { title: exact(e.lastTimestamp) }, ago(e.lastTimestamp, m.now)), el("td", {}, e.type), el("td", {}, e.reason),
    el("td", { class: "message" }, e.message + (e.actor ? ` (by ${e.actor})` : ""))));
  const projects = m.projects.filter((p) => (p.status || {}).nodeRef === selected).map((p) => `${p.metadata.name} (${(p.status || {}).phase || "?"})`);
  const table = (id, headers, rows, empty) => el("table", { id }, el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, ...(rows.length ? rows : [el("tr", {}, el("td", { colspan: headers.length, class: "empty" }, empty))])));
  target.replaceChildren(head, avail,
    el("div", { class: "charts" },
      chart("Throughput to the control plane", rates, mbps),
      chart("Latency at each path change", latency, ms)),
    el("h3", {}, "Path changes"), table("changes", ["When", "Peer", "From", "To", "Latency"], changeRows, "no path changes recorded"),
    el("h3", {}, "Events"), table("events", ["When", "Type", "Reason", "Message"], eventRows, "no events"),
    el("h3", {}, "Projects"), el("p", { id: "drill-projects" }, projects.join(", ") || "none"));
}

function select(name) {
  selected = name;
  if (model) { renderFleet(model); renderDrill(model).catch(showError); }
  document.getElementById("drill").scrollIntoView({ block: "nearest" });
}

function showError(error) {
  const status = document.getElementById("updated");
  status.textContent = `refresh failed: ${error.message}`;
  status.classList.add("error");
}

// recordLayout notes on <html> what a headless test cannot measure from the DOM alone: whether the page or the
// matrix is wider than the window or its panel (it must not be), and when the first full render ended.
function recordLayout() {
  const root = document.documentElement;
  const image = document.querySelector("#matrix svg");
  const panel = document.getElementById("matrix-panel");
  root.dataset.renderedMs = String(Math.round(performance.now()));
  root.dataset.pageWidth = String(root.scrollWidth);
  root.dataset.viewWidth = String(window.innerWidth);
  if (image) {
    root.dataset.matrixRight = String(Math.round(image.getBoundingClientRect().right));
    root.dataset.panelRight = String(Math.round(panel.getBoundingClientRect().right));
  }
}

function renderAll(m) {
  renderSummary(m);
  renderProblems(m);
  renderMatrix(m);
  renderRelayed(m);
  renderFleet(m);
  renderProjects(m);
}

async function refresh() {
  const status = document.getElementById("updated");
  try {
    const [nodeList, projectList] = await Promise.all([getJSON("/api/v1/nodes"), getJSON("/api/v1/projects")]);
    const now = Date.now();
    const nodes = nodeList.items || [];
    const projects = (projectList.items || []).slice().sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
    model = build(nodes, projects, now);
    if (selected && !model.byName[selected]) selected = null;
    if (!selected && model.ranked.length) selected = model.ranked[0].name;
    renderAll(model);
    await renderDrill(model);
    status.textContent = `updated ${ago(new Date(now).toISOString(), Date.now())} · ${exact(new Date(now).toISOString())}`;
    status.classList.remove("error");
    if (firstRender) {
      firstRender = false;
      recordLayout();
    }
  } catch (error) {
    showError(error);
  }
  // A large fleet is refreshed less often: each refresh reads every node.
  setTimeout(refresh, model && model.facts.length > 1000 ? 20000 : 5000);
}

document.getElementById("filter").addEventListener("input", () => { if (model) { tableRows = TABLE_PAGE; renderMatrix(model); renderFleet(model); } });
document.getElementById("more").addEventListener("click", () => { tableRows += TABLE_PAGE; if (model) renderFleet(model); });
refresh();
