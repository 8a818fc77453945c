// The sidebar: new chat, a filter by title, and the conversations newest first, loaded a
// page at a time as the list scrolls. Rename happens in place; delete asks first.

import { h } from "../dom.mjs";
import * as state from "../state.mjs";

export function createSidebar({ navigate, currentID, onError }) {
  let filter = "";
  let editing = null;     // id being renamed
  let editingRow = null;  // its row, kept across redraws so the typing survives
  let confirming = null;  // id asking "delete?"

  const list = h("ul", { class: "conversation-list", "aria-label": "Conversations" });
  const status = h("p", { class: "list-status", "aria-live": "polite" });
  const sentinel = h("div", { class: "list-sentinel", "aria-hidden": "true" });
  const filterInput = h("input", {
    type: "search", id: "conversation-filter", placeholder: "Filter by title", autocomplete: "off",
    oninput: () => { filter = filterInput.value.trim().toLowerCase(); draw(); },
  });
  const newChat = h("button", {
    type: "button", class: "primary new-chat",
    onclick: async () => {
      try {
        const summary = await state.create();
        navigate(`/c/${summary.id}`);
      } catch (error) {
        onError(error.detail || error.message);
      }
    },
  }, "New chat");

  const scroller = h("div", { class: "list-scroller" }, list, status, sentinel);
  const element = h("nav", { class: "sidebar", id: "sidebar", "aria-label": "Workspace" },
    newChat,
    h("label", { class: "visually-hidden", for: "conversation-filter" }, "Filter conversations by title"),
    filterInput,
    scroller,
  );

  // The next page loads when the end of the list comes into view.
  const observer = new IntersectionObserver((entries) => {
    if (entries.some((entry) => entry.isIntersecting)) state.loadMore();
  }, { root: scroller, rootMargin: "200px" });
  observer.observe(sentinel);

  function row(conversation) {
    const id = conversation.id;
    const active = id === currentID();
    const title = conversation.title || "New chat";
    if (editing === id && editingRow) return editingRow;
    if (editing === id) {
      const input = h("input", { type: "text", class: "rename-input", value: title, "aria-label": "New title", maxlength: "200" });
      const finish = async (save) => {
        if (editing !== id) return;
        editing = null;
        editingRow = null;
        const value = input.value.trim();
        if (save && value && value !== conversation.title) {
          try { await state.rename(id, value); } catch (error) { onError(error.detail || error.message); }
        }
        draw();
      };
      input.addEventListener("keydown", (event) => {
        if (event.key === "Enter" && !event.isComposing) { event.preventDefault(); finish(true); }
        if (event.key === "Escape") { event.preventDefault(); finish(false); }
      });
      input.addEventListener("blur", () => finish(true));
      queueMicrotask(() => { input.focus(); input.select(); });
      editingRow = h("li", { class: "conversation editing", dataset: { id } }, input);
      return editingRow;
    }
    if (confirming === id) {
      return h("li", { class: "conversation confirming", dataset: { id }, role: "group", "aria-label": `Delete ${title}?` },
        h("span", { class: "confirm-text" }, `Delete “${title}”?`),
        h("button", {
          type: "button", class: "danger confirm-delete",
          onclick: async () => {
            confirming = null;
            try {
              await state.destroy(id);
              if (currentID() === id) navigate("/", { replace: true });
            } catch (error) { onError(error.detail || error.message); draw(); }
          },
        }, "Delete"),
        h("button", { type: "button", class: "cancel-delete", onclick: () => { confirming = null; draw(); } }, "Cancel"));
    }
    return h("li", { class: `conversation${active ? " active" : ""}`, dataset: { id } },
      h("a", {
        href: `/c/${id}`, class: "conversation-link", "aria-current": active ? "page" : undefined,
        onclick: (event) => { if (event.button === 0 && !event.metaKey && !event.ctrlKey) { event.preventDefault(); navigate(`/c/${id}`); } },
        ondblclick: (event) => { event.preventDefault(); editing = id; draw(); },
      }, title),
      h("button", { type: "button", class: "icon rename", "aria-label": `Rename ${title}`, title: "Rename", onclick: () => { editing = id; draw(); } }, "✎"),
      h("button", { type: "button", class: "icon delete", "aria-label": `Delete ${title}`, title: "Delete", onclick: () => { confirming = id; draw(); } }, "✕"));
  }

  function draw() {
    const { items, loading, exhausted, error } = state.conversations;
    const shown = filter ? items.filter((c) => (c.title || "New chat").toLowerCase().includes(filter)) : items;
    // While a title is being typed the list stays as it is: moving the focused input would blur it.
    if (!(editingRow && list.contains(editingRow))) list.replaceChildren(...shown.map(row));
    if (error) status.textContent = `Could not load conversations: ${error}`;
    else if (loading) status.textContent = "Loading…";
    else if (!items.length && exhausted) status.textContent = "No conversations yet.";
    else if (filter && !shown.length) status.textContent = exhausted ? "No title matches." : "No match so far; scroll for older ones.";
    else status.textContent = "";
    // A short first page leaves the sentinel in view: keep filling until the list scrolls.
    // (Only while the list is on screen: a closed drawer must not load every page.)
    const visible = scroller.clientHeight > 0 && getComputedStyle(element).visibility !== "hidden";
    if (visible && !loading && !exhausted && !error && scroller.scrollHeight <= scroller.clientHeight + 200) {
      requestAnimationFrame(() => state.loadMore());
    }
  }

  state.subscribe(draw);
  return { element, draw };
}
