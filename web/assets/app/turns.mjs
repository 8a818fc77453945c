// One chat turn, over the socket when it is open, else over SSE (POST /api/stream).
// Every turn carries an Idempotency-Key: a retried send returns the first turn's result.

import * as api from "./api.mjs";
import * as chatSocket from "./socket.mjs";
import { readEvents } from "./sse.mjs";

/**
 * turn: {question, conversation_id?, model?, action?}; handlers: token(text), done(result),
 * error({error, code}). Returns {stop(), transport}.
 */
export async function startTurn(turn, handlers) {
  const body = { ...turn, idempotency_key: crypto.randomUUID() };
  let socketReady = chatSocket.isOpen();
  if (!socketReady) {
    try { await chatSocket.connect(); socketReady = true; } catch { socketReady = false; }
  }
  if (socketReady) {
    try {
      const stop = chatSocket.sendTurn(body, handlers);
      return { stop, transport: "websocket" };
    } catch { /* busy or closed meanwhile: SSE below */ }
  }
  return streamOverSSE(body, handlers);
}

function streamOverSSE(body, handlers) {
  const controller = new AbortController();
  let stopped = false;
  let finished = false;
  const finish = (kind, value) => {
    if (finished) return;
    finished = true;
    handlers[kind](value);
  };
  (async () => {
    try {
      const response = await api.authorizedFetch("/api/stream", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream", "Idempotency-Key": body.idempotency_key },
        body: JSON.stringify(body),
        signal: controller.signal,
      });
      if (!response.ok) {
        const error = await api.errorFrom(response);
        return finish("error", { error: error.detail, code: error.code });
      }
      await readEvents(response.body, {
        token: (text) => { if (!finished) handlers.token(text); },
        done: (result) => finish("done", result),
        error: (error) => finish("error", error),
      });
      if (!finished) finish("error", { error: "The stream ended without an answer.", code: "NETWORK" });
    } catch (error) {
      // Leaving the stream is how SSE stops: the server keeps the partial answer as `stopped`.
      if (stopped) finish("done", { status: "stopped", local: true });
      else finish("error", { error: error.detail || error.message || "The connection failed.", code: error.code || "NETWORK" });
    }
  })();
  return {
    stop: () => { stopped = true; controller.abort(); },
    transport: "sse",
  };
}
