// The approvals page: reads /ui/api/ with the page's cookie and its page key, lists pending
// approvals live (server-sent events) and decides. No secret of a binding ever reaches it.
//
// The page key arrives once, in the login redirect's fragment (#k=KEY), is kept in this
// origin's sessionStorage (scheme, host and port: a server on another port of 127.0.0.1 cannot
// read it, though the browser sends it the cookie) and removed from the address bar. Every
// /ui/api request carries it: the X-Aileron-Page-Key header, or ?k= on the event stream.
"use strict";

const KEY_STORE = "aileron.pageKey";
const state = { key: null, focus: null, waited: new Map() };

function takePageKey() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const given = fragment.get("k");
  if (given) {
    sessionStorage.setItem(KEY_STORE, given);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem(KEY_STORE);
}

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child !== null && child !== undefined) {
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
  }
  return node;
}

function show(value) {
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

async function api(path, options) {
  const { headers, ...rest } = options || {};
  const answer = await fetch(`/ui/api/${path}`, {
    credentials: "same-origin",
    ...rest,
    headers: { ...(headers || {}), "X-Aileron-Page-Key": state.key || "" },
  });
  const text = await answer.text();
  const body = text ? JSON.parse(text) : null;
  if (!answer.ok) {
    const error = new Error(body && body.error ? body.error.message : `HTTP ${answer.status}`);
    error.status = answer.status;
    error.body = body;
    throw error;
  }
  return body;
}

function detail(approval) {
  const list = el("dl");
  const add = (name, value) => list.append(el("dt", {}, name), el("dd", {}, value));
  add("kind", approval.kind);
  add("session", approval.session_id || "(none: the human's own run)");
  add("agent", approval.agent || "-");
  add("asked at", new Date(approval.created_at).toLocaleString());
  const waited = el("span", { class: "waited" }, duration(approval.waited_s));
  add("waiting", waited);
  state.waited.set(approval.id, { node: waited, since: Date.now() - approval.waited_s * 1000 });
  for (const step of approval.steps || []) {
    add("connector", step.connector);
    add("operation", step.operation);
    add("target origin", (step.origins || []).join(", ") || "-");
    add("binding", step.binding || "-");
  }
  const args = Object.entries(approval.args || {});
  if (args.length === 0) add("arguments", "(none)");
  for (const [name, value] of args) add(`argument ${name}`, show(value));
  add("arguments sha256", approval.args_sha256);
  return list;
}

function card(approval) {
  const reason = el("input", { class: "reason", type: "text", placeholder: "reason (optional)", maxLength: 1000 });
  const grant = el(
    "select",
    { class: "grant", title: "Approve later requests with exactly these arguments too" },
    el("option", { value: "" }, "once"),
    el("option", { value: "session" }, "+ same request, this session"),
    el("option", { value: "5m" }, "+ same request, 5 min"),
    el("option", { value: "30m" }, "+ same request, 30 min"),
  );
  const approve = el("button", { class: "approve", type: "button" }, "Approve");
  const deny = el("button", { class: "deny", type: "button" }, "Deny");
  const item = el(
    "li",
    { class: approval.id === state.focus ? "approval focus" : "approval", dataset: { id: approval.id } },
    el("h3", {}, `${approval.target} `, el("span", { class: "muted" }, approval.id)),
    detail(approval),
    el("div", { class: "actions" }, reason, grant, approve, deny),
  );
  const decide = async (approved) => {
    approve.disabled = deny.disabled = true;
    try {
      const decided = await api(`approvals/${approval.id}/${approved ? "approve" : "deny"}`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          reason: reason.value || null,
          ...(approved && grant.value ? { grant: { for: grant.value } } : {}),
        }),
      });
      showResult(decided);
      remove(approval.id);
    } catch (error) {
      showError(approval, error);
      approve.disabled = deny.disabled = false;
      if (error.status === 409 || error.status === 404) remove(approval.id);
    }
    refreshAudit();
  };
  approve.addEventListener("click", () => decide(true));
  deny.addEventListener("click", () => decide(false));
  return item;
}

function showResult(approval) {
  const box = document.getElementById("result");
  box.className = approval.status;
  box.replaceChildren(
    el("strong", {}, `${approval.target}: ${approval.status}`),
    el("div", { class: "muted" }, `${approval.id} — decided by ${approval.decided_by || "-"}`),
  );
  if (approval.reason) box.append(el("div", {}, `reason: ${approval.reason}`));
  if (approval.status === "succeeded") box.append(el("pre", { class: "output" }, show(approval.result)));
  if (approval.error) box.append(el("pre", { class: "output" }, `${approval.error.code}: ${approval.error.message}`));
}

function showError(approval, error) {
  const box = document.getElementById("result");
  box.className = "error";
  box.replaceChildren(el("strong", {}, `${approval.target}: not decided`), el("pre", {}, error.message));
}

function pendingList() {
  return document.getElementById("pending");
}

function find(id) {
  return pendingList().querySelector(`li.approval[data-id="${CSS.escape(id)}"]`);
}

function remove(id) {
  const item = find(id);
  if (item) item.remove();
  state.waited.delete(id);
  updateEmpty();
}

function upsert(approval) {
  if (approval.status !== "pending") {
    remove(approval.id);
    return;
  }
  const existing = find(approval.id);
  if (existing) return; // a pending approval does not change while it waits
  pendingList().append(card(approval));
  updateEmpty();
}

function updateEmpty() {
  document.getElementById("empty").hidden = pendingList().children.length > 0;
}

async function loadPending() {
  const approvals = await api("approvals");
  const ids = new Set(approvals.map((a) => a.id));
  for (const item of [...pendingList().children]) {
    if (!ids.has(item.dataset.id)) remove(item.dataset.id);
  }
  for (const approval of approvals) upsert(approval);
  updateEmpty();
}

async function loadFocus() {
  if (!state.focus) return;
  try {
    const approval = await api(`approvals/${encodeURIComponent(state.focus)}`);
    if (approval.status !== "pending") showResult(approval);
  } catch (error) {
    document.getElementById("result").textContent = `approval ${state.focus}: ${error.message}`;
  }
}

async function loadSessions() {
  const sessions = await api("sessions");
  document.getElementById("sessions").replaceChildren(
    ...sessions.map((s) =>
      el(
        "tr",
        {},
        el("td", {}, s.id),
        el("td", {}, s.agent + (s.sandbox ? ` (${s.sandbox})` : "")),
        el("td", {}, s.state + (s.end_reason ? ` — ${s.end_reason}` : "")),
        el("td", {}, new Date(s.started_at).toLocaleString()),
        el("td", {}, s.working_dir),
      ),
    ),
  );
}

async function loadAudit() {
  const records = await api("audit?limit=50");
  document.getElementById("audit").replaceChildren(
    ...records.map((r) =>
      el(
        "tr",
        {},
        el("td", {}, new Date(r.ts).toLocaleString()),
        el("td", {}, r.type),
        el("td", {}, `${r.actor.type}:${r.actor.id}`),
        el("td", {}, r.session_id || "-"),
        el("td", { class: "details" }, JSON.stringify(r.payload)),
      ),
    ),
  );
}

async function loadVerify() {
  const node = document.getElementById("verify");
  try {
    const report = await api("audit/verify");
    node.className = report.ok ? "ok" : "bad";
    node.textContent = report.summary || (report.ok ? "verified" : "NOT verified");
  } catch (error) {
    node.className = "bad";
    node.textContent = error.message;
  }
}

let auditTimer = null;
function refreshAudit() {
  clearTimeout(auditTimer);
  auditTimer = setTimeout(() => {
    loadAudit().catch(() => {});
    loadVerify();
    loadSessions().catch(() => {});
  }, 300);
}

function listen() {
  const live = document.getElementById("live");
  const events = new EventSource(`/ui/api/events?k=${encodeURIComponent(state.key || "")}`);
  events.addEventListener("ready", () => {
    live.textContent = "live";
    live.className = "state live";
    loadPending().catch(() => {});
  });
  events.addEventListener("approval", (event) => {
    const approval = JSON.parse(event.data);
    upsert(approval);
    if (approval.id === state.focus && approval.status !== "pending") showResult(approval);
    refreshAudit();
  });
  events.addEventListener("gap", () => loadPending().catch(() => {}));
  events.addEventListener("error", () => {
    live.textContent = "reconnecting…";
    live.className = "state";
  });
}

function tick() {
  for (const { node, since } of state.waited.values()) {
    node.textContent = duration((Date.now() - since) / 1000);
  }
}

async function start() {
  const match = location.pathname.match(/^\/ui\/approvals\/([^/]+)$/);
  state.focus = match ? decodeURIComponent(match[1]) : null;
  state.key = takePageKey();
  let me;
  try {
    me = await api("me");
  } catch (error) {
    document.getElementById("live").textContent = "";
    if (state.focus) document.getElementById("login-command").textContent = `aileron open approval ${state.focus}`;
    document.getElementById("login").hidden = false;
    return;
  }
  document.getElementById("who").textContent = `logged in: ${me.by}`;
  document.getElementById("app").hidden = false;
  const logout = document.getElementById("logout");
  logout.hidden = false;
  logout.addEventListener("click", async () => {
    await api("logout", { method: "POST" }).catch(() => {});
    sessionStorage.removeItem(KEY_STORE);
    location.assign("/ui/");
  });
  listen();
  await Promise.all([loadPending(), loadFocus(), loadSessions(), loadAudit(), loadVerify()].map((p) => p.catch(() => {})));
  setInterval(tick, 1000);
}

document.addEventListener("DOMContentLoaded", start);
