// Resume Agent console: vanilla JS, no build step, no third-party code.
// Views are chosen by the URL hash (#/, #/tasks, #/task/{id}, #/resumes,
// #/flip); every number comes from the public API. No inline handlers, no
// innerHTML with data: text goes through textContent (CSP- and XSS-safe).
"use strict";

const $ = (sel) => document.querySelector(sel);
const TOKEN_KEY = "resume-agent.token";
const STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"];

// ---- small DOM helper: el("td", {class: "num"}, "42") ----
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}
function svg(tag, attrs) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}
function fill(node, ...children) { node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined)); }
function badge(status) { return el("span", { class: "badge b-" + status }, status); }
function when(t) { return t ? new Date(t).toLocaleString() : "—"; }
function short(id) { return id.slice(0, 8) + "…" + id.slice(-4); }

// ---- API access with the optional bearer token ----
function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }
function headers(extra) {
  const h = Object.assign({ accept: "application/json" }, extra || {});
  if (token()) h.authorization = "Bearer " + token();
  return h;
}
class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || "HTTP " + status);
    this.status = status;
  }
}
async function api(method, path, body) {
  const init = { method, headers: headers() };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) { init.body = JSON.stringify(body); init.headers["content-type"] = "application/json"; }
  const r = await fetch(path, init);
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!r.ok) {
    if (r.status === 401) askForToken("The API needs a bearer token (AUTH_MODE=jwt): " + ((data && data.detail) || "unauthorized"));
    throw new ApiError(r.status, data);
  }
  return data;
}
function showAlert(msg) {
  const a = $("#alert");
  if (!msg) { a.hidden = true; a.textContent = ""; return; }
  a.textContent = msg; a.hidden = false;
}

// Server-Sent Events over fetch, so that the Authorization header is sent
// (EventSource cannot send one). Calls onTask for each `data:` Task; resolves
// when the stream ends; abort with the returned controller.
function streamTask(id, onTask) {
  const ctl = new AbortController();
  const done = (async () => {
    const r = await fetch("/api/tasks/" + encodeURIComponent(id) + "/events",
      { headers: headers({ accept: "text/event-stream" }), signal: ctl.signal });
    if (!r.ok || !r.body) throw new ApiError(r.status, null);
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done: end } = await reader.read();
      if (end) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, i); buf = buf.slice(i + 2);
        const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
        if (data) { try { onTask(JSON.parse(data)); } catch (_) { /* not a task */ } }
      }
    }
  })();
  return { ctl, done };
}

// ---- token panel ----
function askForToken(msg) {
  const p = $("#token-panel");
  p.hidden = false; $("#token-toggle").setAttribute("aria-expanded", "true");
  if (msg) showAlert(msg);
}
function setupToken() {
  $("#token-toggle").addEventListener("click", () => {
    const p = $("#token-panel"); p.hidden = !p.hidden;
    $("#token-toggle").setAttribute("aria-expanded", String(!p.hidden));
    if (!p.hidden) $("#token-input").focus();
  });
  $("#token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const t = $("#token-input").value.trim().replace(/^Bearer\s+/i, "");
    if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY);
    $("#token-input").value = "";
    $("#token-panel").hidden = true; $("#token-toggle").setAttribute("aria-expanded", "false");
    showAlert(""); loadSession(); route();
  });
  $("#token-clear").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); loadSession(); route(); });
}
let session = null;
async function loadSession() {
  try {
    session = await api("GET", "/api/session");
    $("#who").textContent = "as " + session.owner + (session.admin ? " · admin (every owner)" : "") +
      (session.auth_mode === "jwt" ? " · token" : "");
  } catch (_) { session = null; $("#who").textContent = "not signed in"; }
}

// ---- view switching; each view returns a stop() for its timers/streams ----
let stopView = () => {};
function every(ms, fn) {
  let alive = true, t = null;
  const tick = async () => { try { await fn(); } catch (e) { if (alive) showAlert(e.message); } if (alive) t = setTimeout(tick, ms); };
  tick();
  return () => { alive = false; clearTimeout(t); };
}
function route() {
  stopView(); stopView = () => {};
  showAlert("");
  const h = location.hash.replace(/^#/, "") || "/";
  const parts = h.split("/").filter(Boolean);
  let view = "overview", arg = null;
  if (parts[0] === "tasks") view = "tasks";
  else if (parts[0] === "task" && parts[1]) { view = "task"; arg = decodeURIComponent(parts[1]); }
  else if (parts[0] === "resumes") view = "resumes";
  else if (parts[0] === "flip") view = "flip";
  for (const s of document.querySelectorAll("[data-view]")) s.hidden = s.dataset.view !== view;
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === view || (view === "task" && a.dataset.nav === "tasks")) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const title = { overview: "Overview", tasks: "Tasks", task: "Task", resumes: "Résumés", flip: "Backends" }[view];
  document.title = title + " · Resume Agent console";
  stopView = VIEWS[view](arg) || (() => {});
  const h1 = document.querySelector('[data-view="' + view + '"] h1');
  if (h1 && document.activeElement && document.activeElement.closest("nav")) h1.focus();
}

// ---- overview ----
function drawChart(series) {
  const W = 600, H = 160, P = 24;
  const pts = series.items;
  const max = Math.max(1, ...pts.map((p) => p.succeeded + p.failed + p.cancelled));
  const bw = (W - P) / Math.max(1, pts.length);
  const total = pts.reduce((a, p) => a + p.succeeded + p.failed + p.cancelled, 0);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H + 18}`, role: "img",
    "aria-label": `Finished tasks per minute over the last hour: ${total} in total, at most ${max} in one minute` });
  root.append(svg("line", { x1: P, y1: H, x2: W, y2: H, stroke: "#8a91a0" }));
  const lbl = svg("text", { x: 0, y: 10, "font-size": 10, fill: "#52596a" }); lbl.textContent = String(max); root.append(lbl);
  const zero = svg("text", { x: 0, y: H, "font-size": 10, fill: "#52596a" }); zero.textContent = "0"; root.append(zero);
  pts.forEach((p, i) => {
    let y = H;
    for (const [k, c] of [["succeeded", "#1e8e3e"], ["failed", "#d93025"], ["cancelled", "#80868b"]]) {
      const h = (p[k] / max) * (H - 8);
      if (h > 0) { y -= h; const r = svg("rect", { x: P + i * bw + 0.5, y, width: Math.max(1, bw - 1), height: h, fill: c });
        const t = svg("title", {}); t.textContent = `${new Date(p.start).toLocaleTimeString()}: ${p[k]} ${k}`; r.append(t); root.append(r); }
    }
  });
  if (pts.length) {
    for (const [i, anchor] of [[0, "start"], [pts.length - 1, "end"]]) {
      const t = svg("text", { x: i === 0 ? P : W, y: H + 14, "font-size": 10, fill: "#52596a", "text-anchor": anchor });
      t.textContent = new Date(pts[i].start).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }); root.append(t);
    }
  }
  fill($("#ov-chart"), root);
}
function queueTable(view, withBars) {
  const max = Math.max(1, ...view.items.map((b) => b.queued + b.running));
  if (!view.items.length) return el("p", { class: "muted" }, "Nothing queued or running. New tasks go to ", el("code", {}, view.current), ".");
  return el("table", {},
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "backend"), el("th", { scope: "col", class: "num" }, "queued"),
      el("th", { scope: "col", class: "num" }, "running"), withBars ? el("th", { scope: "col" }, "share") : null)),
    el("tbody", {}, view.items.map((b) => el("tr", { "data-backend": b.backend || "unrecorded" },
      el("td", {}, b.backend || "(not recorded)", b.backend === view.current ? el("small", {}, " · current") : null),
      el("td", { class: "num" }, b.queued), el("td", { class: "num" }, b.running),
      withBars ? el("td", {}, el("div", { class: "bar", role: "presentation" }, el("span", { style: null, "data-w": Math.round(100 * (b.queued + b.running) / max) }))) : null))));
}
function sizeBars(root) { for (const s of root.querySelectorAll("[data-w]")) s.style.width = s.dataset.w + "%"; }
function viewOverview() {
  return every(2000, async () => {
    const [kinds, series, queues, ready] = await Promise.all([
      api("GET", "/api/stats/kinds"), api("GET", "/api/stats/timeseries?interval=60"), api("GET", "/api/queues"),
      fetch("/api/ready").then((r) => r.json()).catch(() => ({ status: "unreachable", checks: {} })),
    ]);
    const sum = Object.fromEntries(STATUSES.map((s) => [s, kinds.items.reduce((a, k) => a + k[s], 0)]));
    fill($("#ov-cards"), STATUSES.map((s) => el("div", { class: "card", "data-status": s },
      el("span", { class: "n" }, sum[s]), el("span", { class: "l" }, s + (s === "queued" || s === "running" ? " now" : " · 24 h")))));
    fill($("#ov-kinds"), kinds.items.length ? el("table", {},
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "kind"), STATUSES.map((s) => el("th", { scope: "col", class: "num" }, s)))),
      el("tbody", {}, kinds.items.map((k) => el("tr", {}, el("th", { scope: "row" }, k.kind), STATUSES.map((s) => el("td", { class: "num" }, k[s]))))))
      : el("p", { class: "muted" }, "No tasks yet."));
    drawChart(series);
    fill($("#ov-queues"), queueTable(queues, false));
    const checks = Object.assign({ web: "ok" }, ready.checks || {});
    fill($("#ov-ready"), ["web", "database", "backend", "storage"].map((k) => {
      const v = String(checks[k] === undefined ? "unknown" : checks[k]);
      const ok = v === "ok";
      return el("li", { "data-check": k }, el("span", { class: "badge " + (ok ? "b-succeeded" : v.startsWith("degraded") ? "b-queued" : "b-failed") }, ok ? "ok" : "not ok"), " ", el("strong", {}, k), ok ? "" : ": " + v);
    }));
  });
};

// ---- tasks list ----
const listState = { cursor: null, stack: [] };
function taskFilters() { return { status: $("#f-status").value, kind: $("#f-kind").value }; }
async function loadTasks() {
  const f = taskFilters();
  const q = new URLSearchParams({ limit: "25" });
  if (f.status) q.set("status", f.status);
  if (f.kind) q.set("kind", f.kind);
  if (listState.cursor) q.set("cursor", listState.cursor);
  const page = await api("GET", "/api/tasks?" + q);
  listState.next = page.next_cursor;
  $("#page-next").disabled = !page.next_cursor;
  $("#page-first").disabled = !listState.cursor;
  const showOwner = session && session.admin;
  fill($("#tasks-table"), page.items.length ? el("table", {},
    el("thead", {}, el("tr", {}, ["id", "kind", "status", "attempts", "created", "finished"].concat(showOwner ? ["owner"] : []).map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, page.items.map((t) => el("tr", { "data-task": t.id },
      el("td", { class: "mono" }, el("a", { href: "#/task/" + t.id, title: t.id }, short(t.id))),
      el("td", {}, t.kind), el("td", {}, badge(t.status)), el("td", { class: "num" }, t.attempts + "/" + t.max_attempts),
      el("td", {}, when(t.created_at)), el("td", {}, when(t.finished_at)), showOwner ? el("td", {}, t.owner_id) : null))))
    : el("p", { class: "muted" }, "No tasks match."));
}
function viewTasks() {
  return every(3000, loadTasks);
};
function setupTasks() {
  $("#task-filter").addEventListener("submit", (e) => {
    e.preventDefault();
    const id = $("#f-id").value.trim();
    if (id) { $("#f-id").value = ""; location.hash = "#/task/" + encodeURIComponent(id); return; }
    listState.cursor = null; listState.stack = []; loadTasks().catch((x) => showAlert(x.message));
  });
  for (const s of ["#f-status", "#f-kind"]) $(s).addEventListener("change", () => { listState.cursor = null; listState.stack = []; loadTasks().catch((x) => showAlert(x.message)); });
  $("#page-next").addEventListener("click", () => { if (!listState.next) return; listState.stack.push(listState.cursor); listState.cursor = listState.next; loadTasks().catch((x) => showAlert(x.message)); });
  $("#page-first").addEventListener("click", () => { listState.cursor = null; listState.stack = []; loadTasks().catch((x) => showAlert(x.message)); });
  $("#bulk-retry").addEventListener("click", async () => {
    const f = taskFilters();
    const body = { status: ["failed"], limit: 1000 };
    if (f.kind) body.kind = f.kind;
    try { const r = await api("POST", "/api/tasks/retry", body); $("#bulk-result").textContent = r.retried + " re-queued"; await loadTasks(); }
    catch (x) { showAlert(x.message); }
  });
  $("#n-kind").addEventListener("change", () => {
    $("#n-payload").value = { "system.sleep": '{"ms": 1500}', "system.noop": "{}", "system.fail": '{"message": "drill"}' }[$("#n-kind").value];
  });
  $("#new-task-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    let payload;
    try { payload = JSON.parse($("#n-payload").value || "{}"); } catch (_) { showAlert("The payload is not valid JSON."); return; }
    try {
      const t = await api("POST", "/api/tasks", { kind: $("#n-kind").value, payload, max_attempts: Number($("#n-attempts").value) || 3 });
      pendingTask = t;
      location.hash = "#/task/" + t.id;
    } catch (x) { showAlert(x.message); }
  });
}

// ---- task detail ----
let pendingTask = null;
function renderTask(t) {
  fill($("#t-status"), t.status); $("#t-status").className = "badge b-" + t.status;
  $("#h-task").textContent = t.kind + " " + short(t.id);
  $("#t-cancel").disabled = !(t.status === "queued" || t.status === "running") || t.cancel_requested;
  $("#t-retry").disabled = !(t.status === "failed" || t.status === "cancelled");
  const facts = [["id", t.id], ["owner", t.owner_id], ["attempts", t.attempts + " of " + t.max_attempts], ["timeout", t.timeout_secs + " s"],
    ["created", when(t.created_at)], ["started", when(t.started_at)], ["finished", when(t.finished_at)], ["run after", when(t.run_after)]];
  if (t.cancel_requested) facts.push(["cancel", "requested"]);
  fill($("#t-facts"), facts.map(([k, v]) => [el("dt", {}, k), el("dd", { class: k === "id" ? "mono" : null }, v)]));
  $("#t-payload").textContent = JSON.stringify(t.payload, null, 2);
  $("#t-error-box").hidden = !t.error; $("#t-error").textContent = t.error || "";
  fill($("#t-result"), t.result === null || t.result === undefined ? el("p", { class: "muted" }, "No result (yet).") :
    el("details", { open: true }, el("summary", {}, "Result JSON (" + JSON.stringify(t.result).length + " bytes)"), el("pre", { id: "t-result-json" }, JSON.stringify(t.result, null, 2))));
  const hist = $("#t-history");
  const last = hist.lastElementChild;
  if (!last || last.dataset.status !== t.status) hist.append(el("li", { "data-status": t.status }, badge(t.status), " ", el("small", {}, new Date().toLocaleTimeString())));
}
async function loadAttempts(id) {
  const a = await api("GET", "/api/tasks/" + encodeURIComponent(id) + "/attempts");
  fill($("#t-attempts"), a.items.length ? el("table", {},
    el("thead", {}, el("tr", {}, ["#", "worker", "started", "finished", "outcome", "error"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, a.items.map((x) => el("tr", {}, el("td", { class: "num" }, x.attempt), el("td", { class: "mono" }, x.worker || "—"),
      el("td", {}, when(x.started_at)), el("td", {}, when(x.finished_at)), el("td", {}, x.outcome), el("td", { class: "err" }, x.error || "")))))
    : el("p", { class: "muted" }, "No attempt recorded yet."));
}
let currentTask = null;
// The task page's live status: one event stream at a time (a generation
// number retires the previous one when Retry starts a new run).
const live = { gen: 0, stream: null };
function watchTask(id) {
  const gen = ++live.gen;
  if (live.stream) live.stream.ctl.abort();
  (async () => {
    while (gen === live.gen) {
      $("#t-live").textContent = "live";
      live.stream = streamTask(id, (t) => { if (gen !== live.gen) return; currentTask = t; renderTask(t); loadAttempts(id).catch(() => {}); });
      try { await live.stream.done; } catch (e) {
        if (gen !== live.gen) return;
        if (e.status === 404) { showAlert("No such task (or not yours): " + id); $("#t-live").textContent = ""; return; }
      }
      if (gen !== live.gen) return;
      const finished = currentTask && STATUSES.slice(2).includes(currentTask.status);
      $("#t-live").textContent = finished ? "finished" : "reconnecting…";
      if (finished) { await loadAttempts(id).catch(() => {}); return; }
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();
}
function viewTask(id) {
  fill($("#t-history"));
  fill($("#t-attempts")); $("#t-live").textContent = "";
  currentTask = null;
  if (pendingTask && pendingTask.id === id) { currentTask = pendingTask; renderTask(pendingTask); }
  pendingTask = null;
  watchTask(id);
  return () => { live.gen++; if (live.stream) live.stream.ctl.abort(); };
}
function setupTask() {
  $("#t-cancel").addEventListener("click", async () => {
    if (!currentTask) return;
    try { renderTask(await api("POST", "/api/tasks/" + currentTask.id + "/cancel")); } catch (x) { showAlert(x.message); }
  });
  $("#t-retry").addEventListener("click", async () => {
    if (!currentTask) return;
    try { const t = await api("POST", "/api/tasks/" + currentTask.id + "/retry"); currentTask = t; renderTask(t); watchTask(t.id); }
    catch (x) { showAlert(x.message); }
  });
}

// ---- résumés ----
let resumeFile = null;
function waitTask(id, onUpdate) {
  return new Promise((resolve, reject) => {
    let last = null;
    const s = streamTask(id, (t) => { last = t; if (onUpdate) onUpdate(t); });
    s.done.then(() => (last && STATUSES.slice(2).includes(last.status) ? resolve(last) : reject(new Error("the event stream ended early")))).catch(reject);
  });
}
function renderResume(r) {
  const links = [r.links && r.links.linkedin, r.links && r.links.github].concat((r.links && r.links.websites) || []).filter(Boolean);
  fill($("#r-contact"), [["name", r.name], ["email", r.email], ["phone", r.phone], ["location", r.location], ["links", links.join(" · ")], ["words", r.word_count]]
    .map(([k, v]) => [el("dt", {}, k), el("dd", { id: "r-" + k }, v === null || v === undefined || v === "" ? "—" : v)]));
  fill($("#r-skills"), (r.skills || []).map((s) => el("li", {}, s)));
  fill($("#r-experience"), (r.experience || []).length ? r.experience.map((x) => el("li", {},
    el("strong", {}, [x.title, x.employer].filter(Boolean).join(" · ") || "—"), " ", el("small", {}, [x.start, x.end].filter(Boolean).join(" – ")),
    x.description ? el("div", { class: "muted" }, x.description) : null)) : el("li", {}, "No experience found."));
  fill($("#r-education"), (r.education || []).length ? r.education.map((x) => el("li", {},
    [x.degree, x.institution].filter(Boolean).join(", ") || "—", " ", el("small", {}, [x.start, x.end].filter(Boolean).join(" – ")))) : el("li", {}, "No education found."));
  $("#r-result").hidden = false;
}
async function uploadResume(file) {
  const st = $("#r-status");
  $("#r-result").hidden = true; $("#m-result").hidden = true;
  try {
    st.textContent = "Uploading " + file.name + "…";
    const fd = new FormData(); fd.append("file", file, file.name);
    const f = await api("POST", "/api/files", fd);
    resumeFile = f;
    const t = await api("POST", "/api/tasks", { kind: "resume.parse", payload: { file_id: f.id } });
    st.textContent = "resume.parse " + t.status + "…";
    const done = await waitTask(t.id, (x) => { st.textContent = "resume.parse " + x.status + "…"; });
    if (done.status !== "succeeded") { st.textContent = "Parsing " + done.status + ": " + (done.error || ""); return; }
    st.textContent = "Parsed " + f.filename + " (task " + short(done.id) + ").";
    renderResume(done.result);
  } catch (x) { st.textContent = "Failed: " + x.message; }
}
function setupResumes() {
  const drop = $("#drop");
  $("#r-file").addEventListener("change", () => { const f = $("#r-file").files[0]; if (f) uploadResume(f); });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); const f = e.dataTransfer.files[0]; if (f) uploadResume(f); });
  $("#match-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const jd = $("#m-jd").value.trim(), st = $("#m-status");
    if (!resumeFile) { st.textContent = "Upload a résumé first."; return; }
    if (!jd) { st.textContent = "Paste a job description first."; return; }
    try {
      const t = await api("POST", "/api/tasks", { kind: "resume.match", payload: { file_id: resumeFile.id, job_description: jd } });
      st.textContent = "resume.match " + t.status + "…";
      const done = await waitTask(t.id, (x) => { st.textContent = "resume.match " + x.status + "…"; });
      if (done.status !== "succeeded") { st.textContent = "Matching " + done.status + ": " + (done.error || ""); return; }
      st.textContent = "Matched.";
      $("#m-score").textContent = done.result.score;
      fill($("#m-matched"), (done.result.matched_skills || []).map((s) => el("li", {}, s)));
      fill($("#m-missing"), (done.result.missing_skills || []).map((s) => el("li", {}, s)));
      $("#m-result").hidden = false;
    } catch (x) { st.textContent = "Failed: " + x.message; }
  });
}
function viewResumes() { return () => {}; };

// ---- flip view ----
function viewFlip() {
  return every(2000, async () => {
    const q = await api("GET", "/api/queues");
    const note = el("p", { class: "muted" }, "Scope: ", q.scope === "all" ? "every owner" : "your tasks", ". New tasks go to ", el("code", {}, q.current), ".",
      q.poison_depth === null || q.poison_depth === undefined ? "" : " Poison queue: " + q.poison_depth + " messages.");
    const t = queueTable(q, true);
    fill($("#flip-table"), note, t);
    sizeBars($("#flip-table"));
  });
};

const VIEWS = { overview: viewOverview, tasks: viewTasks, task: viewTask, resumes: viewResumes, flip: viewFlip };
document.addEventListener("DOMContentLoaded", () => {
  setupToken(); setupTasks(); setupTask(); setupResumes();
  window.addEventListener("hashchange", route);
  loadSession().then(route);
});
