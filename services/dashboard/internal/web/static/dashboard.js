// The socklab dashboard: draws /api/state, then every state the server
// pushes (server-sent events, one per scrape round). No library: the DOM
// and inline SVG.
"use strict";

const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"}[c]));

// fmt prints a number in 3 significant figures, "–" when unknown.
function fmt(v, unit) {
  if (v === null || v === undefined) return "–";
  let s;
  const a = Math.abs(v);
  if (a === 0) s = "0";
  else if (a >= 1000) s = Math.round(v).toLocaleString("en");
  else s = Number(v.toPrecision(3)).toString();
  return unit ? s + unit : s;
}

function num(v) { return v === null || v === undefined ? "" : String(v); }

// spark draws series (arrays of numbers or nulls) as lines in one SVG.
function spark(series, colors, w = 140, h = 34) {
  let maxv = 0;
  for (const s of series) for (const v of s) if (v !== null && v > maxv) maxv = v;
  if (maxv <= 0) maxv = 1;
  const n = Math.max(...series.map((s) => s.length), 2);
  let out = `<svg viewBox="0 0 ${w} ${h}" preserveAspectRatio="none">`;
  series.forEach((s, k) => {
    let d = "", pen = false;
    s.forEach((v, i) => {
      if (v === null) { pen = false; return; }
      const x = (i / (n - 1)) * w, y = h - 2 - (v / maxv) * (h - 4);
      d += (pen ? "L" : "M") + x.toFixed(1) + " " + y.toFixed(1);
      pen = true;
    });
    out += `<path d="${d}" fill="none" stroke="${colors[k]}" stroke-width="1.3" vector-effect="non-scaling-stroke"/>`;
  });
  return out + "</svg>";
}

function ports(n) {
  if (!n.ports || n.ports.length === 0) {
    if (n.kind === "loadgen") return "client of every server, /metrics on 9100";
    if (n.kind === "capture") return "host network, watches the lab bridge";
    return "";
  }
  return n.ports.map((p) => `<b>${p.port}/${p.transport}</b>` + (p.host_port ? ` → 127.0.0.1:${p.host_port}` : "")).join(" · ");
}

function nodeCard(n) {
  const f = n.live || {};
  const h = n.history || {t: [], rate: [], error_rate: [], p50_ms: [], p99_ms: [], conns: []};
  const rateLabel = n.kind === "capture" ? "pkt/s" : "req/s";
  const plots = n.kind === "capture" || n.kind === "dashboard" ? "" : `
    <div class="plots">
      <div class="plot">${rateLabel} ${spark([h.rate], ["var(--c1)"])}</div>
      <div class="plot">errors/s ${spark([h.error_rate], ["var(--c2)"])}</div>
      <div class="plot">p50 / p99 ms ${spark([h.p50_ms, h.p99_ms], ["var(--c4)", "var(--c3)"])}</div>
      <div class="plot">open conns ${spark([h.conns], ["var(--c1)"])}</div>
    </div>`;
  return `<div class="node ${n.up ? "up" : "down"}" data-node="${esc(n.name)}" data-service="${esc(n.service)}"
      data-kind="${esc(n.kind)}" data-up="${n.up}" data-rate="${num(f.rate)}">
    <div class="head"><span class="name"><span class="dot ${n.up ? "up" : ""}"></span>${esc(n.name)}</span><span class="kind">${esc(n.kind)}</span></div>
    <div class="ports">${ports(n)}</div>
    <div class="figs">
      <div class="fig"><div class="v">${fmt(f.rate)}</div><div class="l">${rateLabel}</div></div>
      <div class="fig"><div class="v">${fmt(f.error_rate)}</div><div class="l">errors/s</div></div>
      <div class="fig"><div class="v">${fmt(f.p50_ms)}</div><div class="l">p50 ms</div></div>
      <div class="fig"><div class="v">${fmt(f.p99_ms)}</div><div class="l">p99 ms</div></div>
      <div class="fig"><div class="v">${fmt(f.conns)}</div><div class="l">conns</div></div>
    </div>
    ${plots}
    ${n.impairment ? `<div class="impaired">impaired: ${esc(n.impairment)}</div>` : ""}
    ${n.error ? `<div class="err">${esc(n.error)}</div>` : ""}
  </div>`;
}

function kinds(errors) {
  if (!errors) return "";
  return Object.keys(errors).sort().map((k) => `${esc(k)} ${fmt(errors[k])}`).join(", ");
}

function scenarioRows(g, cls) {
  return (g.scenarios || []).map((s) => `<tr class="${cls}" data-scenario="${esc(s.name)}" data-requests="${s.requests}">
      <td>${esc(s.name)}</td><td>${fmt(s.rate)}</td><td>${fmt(s.error_rate)}</td><td>${fmt(s.p50_ms)}</td><td>${fmt(s.p99_ms)}</td>
      <td>${fmt(s.requests)}</td><td>${fmt(s.successes)}</td><td class="kinds">${kinds(s.errors)}</td></tr>`).join("");
}

function load(l) {
  const gens = l.generators || [];
  if (gens.length === 0) return `<div class="kv">No load generator is running: <code>make load N=3</code> starts three.</div>`;
  const head = `<tr><th>generator</th><th>asked req/s</th><th>achieved req/s</th><th>errors/s</th><th>p50 ms</th><th>p99 ms</th><th>scenarios</th></tr>`;
  const row = (g, cls) => `<tr class="${cls}" data-generator="${esc(g.name)}" data-rate="${num(g.live && g.live.rate)}">
      <td>${g.up ? "" : "⚠ "}${esc(g.name)}</td><td>${fmt(g.target_rate)}</td><td>${fmt(g.live && g.live.rate)}</td>
      <td>${fmt(g.live && g.live.error_rate)}</td><td>${fmt(g.live && g.live.p50_ms)}</td><td>${fmt(g.live && g.live.p99_ms)}</td>
      <td>${(g.scenarios || []).length}</td></tr>`;
  const shead = `<tr><th>scenario (all generators)</th><th>req/s</th><th>errors/s</th><th>p50 ms</th><th>p99 ms</th><th>requests</th><th>successes</th><th>errors by kind (this round)</th></tr>`;
  return `<div class="loadgrid">
    <table id="generators">${head}${gens.map((g) => row(g, "")).join("")}${row(l.merged, "merged")}</table>
    <table id="scenarios">${shead}${scenarioRows(l.merged, "")}</table>
  </div>`;
}

function capture(c) {
  const s = c.status;
  if (!s) return `<div class="kv"><div><span>recording</span><b>no</b></div><div class="muted">${esc(c.error || "")}</div></div>`;
  return `<div class="kv" id="capture-box" data-recording="${c.recording}">
    <div><span>recording</span><b style="color:${c.recording ? "var(--ok)" : "var(--bad)"}">${c.recording ? "yes" : "no (status " + fmt(c.age_s) + " s old)"}</b></div>
    <div><span>interface / filter</span><span>${esc(s.iface)} ${s.filter ? "<code>" + esc(s.filter) + "</code>" : "(everything)"}</span></div>
    <div><span>packets</span><span>${fmt(s.packets)} (${fmt(c.packet_rate)} /s)</span></div>
    <div><span>bytes</span><span>${fmt(s.bytes)}</span></div>
    <div><span>drops</span><span style="color:${s.drops ? "var(--bad)" : "inherit"}">${fmt(s.drops)}</span></div>
    <div><span>file</span><span>${esc(s.file)}</span></div>
    <div><span>open it</span><code>${esc(c.open_command || "")}</code></div>
  </div>`;
}

function impair(im) {
  const list = im.list || [];
  if (list.length === 0) return `<div class="kv">None${im.updated ? " (as of " + esc(new Date(im.updated).toLocaleTimeString()) + ")" : ""}: every link runs as it is. <span class="muted">make impair</span></div>`;
  return `<table id="impairments"><tr><th>service</th><th>container</th><th>loss %</th><th>rate</th><th>delay</th><th>jitter</th><th>since</th></tr>` +
    list.map((i) => `<tr><td>${esc(i.service)}</td><td>${esc(i.container)}</td><td>${fmt(i.loss_percent)}</td><td>${esc(i.rate)}</td><td>${esc(i.delay)}</td><td>${esc(i.jitter)}</td><td>${esc(i.since)}</td></tr>`).join("") +
    `</table>`;
}

function draw(st) {
  $("nodes").innerHTML = (st.nodes || []).map(nodeCard).join("");
  $("load").innerHTML = load(st.load || {});
  $("capture").innerHTML = capture(st.capture || {});
  $("impair").innerHTML = impair(st.impairments || {});
  const sc = st.scrape || {};
  $("clock").textContent = st.time ? new Date(st.time).toLocaleTimeString() : "";
  const scrape = $("scrape");
  scrape.textContent = `round ${sc.rounds || 0}: ${sc.targets || 0} targets in ${fmt(sc.last_ms)} ms (mean ${fmt(sc.mean_ms)}, max ${fmt(sc.max_ms)} over a minute)` + (sc.failed ? `, ${sc.failed} not answering` : "");
  scrape.dataset.rounds = sc.rounds || 0;
}

function live(on) {
  const c = $("conn");
  c.textContent = on ? "live" : "reconnecting";
  c.className = "pill " + (on ? "on" : "off");
}

fetch("api/state").then((r) => r.json()).then(draw).catch(() => {});
const es = new EventSource("api/events");
es.onmessage = (e) => { live(true); draw(JSON.parse(e.data)); };
es.onerror = () => live(false);
