// Reads a text/event-stream response body (fetch + ReadableStream, WHATWG framing):
// an event's `data:` lines join with "\n", so a token holding newlines keeps them.
// Privia's stream: unnamed events are answer tokens, then `event: done` or `event: error`.

/**
 * Calls handlers.token(text), handlers.done(object), handlers.error(object) or
 * handlers.other(name, data) per event; resolves when the body ends.
 */
export async function readEvents(body, handlers) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let name = "";
  let data = [];

  const dispatch = () => {
    if (data.length === 0) { name = ""; return; }
    const text = data.join("\n");
    const event = name;
    name = "";
    data = [];
    if (event === "") handlers.token?.(text);
    else if (event === "done") handlers.done?.(JSON.parse(text));
    else if (event === "error") handlers.error?.(JSON.parse(text));
    else handlers.other?.(event, text);
  };

  const line = (raw) => {
    if (raw === "") return dispatch();
    if (raw.startsWith(":")) return;  // a comment: the server's ping
    const colon = raw.indexOf(":");
    const field = colon === -1 ? raw : raw.slice(0, colon);
    let value = colon === -1 ? "" : raw.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") data.push(value);
    else if (field === "event") name = value;
  };

  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    // Lines end in \n, \r\n or \r.
    while ((end = buffer.search(/\r\n|\r|\n/)) !== -1) {
      // A lone \r at the end may be the first half of \r\n: wait for more.
      if (buffer[end] === "\r" && end === buffer.length - 1) break;
      const length = buffer.startsWith("\r\n", end) ? 2 : 1;
      line(buffer.slice(0, end));
      buffer = buffer.slice(end + length);
    }
  }
  if (buffer !== "") line(buffer);
  dispatch();
}
