// Browser tests of the operator's console: Playwright (playwright-core)
// driving Debian's headless Chromium against the real binary
// (`resume-agent serve`, embedded store, on free loopback ports).
//
//   node tests/browser/console.spec.mjs        (scripts/browser-tests.sh runs it)
//
// Env: RESUME_AGENT_BIN (default target/debug/resume-agent), CHROMIUM
// (default /usr/bin/chromium), SCREENSHOT_DIR (default
// target/console-screenshots). Every wait is on a condition with a deadline;
// nothing sleeps and hopes. Exit code 0 only when every check passed.

import { spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const BIN = process.env.RESUME_AGENT_BIN || path.join(ROOT, "target/debug/resume-agent");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOTS = process.env.SCREENSHOT_DIR || path.join(ROOT, "target/console-screenshots");
const FIXTURES = path.join(ROOT, "crates/resume/tests/fixtures");
const AXE = fs.readFileSync(path.join(ROOT, "node_modules/axe-core/axe.min.js"), "utf8");
const STEP_TIMEOUT_MS = 60_000;

// ---------------------------------------------------------------- helpers

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function until(what, fn, ms = 20_000, every = 50) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try { const v = await fn(); if (v) return v; } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ": " + last.message : ""}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

const children = [];
async function startServer(name, extraEnv) {
  const web = await freePort(), worker = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ra-browser-" + name + "-"));
  const env = {
    PATH: process.env.PATH, HOME: process.env.HOME,
    DATA_DIR: dir, WEB_ADDR: `127.0.0.1:${web}`, WORKER_ADDR: `127.0.0.1:${worker}`,
    WORKER_BASE_URL: `http://127.0.0.1:${worker}`, RETRY_BACKOFF_BASE_MS: "50", RETRY_BACKOFF_MAX_MS: "200",
    RUST_LOG: "warn", ...extraEnv,
  };
  const log = fs.openSync(path.join(dir, "server.log"), "w");
  const child = spawn(BIN, ["serve"], { env, stdio: ["ignore", log, log] });
  children.push(child);
  const base = `http://127.0.0.1:${web}`;
  try {
    await until(`${name} server ready`, async () => {
      if (child.exitCode !== null) throw new Error("exited with " + child.exitCode);
      const r = await fetch(base + "/api/health");
      return r.ok;
    }, 60_000, 100);
  } catch (e) {
    console.error(fs.readFileSync(path.join(dir, "server.log"), "utf8"));
    throw e;
  }
  return { base, dir, child };
}

async function apiCall(base, method, p, body, tok) {
  const headers = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (tok) headers.authorization = "Bearer " + tok;
  const r = await fetch(base + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let json = null; try { json = JSON.parse(text); } catch (_) { /* not JSON */ }
  return { status: r.status, json };
}

// A JWKS on loopback and RS256 tokens signed by this process.
function makeIssuer() {
  const { privateKey, publicKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = { ...publicKey.export({ format: "jwk" }), kid: "browser-1", alg: "RS256", use: "sig" };
  const iss = "https://login.microsoftonline.com/browser-test/v2.0", aud = "api://resume-agent";
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const sign = (oid, roles = []) => {
    const now = Math.floor(Date.now() / 1000);
    const head = b64({ alg: "RS256", typ: "JWT", kid: jwk.kid });
    const body = b64({ iss, aud, oid, roles, iat: now, nbf: now - 10, exp: now + 3600 });
    const sig = crypto.sign("RSA-SHA256", Buffer.from(head + "." + body), privateKey).toString("base64url");
    return head + "." + body + "." + sig;
  };
  return new Promise((resolve) => {
    const srv = http.createServer((_, res) => { res.setHeader("content-type", "application/json"); res.end(JSON.stringify({ keys: [jwk] })); });
    srv.listen(0, "127.0.0.1", () => resolve({ srv, url: `http://127.0.0.1:${srv.address().port}/keys`, iss, aud, sign }));
  });
}

// Console errors, page errors and failed requests per page; a step may
// declare which HTTP statuses it expects the console to log (401/404 of an
// isolation check), anything else fails the run.
function watchPage(page, label) {
  const errors = [];
  page.expected = new Set();
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    const t = m.text();
    const st = /status of (\d{3})/.exec(t);
    if (st && page.expected.has(Number(st[1]))) return;
    errors.push(`[${label}] console: ${t}`);
  });
  page.on("pageerror", (e) => errors.push(`[${label}] page error: ${e.message}`));
  page.errors = errors;
  return page;
}

async function axeCheck(page, label) {
  await page.evaluate(AXE);
  const res = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = res.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  if (bad.length) {
    throw new Error(`axe (${label}): ` + bad.map((v) => `${v.id} [${v.impact}] ${v.help}: ` +
      v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")).join("; "));
  }
  return res.violations.length;
}

async function shot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, name + ".png"), fullPage: true });
}

async function statusHistory(page) {
  return page.$$eval("#t-history li", (lis) => lis.map((li) => li.dataset.status));
}

// ---------------------------------------------------------------- the run

const results = [];
async function step(name, fn) {
  const t0 = Date.now();
  try {
    await Promise.race([fn(), new Promise((_, rej) => setTimeout(() => rej(new Error("step timed out")), STEP_TIMEOUT_MS))]);
    results.push({ name, ok: true, ms: Date.now() - t0 });
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push({ name, ok: false, err: e });
    console.log(`FAIL ${name}: ${e.stack || e}`);
  }
}

const launchArgs = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run"];

let browser, issuer;
const pages = [];
try {
  fs.rmSync(SHOTS, { recursive: true, force: true });
  const srv = await startServer("none", {});
  browser = await chromium.launch({ executablePath: CHROMIUM, args: launchArgs, headless: true });
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = watchPage(await ctx.newPage(), "none");
  pages.push(page);

  await step("overview loads with readiness, counts, chart and queues; first load < 200 KB", async () => {
    await page.goto(srv.base + "/", { waitUntil: "load" });
    await until("readiness", () => page.$eval('[data-check="database"]', (e) => e.textContent.includes("ok")));
    await page.waitForSelector('#ov-cards [data-status="queued"]');
    await page.waitForSelector("#ov-chart svg");
    for (const k of ["web", "database", "backend", "storage"]) await page.waitForSelector(`[data-check="${k}"]`);
    const bytes = await page.evaluate(() => {
      const nav = performance.getEntriesByType("navigation")[0];
      return performance.getEntriesByType("resource").reduce((a, r) => a + (r.transferSize || r.encodedBodySize || 0),
        nav.transferSize || nav.encodedBodySize || 0);
    });
    console.log(`     first load transferred ${bytes} bytes`);
    if (bytes > 200 * 1024) throw new Error(`first load ${bytes} bytes > 200 KB`);
    await shot(page, "overview");
    await axeCheck(page, "overview");
  });

  let sleepId;
  await step("submit a task and watch queued → running → succeeded without reloading", async () => {
    await page.goto(srv.base + "/#/tasks");
    await page.evaluate(() => { window.__noReload = "still here"; });
    await page.click("#new-task summary");
    await page.selectOption("#n-kind", "system.sleep");
    await page.fill("#n-payload", '{"ms": 1500}');
    await page.click('#new-task-form button[type="submit"]');
    await until("task page", () => /#\/task\//.test(page.url()));
    sleepId = decodeURIComponent(page.url().split("#/task/")[1]);
    await until("succeeded on the page", async () => (await statusHistory(page)).includes("succeeded"), 30_000);
    const seen = await statusHistory(page);
    if (seen[0] !== "queued" || !seen.includes("running") || seen[seen.length - 1] !== "succeeded" ||
        seen.indexOf("running") > seen.indexOf("succeeded")) {
      throw new Error("status sequence seen: " + seen.join(" → "));
    }
    if ((await page.evaluate(() => window.__noReload)) !== "still here") throw new Error("the page reloaded");
    await page.waitForSelector("#t-result-json");
    const r = await page.$eval("#t-result-json", (e) => e.textContent);
    if (!r.includes("slept_ms")) throw new Error("result not shown: " + r);
    await shot(page, "task-succeeded");
    await axeCheck(page, "task detail");
  });

  await step("tasks list: the task is listed, filters and lookup work", async () => {
    await page.goto(srv.base + "/#/tasks");
    await page.waitForSelector(`[data-task="${sleepId}"]`);
    await page.selectOption("#f-status", "failed");
    await until("filtered list", async () => (await page.$(`[data-task="${sleepId}"]`)) === null);
    await page.selectOption("#f-status", "succeeded");
    await page.waitForSelector(`[data-task="${sleepId}"]`);
    await shot(page, "tasks");
    await axeCheck(page, "tasks");
    await page.fill("#f-id", sleepId);
    await page.press("#f-id", "Enter");
    await until("lookup opens the task", () => page.url().endsWith("#/task/" + sleepId));
    await page.waitForSelector('#t-history li[data-status="succeeded"]');
  });

  await step("retry a failed task from its page", async () => {
    const { json: t } = await apiCall(srv.base, "POST", "/api/tasks", { kind: "system.fail", payload: { message: "drill" }, max_attempts: 1 });
    await until("failed", async () => (await apiCall(srv.base, "GET", "/api/tasks/" + t.id)).json.status === "failed");
    await page.goto(srv.base + "/#/task/" + t.id);
    await until("failed shown", async () => (await page.$eval("#t-status", (e) => e.textContent)) === "failed");
    await page.waitForSelector("#t-error-box:not([hidden])");
    await until("retry enabled", () => page.$eval("#t-retry", (b) => !b.disabled));
    await page.click("#t-retry");
    // It is queued again, runs, and fails again (system.fail always does).
    await until("queued then failed again", async () => {
      const seen = await statusHistory(page);
      const q = seen.indexOf("queued");
      return q > 0 && seen.lastIndexOf("failed") > q;
    }, 30_000);
    const after = (await apiCall(srv.base, "GET", "/api/tasks/" + t.id)).json;
    if (after.status !== "failed" || after.attempts !== 1) throw new Error("after retry: " + JSON.stringify(after));
    await shot(page, "task-retried");
    await axeCheck(page, "task retried");
  });

  let fileName = "01-jane-doe.pdf";
  await step("upload a résumé, see its name and skills, match it against a job", async () => {
    await page.goto(srv.base + "/#/resumes");
    await page.setInputFiles("#r-file", path.join(FIXTURES, "labelled", fileName));
    await until("parsed name", async () => (await page.$eval("#r-name", (e) => e.textContent).catch(() => "")) === "Jane Doe", 30_000);
    const skills = await page.$$eval("#r-skills li", (l) => l.map((x) => x.textContent));
    for (const s of ["Kubernetes", "Go", "PostgreSQL"]) if (!skills.includes(s)) throw new Error("skills: " + skills.join(", "));
    const jobs = await page.$$eval("#r-experience li", (l) => l.length);
    if (jobs < 1) throw new Error("no experience shown");
    await page.fill("#m-jd", fs.readFileSync(path.join(FIXTURES, "match/job.txt"), "utf8"));
    await page.click('#match-form button[type="submit"]');
    await page.waitForSelector("#m-result:not([hidden])", { timeout: 30_000 });
    const score = Number(await page.$eval("#m-score", (e) => e.textContent));
    const matched = await page.$$eval("#m-matched li", (l) => l.map((x) => x.textContent));
    if (!(score >= 0 && score <= 100) || !matched.includes("Kubernetes")) throw new Error(`score ${score}, matched ${matched}`);
    console.log(`     match score ${score}, matched ${matched.length}`);
    await shot(page, "resumes");
    await axeCheck(page, "résumés");
  });

  await step("flip view: queued and running per backend", async () => {
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await apiCall(srv.base, "POST", "/api/tasks", { kind: "system.sleep", payload: { ms: 4000 } })).json.id);
    await page.goto(srv.base + "/#/flip");
    await until("a running row", async () => {
      const n = await page.$$eval("#flip-table tbody tr td:nth-child(3)", (tds) => tds.reduce((a, td) => a + Number(td.textContent), 0));
      return n >= 1;
    }, 20_000);
    await shot(page, "flip");
    await axeCheck(page, "flip");
    for (const id of ids) await apiCall(srv.base, "POST", `/api/tasks/${id}/cancel`);
  });

  await step("overview shows the finished tasks in the chart and by kind", async () => {
    await page.goto(srv.base + "/#/");
    await until("kinds table", () => page.$$eval("#ov-kinds tbody tr", (r) => r.length >= 3));
    await until("chart bars", () => page.$$eval("#ov-chart rect", (r) => r.length >= 1));
    await shot(page, "overview-after");
  });

  await step("readable on a phone (390×844): no horizontal page scroll", async () => {
    const phone = watchPage(await (await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true })).newPage(), "phone");
    pages.push(phone);
    for (const [hash, name] of [["#/", "phone-overview"], ["#/task/" + sleepId, "phone-task"]]) {
      await phone.goto(srv.base + "/" + hash);
      await phone.waitForSelector("main > section:not([hidden]) h1");
      await until("content", () => phone.$eval("main", (m) => m.textContent.length > 50));
      const over = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      if (over > 2) throw new Error(`${name}: ${over}px wider than the screen`);
      await shot(phone, name);
    }
  });

  await step("keyboard: the nav and the new-task form work without a mouse", async () => {
    // A full load (not a same-document hash change), so focus starts at the top.
    await page.goto(srv.base + "/?keyboard#/");
    await page.waitForSelector('#ov-cards [data-status="queued"]');
    await page.keyboard.press("Tab"); // skip link
    const first = await page.evaluate(() => document.activeElement.className);
    if (first !== "skip") throw new Error("the first Tab stop is not the skip link: " + first);
    await page.keyboard.press("Tab"); // Overview
    await page.keyboard.press("Tab"); // Tasks
    await page.keyboard.press("Enter");
    await until("tasks view by keyboard", () => page.url().endsWith("#/tasks"));
    // The view moves focus to its heading (after the hashchange is handled).
    await until("focus on the Tasks heading", () => page.evaluate(() => document.activeElement && document.activeElement.id === "h-tasks"), 5_000);
  });

  // ---- owner isolation through the console: a second server with AUTH_MODE=jwt.
  issuer = await makeIssuer();
  const jwt = await startServer("jwt", {
    AUTH_MODE: "jwt", JWT_ISSUER: issuer.iss, JWT_AUDIENCE: issuer.aud, JWT_JWKS_URL: issuer.url,
    JWT_ADMIN_ROLE: "Console.Admin", RATE_LIMIT_RPS: "0",
  });
  const alice = issuer.sign("alice"), bob = issuer.sign("bob"), admin = issuer.sign("ops", ["Console.Admin"]);
  let aliceTask;
  await step("jwt: paste a token in the console; it is sent and kept for the tab", async () => {
    const c = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const p = watchPage(await c.newPage(), "jwt-paste");
    pages.push(p);
    p.expected.add(401); // before the token is pasted the API answers 401
    await p.goto(jwt.base + "/#/tasks");
    await p.waitForSelector("#token-panel:not([hidden])");
    await p.fill("#token-input", alice);
    await p.click('#token-form button[type="submit"]');
    await until("signed in", () => p.$eval("#who", (e) => e.textContent.includes("alice")));
    aliceTask = (await apiCall(jwt.base, "POST", "/api/tasks", { kind: "system.noop" }, alice)).json.id;
    await p.waitForSelector(`[data-task="${aliceTask}"]`, { timeout: 10_000 });
    const kept = await p.evaluate(() => sessionStorage.getItem("resume-agent.token"));
    if (kept !== await Promise.resolve(alice)) throw new Error("token not kept in sessionStorage");
    await shot(p, "jwt-alice-tasks");
  });

  await step("jwt: another owner sees none of alice's tasks; the admin role sees both", async () => {
    const bobTask = (await apiCall(jwt.base, "POST", "/api/tasks", { kind: "system.noop" }, bob)).json.id;
    const open = async (tok, label) => {
      const c = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      await c.addInitScript((t) => sessionStorage.setItem("resume-agent.token", t), tok);
      const p = watchPage(await c.newPage(), label);
      pages.push(p);
      return p;
    };
    const pb = await open(bob, "jwt-bob");
    await pb.goto(jwt.base + "/#/tasks");
    await pb.waitForSelector(`[data-task="${bobTask}"]`);
    if (await pb.$(`[data-task="${aliceTask}"]`)) throw new Error("bob sees alice's task in the list");
    pb.expected.add(404);
    await pb.goto(jwt.base + "/#/task/" + aliceTask);
    await until("not found shown", () => pb.$eval("#alert", (e) => !e.hidden && e.textContent.includes("No such task")));
    await shot(pb, "jwt-bob-isolated");
    await axeCheck(pb, "isolation");
    const pa = await open(admin, "jwt-admin");
    await pa.goto(jwt.base + "/#/tasks");
    await pa.waitForSelector(`[data-task="${aliceTask}"]`);
    await pa.waitForSelector(`[data-task="${bobTask}"]`);
    await until("admin label", () => pa.$eval("#who", (e) => e.textContent.includes("admin")));
    await pa.goto(jwt.base + "/#/flip");
    await until("scope all", () => pa.$eval("#flip-table", (e) => e.textContent.includes("every owner")));
    await shot(pa, "jwt-admin-tasks");
  });

  await step("no console errors, page errors or CSP violations on any page", async () => {
    const all = pages.flatMap((p) => p.errors);
    if (all.length) throw new Error(all.join("\n"));
  });
} catch (e) {
  results.push({ name: "setup", ok: false, err: e });
  console.log("FAIL setup: " + (e.stack || e));
} finally {
  if (browser) await browser.close().catch(() => {});
  if (issuer) issuer.srv.close();
  for (const c of children) {
    if (c.exitCode === null) {
      c.kill("SIGTERM");
      await until("server exit", () => c.exitCode !== null || c.signalCode !== null, 30_000).catch(() => c.kill("SIGKILL"));
    }
  }
}

const failed = results.filter((r) => !r.ok);
console.log(`\n${results.length - failed.length} passed, ${failed.length} failed; screenshots in ${SHOTS}`);
process.exit(failed.length ? 1 : 0);
