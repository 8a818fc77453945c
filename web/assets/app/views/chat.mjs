// A conversation: its messages, the streaming answer, and the composer. Answers stream token
// by token; Stop replaces Send while one streams and keeps the partial answer; the last
// exchange can be regenerated or its question edited. Each answer shows its status and model.

import * as api from "../api.mjs";
import { h } from "../dom.mjs";
import * as drafts from "../drafts.mjs";
import { renderInto } from "../markdown.mjs";
import * as state from "../state.mjs";
import { startTurn } from "../turns.mjs";

const STATUS_TEXT = {
  stopped: "Stopped",
  failed: "Failed",
  interrupted: "Interrupted",
  streaming: "Answering…",
};

let models = null;  // GET /api/models, once per page
let chosenModel = "";

async function loadModels() {
  if (models) return models;
  try { models = await api.request("GET", "/api/models"); } catch { models = []; }
  return models;
}

export function createChatView({ navigate, onError }) {
  let conversationID = null;
  let messages = [];          // {id, role, content, status, model, reason}
  let streaming = null;       // {handle, message} while an answer streams
  let editingLast = false;
  let stickToBottom = true;
  let renderQueued = false;
  let loadToken = 0;

  const title = h("h1", { class: "chat-title", id: "chat-title" }, "New chat");
  const modelSelect = h("select", { id: "model-select", class: "model-select", onchange: () => { chosenModel = modelSelect.value; } });
  const modelLabel = h("label", { for: "model-select", class: "visually-hidden" }, "Model");
  const log = h("div", { class: "messages", role: "log", "aria-label": "Messages", "aria-live": "off", tabindex: "0" });
  const empty = h("div", { class: "empty-chat" }, h("p", {}, "Ask anything. Answers stream as they are written."));
  const liveRegion = h("div", { class: "visually-hidden", "aria-live": "polite", id: "chat-announcer" });

  const input = h("textarea", {
    id: "composer-input", rows: "1", placeholder: "Message Privia (Enter sends, Shift+Enter for a new line)",
    "aria-label": "Message", autocomplete: "off",
  });
  const sendButton = h("button", { type: "submit", class: "primary send", id: "send-button" }, "Send");
  const stopButton = h("button", { type: "button", class: "danger stop", id: "stop-button", hidden: true, onclick: () => stop() }, "Stop");
  const form = h("form", { class: "composer", onsubmit: (event) => { event.preventDefault(); send(); } },
    h("label", { for: "composer-input", class: "visually-hidden" }, "Message"), input, sendButton, stopButton);

  const element = h("section", { class: "chat", "aria-labelledby": "chat-title" },
    h("header", { class: "chat-header" }, title, modelLabel, modelSelect),
    log, liveRegion, form);

  // Auto-scroll follows the answer until the reader scrolls up, and again once back at the end.
  log.addEventListener("scroll", () => {
    stickToBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  });

  const grow = () => {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 240)}px`;
  };
  input.addEventListener("input", () => { grow(); drafts.save(conversationID, input.value); });
  input.addEventListener("keydown", (event) => {
    // While an IME composes, Enter picks a candidate: it must not send.
    if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.keyCode === 229) return;
    event.preventDefault();
    if (!streaming) send();
  });

  loadModels().then((list) => {
    modelSelect.replaceChildren(...list.map((m) => h("option", { value: m.id }, m.display_name || m.id)));
    const preferred = chosenModel || list.find((m) => m.default)?.id || list[0]?.id || "";
    modelSelect.value = preferred;
    modelSelect.hidden = list.length < 2;
  });

  function setStreaming(active) {
    sendButton.hidden = active;
    stopButton.hidden = !active;
    log.setAttribute("aria-busy", active ? "true" : "false");
  }

  function metaLine(message) {
    const parts = [];
    if (message.status && message.status !== "complete") {
      parts.push(h("span", { class: `status status-${message.status}` }, STATUS_TEXT[message.status] || message.status));
    }
    if (message.status === "failed" && message.reason) parts.push(h("span", { class: "reason" }, message.reason));
    if (message.model) parts.push(h("span", { class: "model" }, message.model));
    return parts.length ? h("div", { class: "message-meta" }, parts) : null;
  }

  function lastIndex(role) {
    for (let i = messages.length - 1; i >= 0; i--) if (messages[i].role === role) return i;
    return -1;
  }

  function messageElement(message, index) {
    const isUser = message.role === "user";
    const body = h("div", { class: "message-body" });
    if (isUser) body.textContent = message.content;  // a question is shown as typed, never as HTML
    else renderInto(body, message.content);
    const actions = [];
    const last = index === messages.length - 1 || (isUser && index === messages.length - 2);
    if (!streaming && last && messages.length) {
      if (isUser && index === lastIndex("user")) {
        actions.push(h("button", { type: "button", class: "link edit-question", onclick: () => { editingLast = true; draw(); } }, "Edit"));
      }
      if (!isUser && index === lastIndex("assistant")) {
        actions.push(h("button", { type: "button", class: "link regenerate", onclick: () => regenerate() }, "Regenerate"));
      }
    }
    if (isUser && editingLast && !streaming && index === lastIndex("user")) {
      const editor = h("textarea", { class: "edit-input", "aria-label": "Edit question", rows: "3" });
      editor.value = message.content;
      queueMicrotask(() => editor.focus());
      return h("article", { class: "message user editing" },
        h("form", { class: "edit-form", onsubmit: (event) => { event.preventDefault(); edit(editor.value); } },
          editor,
          h("div", { class: "edit-actions" },
            h("button", { type: "submit", class: "primary" }, "Save and ask"),
            h("button", { type: "button", onclick: () => { editingLast = false; draw(); } }, "Cancel"))));
    }
    return h("article", {
      class: `message ${message.role}${message.status ? ` status-${message.status}` : ""}`,
      dataset: { status: message.status || "", id: message.id || "" },
      "aria-label": isUser ? "You" : "Privia",
      "aria-live": message === streaming?.message ? "polite" : undefined,
      "aria-busy": message === streaming?.message ? "true" : undefined,
    }, body, isUser ? null : metaLine(message), actions.length ? h("div", { class: "message-actions" }, actions) : null);
  }

  function draw() {
    log.replaceChildren(...(messages.length ? messages.map(messageElement) : [empty]));
    if (stickToBottom) log.scrollTop = log.scrollHeight;
  }

  // Tokens arrive faster than frames: re-render the streaming message once per frame.
  function queueStreamRender() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => {
      renderQueued = false;
      const node = log.lastElementChild;
      if (!streaming || !node?.classList.contains("assistant")) return draw();
      renderInto(node.querySelector(".message-body"), streaming.message.content);
      if (stickToBottom) log.scrollTop = log.scrollHeight;
    });
  }

  async function run(turn, assistant) {
    messages.push(assistant);
    stickToBottom = true;
    streaming = { handle: null, message: assistant };
    setStreaming(true);
    draw();
    const startedIn = conversationID;
    const finish = async (result) => {
      if (!streaming || streaming.message !== assistant) return;
      streaming = null;
      setStreaming(false);
      const newID = result.conversation_id;
      if (newID && !startedIn) {
        conversationID = newID;
        drafts.save(null, "");
        navigate(`/c/${newID}`, { replace: true, keepView: true });
      }
      draw();
      liveRegion.textContent = assistant.status === "complete" ? "Answer complete." : `Answer ${assistant.status}.`;
      const id = conversationID;
      if (id) {
        const detail = await state.refreshOne(id);
        if (detail && id === conversationID && !streaming) {
          title.textContent = detail.title || "New chat";
          // A regenerate or an edit replaced the last exchange: the server's record wins.
          if (turn.action !== "ask") { messages = detail.messages.map(fromServer); draw(); }
        }
      }
    };
    try {
      streaming.handle = await startTurn(turn, {
        token: (text) => { assistant.content += text; queueStreamRender(); },
        done: (result) => {
          assistant.status = result.status || "complete";
          if (result.model) assistant.model = result.model;
          if (result.message_id) assistant.id = result.message_id;
          finish(result);
        },
        error: (error) => {
          assistant.status = "failed";
          assistant.reason = error.error || error.content || "The answer failed.";
          if (error.code === "AUTH") {
            assistant.reason = "Your session ended; sign in again.";
            // The question waits in the draft for after the sign-in.
            if (turn.question) drafts.save(startedIn, turn.question);
          }
          finish(error);
        },
      });
      log.dataset.transport = streaming?.handle?.transport || log.dataset.transport || "";
    } catch (error) {
      assistant.status = "failed";
      assistant.reason = error.detail || error.message;
      finish({});
    }
  }

  function send() {
    const question = input.value;
    if (!question.trim() || streaming) return;
    input.value = "";
    grow();
    drafts.save(conversationID, "");
    messages.push({ role: "user", content: question });
    run({ question, conversation_id: conversationID || undefined, model: modelSelect.value || undefined, action: "ask" },
      { role: "assistant", content: "", status: "streaming" });
  }

  function regenerate() {
    if (streaming) return;
    const index = lastIndex("assistant");
    if (index >= 0) messages.splice(index, 1);
    run({ question: "", conversation_id: conversationID, model: modelSelect.value || undefined, action: "regenerate" },
      { role: "assistant", content: "", status: "streaming" });
  }

  function edit(text) {
    if (streaming || !text.trim()) return;
    editingLast = false;
    const userIndex = lastIndex("user");
    messages = messages.slice(0, userIndex);
    messages.push({ role: "user", content: text });
    run({ question: text, conversation_id: conversationID, model: modelSelect.value || undefined, action: "edit" },
      { role: "assistant", content: "", status: "streaming" });
  }

  function stop() {
    streaming?.handle?.stop();
  }

  const fromServer = (m) => ({ id: m.id, role: m.role, content: m.content, status: m.status, model: m.model });

  /** Shows conversation `id` (null: a new chat). */
  async function show(id) {
    if (streaming && id === conversationID) return;
    if (streaming) stop();
    const token = ++loadToken;
    conversationID = id;
    messages = [];
    editingLast = false;
    stickToBottom = true;
    title.textContent = id ? (state.find(id)?.title || "") : "New chat";
    input.value = drafts.load(id);
    grow();
    draw();
    if (!id) { input.focus(); return; }
    log.setAttribute("aria-busy", "true");
    try {
      const detail = await api.request("GET", `/api/conversations/${encodeURIComponent(id)}`);
      if (token !== loadToken) return;
      title.textContent = detail.title || "New chat";
      document.title = `${detail.title || "New chat"} · Privia`;
      messages = detail.messages.map(fromServer);
      draw();
    } catch (error) {
      if (token !== loadToken) return;
      if (error.status === 404) {
        onError("That conversation does not exist (or was deleted).");
        navigate("/", { replace: true });
      } else if (error.status !== 401) {
        onError(error.detail || error.message);
      }
    } finally {
      if (token === loadToken) log.setAttribute("aria-busy", "false");
    }
    input.focus();
  }

  return {
    element,
    show,
    currentID: () => conversationID,
    isStreaming: () => streaming !== null,
    /** Another tab renamed or deleted a conversation. */
    renamed(id, newTitle) { if (id === conversationID) title.textContent = newTitle; },
  };
}
