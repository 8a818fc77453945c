// The chat socket (/api/ws/chat): one turn at a time, plus the workspace's `event` frames
// (another tab created, renamed or deleted a conversation). A page cannot set headers on a
// WebSocket, so the access token rides in the query (docs/browser-sessions.md).

import * as api from "./api.mjs";

const CONNECT_TIMEOUT_MS = 4000;
const RETRY_MS = [1000, 2000, 5000, 10000, 30000];

let socket = null;        // an open WebSocket, or null
let connecting = null;    // the promise of the socket being opened
let turn = null;          // the handlers of the turn in progress
let openedWith = null;    // the token the socket was opened with
let retries = 0;
let retryTimer = null;
let wanted = false;       // keep a socket open (signed in)
const eventListeners = new Set();

export const onEvent = (listener) => eventListeners.add(listener);
export const isOpen = () => socket !== null;

function frame(message) {
  let data;
  try { data = JSON.parse(message.data); } catch { return; }
  if (data.type === "event") {
    for (const listener of eventListeners) listener(data);
    return;
  }
  if (!turn) return;
  const handlers = turn;
  if (data.type === "token") handlers.token(data.content ?? "");
  else if (data.type === "done") { turn = null; handlers.done(data); afterTurn(); }
  else if (data.type === "error") {
    turn = null;
    handlers.error({ error: data.content, code: data.code, conversation_id: data.conversation_id, message_id: data.message_id });
    afterTurn();
  }
}

function scheduleReconnect() {
  if (!wanted || retryTimer) return;
  const delay = RETRY_MS[Math.min(retries, RETRY_MS.length - 1)];
  retries += 1;
  retryTimer = setTimeout(() => { retryTimer = null; connect().catch(() => {}); }, delay);
}

/** Opens the socket (once at a time); rejects when it cannot connect. */
export function connect() {
  wanted = true;
  if (socket) return Promise.resolve(socket);
  const token = api.token();
  if (!token) return Promise.reject(new Error("not signed in"));
  connecting ??= new Promise((resolve, reject) => {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/api/ws/chat?token=${encodeURIComponent(token)}`);
    const timer = setTimeout(() => ws.close(), CONNECT_TIMEOUT_MS);
    let opened = false;
    ws.onopen = () => {
      clearTimeout(timer);
      opened = true;
      socket = ws;
      openedWith = token;
      retries = 0;
      connecting = null;
      resolve(ws);
    };
    ws.onmessage = frame;
    ws.onclose = () => {
      clearTimeout(timer);
      connecting = null;
      if (socket === ws) socket = null;
      if (!opened) reject(new Error("the chat socket could not connect"));
      if (turn) {
        const handlers = turn;
        turn = null;
        handlers.error({ error: "The connection was lost.", code: "NETWORK", lost: true });
      }
      scheduleReconnect();
    };
  });
  return connecting;
}

export function disconnect() {
  wanted = false;
  clearTimeout(retryTimer);
  retryTimer = null;
  socket?.close(1000);
  socket = null;
}

// The socket's turns use the token it was opened with: reopen it with a new one once idle.
function afterTurn() {
  if (socket && openedWith !== api.token()) {
    const old = socket;
    socket = null;
    old.close(1000);
    connect().catch(() => {});
  }
}
api.onTokenChanged(() => { if (!turn) afterTurn(); });

/** Sends one turn; handlers get token(text), done(frame), error(frame). Returns stop(). */
export function sendTurn(body, handlers) {
  if (!socket || turn) throw new Error("the chat socket is not ready");
  turn = handlers;
  socket.send(JSON.stringify(body));
  return () => socket?.send(JSON.stringify({ type: "stop" }));
}
