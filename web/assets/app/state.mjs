// The conversation list as far as it is loaded: newest first, a page at a time
// (`?limit=` and the `X-Next-Cursor` header), never the whole list at once.

import * as api from "./api.mjs";

const PAGE_SIZE = 30;

export const conversations = {
  items: [],          // summaries {id, title, status, created_at, updated_at, message_count}
  nextCursor: null,
  exhausted: false,
  loading: null,
  error: null,
};

const listeners = new Set();
export const subscribe = (listener) => listeners.add(listener);
const changed = () => { for (const listener of listeners) listener(conversations); };

export function reset() {
  Object.assign(conversations, { items: [], nextCursor: null, exhausted: false, loading: null, error: null });
  changed();
}

/** Loads the next page, if any; concurrent calls share one request. */
export function loadMore() {
  if (conversations.exhausted) return Promise.resolve();
  conversations.loading ??= (async () => {
    try {
      const cursor = conversations.nextCursor ? `&cursor=${encodeURIComponent(conversations.nextCursor)}` : "";
      const { body, headers } = await api.request("GET", `/api/conversations?limit=${PAGE_SIZE}${cursor}`, undefined, { withHeaders: true });
      const known = new Set(conversations.items.map((c) => c.id));
      conversations.items.push(...body.filter((c) => !known.has(c.id)));
      conversations.nextCursor = headers.get("X-Next-Cursor");
      conversations.exhausted = !conversations.nextCursor;
      conversations.error = null;
    } catch (error) {
      conversations.error = error.detail || error.message;
    } finally {
      conversations.loading = null;
      changed();
    }
  })();
  changed();
  return conversations.loading;
}

/** Adds or updates a summary; `toTop` moves it first (it has just changed). */
export function upsert(summary, { toTop = true } = {}) {
  const index = conversations.items.findIndex((c) => c.id === summary.id);
  if (index >= 0) {
    // A slower, older answer (a refresh that crossed a rename) must not undo a newer one.
    const known = conversations.items[index].updated_at;
    if (known && summary.updated_at && summary.updated_at < known) return;
    const merged = { ...conversations.items[index], ...summary };
    if (toTop) {
      conversations.items.splice(index, 1);
      conversations.items.unshift(merged);
    } else {
      conversations.items[index] = merged;
    }
  } else {
    conversations.items.unshift(summary);
  }
  changed();
}

export function remove(id) {
  conversations.items = conversations.items.filter((c) => c.id !== id);
  changed();
}

export const find = (id) => conversations.items.find((c) => c.id === id);

/** Fetches one conversation's summary again (its title after the first turn) and shows it first. */
export async function refreshOne(id) {
  try {
    const detail = await api.request("GET", `/api/conversations/${encodeURIComponent(id)}`);
    const { messages, ...summary } = detail;
    upsert(summary);
    return detail;
  } catch (error) {
    if (error.status === 404) remove(id);
    return null;
  }
}

export async function rename(id, title) {
  const detail = await api.request("PATCH", `/api/conversations/${encodeURIComponent(id)}`, { title });
  const { messages, ...summary } = detail;
  upsert(summary, { toTop: false });
}

export async function destroy(id) {
  await api.request("DELETE", `/api/conversations/${encodeURIComponent(id)}`);
  remove(id);
}

/** The user's empty conversation, or a new one. */
export async function create() {
  const detail = await api.request("POST", "/api/conversations", {});
  const { messages, ...summary } = detail;
  upsert(summary);
  return summary;
}
