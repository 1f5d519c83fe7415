// The finproxy demo page: plain JavaScript, no build step. config.js (written
// by the server that serves this page) sets window.FINPROXY_DEMO.
"use strict";

const config = window.FINPROXY_DEMO || { proxyURL: "", sessionHeader: "X-Session-Id" };
const $ = (id) => document.getElementById(id);

// A random session for this tab: finproxy derives the finAPI user from it.
const session = "web-" + Array.from(crypto.getRandomValues(new Uint8Array(16)),
  (b) => b.toString(16).padStart(2, "0")).join("");

let calls = 0;
let knownConnections = new Set();

// call sends one request through finproxy and adds a row to the call log.
async function call(method, path, body) {
  const headers = { [config.sessionHeader]: session };
  // A call that hangs ends after 30 s (finproxy's own upstream timeout
  // answers before that).
  const init = { method, headers, signal: AbortSignal.timeout(30000) };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const row = logRow(method, path);
  try {
    const resp = await fetch(config.proxyURL + path, init);
    const text = await resp.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    let note = "";
    if (!resp.ok) {
      const reason = resp.headers.get("X-Finproxy-Error");
      const msg = data && data.errors && data.errors[0] ? data.errors[0].message : text.slice(0, 80);
      note = (reason ? reason + ": " : "") + msg;
    }
    fillRow(row, resp.status, resp.headers.get("X-Request-Id") || "(not exposed)", note, resp.ok);
    return { status: resp.status, ok: resp.ok, data };
  } catch (err) {
    // A refused CORS preflight or an unreachable proxy ends here: the
    // browser tells the page nothing more than "network error".
    fillRow(row, "network error", "", "no readable answer: finproxy is down or refused this origin (CORS); " + String(err.message || err), false);
    return { status: 0, ok: false, data: null };
  }
}

function logRow(method, path) {
  const tr = document.createElement("tr");
  calls++;
  tr.dataset.call = String(calls);
  for (const v of [String(calls), method, path, "…", "", ""]) {
    const td = document.createElement("td");
    td.textContent = v;
    tr.appendChild(td);
  }
  tr.cells[3].className = "status";
  tr.cells[4].className = "request-id";
  $("calls").appendChild(tr);
  return tr;
}

function fillRow(tr, status, requestID, note, ok) {
  tr.cells[3].textContent = String(status);
  tr.cells[3].classList.add(ok ? "ok" : "fail");
  tr.cells[4].textContent = requestID;
  tr.cells[5].textContent = note;
}

function setState(text) { $("state").textContent = text; }

function fillTable(id, rows, columns, highlight) {
  const tbody = $(id);
  tbody.replaceChildren();
  if (rows.length === 0) {
    const tr = tbody.insertRow();
    const td = tr.insertCell();
    td.colSpan = columns.length;
    td.className = "empty";
    td.textContent = "none";
    return;
  }
  for (const r of rows) {
    const tr = tbody.insertRow();
    tr.dataset.id = String(r.id);
    if (highlight && highlight(r)) tr.className = "new";
    for (const [get, cls] of columns) {
      const td = tr.insertCell();
      td.textContent = get(r);
      if (cls) td.className = cls;
    }
  }
}

async function warmUp() {
  const r = await call("POST", "/proxy/v1/session");
  if (!r.ok) { setState("Warm-up failed (" + r.status + ")."); return false; }
  $("user-id").textContent = r.data.userId || "(process mode)";
  $("expires-at").textContent = r.data.expiresAt || "never";
  setState("Session warm: finproxy holds a token for " + (r.data.userId || "this session") + ".");
  return true;
}

async function showUser() {
  const r = await call("GET", "/api/v2/users");
  if (!r.ok) { setState("Could not read the user (" + r.status + ")."); return false; }
  $("user-id").textContent = r.data.id;
  $("user-email").textContent = r.data.email || "(none)";
  return true;
}

async function list() {
  const c = await call("GET", "/api/v2/bankConnections");
  const a = await call("GET", "/api/v2/accounts");
  if (c.ok) {
    const conns = c.data.connections || [];
    const fresh = knownConnections.size > 0;
    fillTable("connections", conns, [
      [(x) => String(x.id)], [(x) => x.name || "(unnamed)"],
      [(x) => (x.bank && x.bank.name) || String(x.bankId)], [(x) => x.updateStatus],
    ], (x) => fresh && !knownConnections.has(x.id));
    knownConnections = new Set(conns.map((x) => x.id));
  }
  if (a.ok) {
    fillTable("accounts", a.data.accounts || [], [
      [(x) => String(x.id)], [(x) => x.accountName], [(x) => x.iban],
      [(x) => (typeof x.balance === "number" ? x.balance.toFixed(2) : "–") + " " + (x.accountCurrency || ""), "num"],
    ]);
  }
  if (c.ok && a.ok) setState("Listed " + knownConnections.size + " bank connection(s) and " + (a.data.accounts || []).length + " account(s).");
  return c.ok && a.ok;
}

async function importConnection() {
  const name = "Imported at " + new Date().toLocaleTimeString();
  const r = await call("POST", "/api/v2/bankConnections/import", { bankId: 280001, name });
  if (!r.ok) { setState("Import failed (" + r.status + ")."); return false; }
  setState("Imported bank connection " + r.data.id + " (\"" + name + "\"); list again to see it.");
  return true;
}

async function logout() {
  const r = await call("POST", "/proxy/v1/session/logout");
  if (!r.ok) { setState("Logout failed (" + r.status + ")."); return false; }
  setState("Logged out: finproxy revoked the session's tokens; the finAPI user stays.");
  return true;
}

async function deleteSession() {
  const r = await call("DELETE", "/proxy/v1/session");
  if (!r.ok) { setState("Delete failed (" + r.status + ")."); return false; }
  for (const id of ["user-id", "expires-at", "user-email"]) $(id).textContent = "—";
  fillTable("connections", [], [[], [], [], []]);
  fillTable("accounts", [], [[], [], [], []]);
  knownConnections = new Set();
  setState("Session deleted: the finAPI user is gone.");
  return true;
}

async function runAll() {
  for (const step of [warmUp, showUser, list, importConnection, list, logout, deleteSession]) {
    if (!(await step())) return;
  }
}

// busy runs one step with the buttons disabled, so steps never overlap.
function busy(fn) {
  return async () => {
    const buttons = document.querySelectorAll("button");
    buttons.forEach((b) => { b.disabled = true; });
    document.body.dataset.busy = "true";
    try { await fn(); } finally {
      buttons.forEach((b) => { b.disabled = false; });
      document.body.dataset.busy = "false";
    }
  };
}

$("proxy-url").textContent = config.proxyURL || "(no config.js)";
$("session-header").textContent = config.sessionHeader;
$("session").textContent = session.slice(0, 12) + "…";
$("warm-up").onclick = busy(warmUp);
$("show-user").onclick = busy(showUser);
$("list").onclick = busy(list);
$("import").onclick = busy(importConnection);
$("logout").onclick = busy(logout);
$("delete").onclick = busy(deleteSession);
$("run-all").onclick = busy(runAll);
document.body.dataset.busy = "false";
