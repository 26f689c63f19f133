// The acp-bridge inspector page: reads /inspect/api and /inspect/stream, changes nothing.
// No framework and no build step; every value from the bridge is inserted as text, never as HTML.
"use strict";

const TOKEN_KEY = "acp-bridge.inspector.token";
const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem(TOKEN_KEY) || "", sessions: [], current: null, records: [], ws: null, cursor: 0, drawPending: false };

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node && key !== "list") node[key] = value;
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const clock = (ms) => (ms ? new Date(ms).toISOString().slice(11, 23) : "");
const json = (value) => JSON.stringify(value, null, 2);
const authHeaders = () => (state.token ? { Authorization: "Bearer " + state.token } : {});

function setStatus(text, kind) {
  const status = $("status");
  status.textContent = text;
  status.className = "status " + (kind || "");
}

// --- access ----------------------------------------------------------------------------------------

async function api(path) {
  const response = await fetch("/inspect/api/" + path, { headers: authHeaders(), credentials: "omit", cache: "no-store" });
  if (response.status === 401) throw Object.assign(new Error("unauthorized"), { unauthorized: true });
  if (!response.ok) throw new Error(response.status + " " + response.statusText);
  return response;
}

async function boot() {
  try {
    const listing = await (await api("sessions")).json();
    $("login").hidden = true;
    $("app").hidden = false;
    $("forget").hidden = !state.token;
    renderSessions(listing.sessions);
    openStream();
    const wanted = new URLSearchParams(location.search).get("session");
    if (wanted) selectSession(wanted, false);
  } catch (error) {
    if (!error.unauthorized) return setStatus("cannot reach the bridge: " + error.message, "bad");
    $("app").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = state.token ? "That token was refused." : "";
    setStatus("token needed", "bad");
    $("token").focus();
  }
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  state.token = $("token").value.trim();
  $("token").value = "";
  sessionStorage.setItem(TOKEN_KEY, state.token);
  boot();
});

$("forget").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = "";
  if (state.ws) state.ws.close();
  location.reload();
});

// --- live stream -----------------------------------------------------------------------------------

function openStream() {
  if (state.ws) return;
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/inspect/stream";
  // A browser cannot set headers on a WebSocket: the token rides as a subprotocol, as for /acp.
  const ws = new WebSocket(url, state.token ? ["acp.bearer." + state.token] : []);
  state.ws = ws;
  ws.onopen = () => {
    setStatus("live", "ok");
    if (state.current) watch(state.current, state.cursor);
  };
  ws.onmessage = (message) => {
    const data = JSON.parse(message.data);
    if (data.type === "sessions") renderSessions(data.sessions);
    else if (data.type === "events" && data.sessionId === state.current) addRecords(data.events);
  };
  ws.onclose = () => {
    state.ws = null;
    setStatus("disconnected, retrying…", "bad");
    setTimeout(openStream, 2000); // a reconnect backoff, not a synchronisation
  };
}

function watch(sessionId, after) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify({ type: "watch", sessionId, after }));
}

// --- sessions --------------------------------------------------------------------------------------

function renderSessions(sessions) {
  state.sessions = sessions;
  const items = sessions.map((s) => {
    const clients = s.clients.map((c) => c.name + " (" + c.role + (c.clientInfo && c.clientInfo.name ? ", " + c.clientInfo.name : "") + ")");
    return el("li", { class: "session" + (s.sessionId === state.current ? " selected" : "") + (s.closed ? " closed" : ""), "data-session-id": s.sessionId },
      el("a", { href: "?session=" + encodeURIComponent(s.sessionId), onclick: (e) => { e.preventDefault(); selectSession(s.sessionId, true); } },
        el("span", { class: "title" }, s.title || s.sessionId.slice(0, 12)),
        s.running ? el("span", { class: "badge running" }, "turn running") : null,
        s.closed ? el("span", { class: "badge" }, "closed") : null),
      el("div", { class: "meta" }, s.cwd, " · ", s.eventCount + " events · updated " + s.updatedAt.replace("T", " ").slice(0, 19)),
      el("div", { class: "meta clients" }, clients.length ? clients.join(", ") : "no client attached"));
  });
  $("session-list").replaceChildren(...(items.length ? items : [el("li", { class: "empty" }, "No sessions yet. Point an editor at the bridge's /acp.")]));
  if (state.current) renderMeta();
}

function renderMeta() {
  const s = state.sessions.find((x) => x.sessionId === state.current);
  $("session-title").textContent = s ? s.title || s.sessionId : state.current;
  $("session-meta").replaceChildren(s ? el("span", {}, "id " + s.sessionId + " · cwd " + s.cwd + " · created " + s.createdAt + (s.running ? " · turn running" : "")) : "");
}

function selectSession(sessionId, push) {
  if (push) history.pushState(null, "", "?session=" + encodeURIComponent(sessionId));
  state.current = sessionId;
  state.records = [];
  state.cursor = 0;
  $("export").hidden = false;
  renderSessions(state.sessions);
  draw();
  watch(sessionId, 0);
}

window.addEventListener("popstate", () => {
  const wanted = new URLSearchParams(location.search).get("session");
  if (wanted) selectSession(wanted, false);
});

function addRecords(records) {
  for (const record of records) {
    if (record.id <= state.cursor) continue;
    state.records.push(record);
    state.cursor = record.id;
  }
  if (!state.drawPending) {
    state.drawPending = true;
    requestAnimationFrame(() => { state.drawPending = false; draw(); });
  }
}

function draw() {
  renderMeta();
  renderTimeline();
  renderWire();
}

// --- timeline --------------------------------------------------------------------------------------

function text(content) {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map(text).join("");
  if (content && content.type === "text") return content.text;
  if (content && content.content) return text(content.content);
  return content ? "[" + (content.type || "content") + "]" : "";
}

// Turns of items: prompt, message, thought, plan, tool (a card), permission, note.
function buildTimeline(records) {
  const turns = [];
  const tools = new Map();
  let turn = null;
  const item = (entry) => { if (!turn) { turn = { prompt: null, items: [] }; turns.push(turn); } turn.items.push(entry); return entry; };
  const last = () => (turn && turn.items.length ? turn.items[turn.items.length - 1] : null);
  for (const record of records) {
    if (record.kind === "user_message") {
      turn = { prompt: { text: text(record.event.content), at: record.at, id: record.id }, items: [] };
      turns.push(turn);
      continue;
    }
    if (record.kind === "control_outcome") {
      const e = record.event;
      const who = e.actor ? e.actor.name + " (" + e.actor.role + ")" : "?";
      const decision = (e.metadata && e.metadata.decision) || {};
      const answer = { outcome: e.outcome, option: decision.optionId, who, status: e.status, reason: e.reason, at: record.at };
      const card = e.target && tools.get(e.target.toolCallId);
      if (card) card.permission = answer;
      else item({ type: "permission", answer });
      continue;
    }
    for (const wire of record.wire) {
      const update = wire.message.params && wire.message.params.update;
      if (wire.direction !== "out" || !update) continue;
      const kind = update.sessionUpdate;
      if (kind === "agent_message_chunk" || kind === "agent_thought_chunk") {
        const type = kind === "agent_message_chunk" ? "message" : "thought";
        const previous = last();
        if (previous && previous.type === type) previous.text += text(update.content);
        else item({ type, text: text(update.content), id: record.id });
      } else if (kind === "plan") {
        const previous = last();
        if (previous && previous.type === "plan") previous.entries = update.entries;
        else item({ type: "plan", entries: update.entries });
      } else if (kind === "tool_call" || kind === "tool_call_update") {
        let card = tools.get(update.toolCallId);
        if (!card) { card = item({ type: "tool", id: update.toolCallId, transitions: [] }); tools.set(update.toolCallId, card); }
        for (const key of ["title", "kind", "status", "rawInput", "rawOutput", "content", "locations"]) if (update[key] !== undefined && update[key] !== null) card[key] = update[key];
        const previous = card.transitions[card.transitions.length - 1];
        if (update.status && (!previous || previous.status !== update.status)) card.transitions.push({ status: update.status, at: record.at });
      } else if (kind === "current_mode_update") {
        item({ type: "note", text: "mode → " + update.currentModeId });
      }
    }
  }
  return turns;
}

function diffView(oldText, newText, path) {
  const lines = [];
  for (const line of (oldText || "").split("\n")) if (line) lines.push(el("div", { class: "del" }, "-" + line));
  for (const line of (newText || "").split("\n")) if (line) lines.push(el("div", { class: "add" }, "+" + line));
  return el("div", { class: "diff" }, path ? el("div", { class: "path" }, path) : null, lines);
}

function unifiedDiff(textDiff) {
  return el("div", { class: "diff" }, textDiff.split("\n").map((line) => el("div", { class: line.startsWith("+") && !line.startsWith("+++") ? "add" : line.startsWith("-") && !line.startsWith("---") ? "del" : "" }, line)));
}

function toolCard(card) {
  const diffs = (card.content || []).filter((c) => c.type === "diff").map((c) => diffView(c.oldText, c.newText, c.path));
  if (card.rawOutput && typeof card.rawOutput.diff === "string") diffs.push(unifiedDiff(card.rawOutput.diff));
  const other = (card.content || []).filter((c) => c.type !== "diff").map((c) => el("pre", {}, text(c)));
  const p = card.permission;
  return el("li", { class: "tool " + (card.status || ""), "data-tool-call-id": card.id, "data-status": card.status || "" },
    el("div", { class: "head" }, el("span", { class: "kind" }, card.kind || "tool"), el("strong", {}, card.title || card.id), el("span", { class: "badge status" }, card.status || "")),
    el("div", { class: "transitions" }, card.transitions.map((t) => el("span", {}, t.status + " " + clock(t.at))).reduce((acc, node, i) => (i ? [...acc, " → ", node] : [node]), [])),
    p ? el("div", { class: "permission" }, "permission: " + p.outcome + (p.option ? " (" + p.option + ")" : "") + " by " + p.who + (p.reason ? " — " + p.reason : "") + " at " + clock(p.at)) : null,
    diffs, other,
    card.rawInput !== undefined ? el("details", {}, el("summary", {}, "input"), el("pre", {}, json(card.rawInput))) : null,
    card.rawOutput !== undefined ? el("details", {}, el("summary", {}, "output"), el("pre", {}, json(card.rawOutput))) : null);
}

function renderItem(entry) {
  switch (entry.type) {
    case "message": return el("li", { class: "message" }, entry.text);
    case "thought": return el("li", { class: "thought" }, el("details", {}, el("summary", {}, "thought"), el("div", { class: "text" }, entry.text)));
    case "plan": return el("li", { class: "plan" }, el("div", { class: "head" }, "plan"), el("ol", {}, (entry.entries || []).map((p) => el("li", { class: p.status }, p.content + " ", el("span", { class: "badge" }, p.status)))));
    case "tool": return toolCard(entry);
    case "permission": return el("li", { class: "permission" }, "permission: " + entry.answer.outcome + " by " + entry.answer.who);
    default: return el("li", { class: "note" }, entry.text);
  }
}

function renderTimeline() {
  if (!state.current) return $("turns").replaceChildren();
  const turns = buildTimeline(state.records);
  $("turns").replaceChildren(...turns.map((turn) => el("li", { class: "turn" },
    turn.prompt ? el("div", { class: "prompt" }, el("span", { class: "who" }, "user · " + clock(turn.prompt.at)), turn.prompt.text) : null,
    el("ol", { class: "items" }, turn.items.map(renderItem)))));
}

// --- raw pane --------------------------------------------------------------------------------------

function label(wire) {
  return wire.method + (wire.update ? " · " + wire.update : "");
}

function renderWire() {
  const filter = $("method-filter");
  const methods = new Set();
  for (const record of state.records) for (const wire of record.wire) methods.add(label(wire));
  const chosen = filter.value;
  filter.replaceChildren(el("option", { value: "" }, "all methods"), ...[...methods].sort().map((m) => el("option", { value: m, selected: m === chosen }, m)));
  const onlyProblems = $("only-problems").checked;
  const rows = [];
  for (const record of state.records) {
    for (const wire of record.wire) {
      if (chosen && label(wire) !== chosen) continue;
      if (onlyProblems && !wire.problem) continue;
      const body = el("tr", { class: "body", hidden: true }, el("td", { colSpan: 5 }, el("pre", {}, json(wire.message))));
      rows.push(el("tr", { class: "row " + wire.direction + (wire.problem ? " flagged" : ""), title: wire.problem || "", "data-event-id": record.id, onclick: () => { body.hidden = !body.hidden; } },
        el("td", {}, record.id), el("td", {}, clock(record.at)), el("td", {}, wire.direction === "in" ? "client→agent" : "agent→client"),
        el("td", {}, label(wire), wire.problem ? el("div", { class: "problem" }, "⚠ " + wire.problem) : null), el("td", {}, wire.size + " B")), body);
    }
  }
  $("wire").replaceChildren(...rows);
}

$("method-filter").addEventListener("change", renderWire);
$("only-problems").addEventListener("change", renderWire);

// --- export ----------------------------------------------------------------------------------------

$("export").addEventListener("click", async () => {
  if (!state.current) return;
  const response = await api("sessions/" + encodeURIComponent(state.current) + "/export");
  const link = el("a", { href: URL.createObjectURL(await response.blob()), download: "session-" + state.current + ".jsonl" });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
});

boot();
