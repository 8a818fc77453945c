// The app: restores the session from the refresh cookie, then shows the sign-in pages or the
// workspace (sidebar + chat or usage) for the current route, and keeps tabs in step through
// the chat socket's `event` frames.

import * as api from "./api.mjs";
import { h } from "./dom.mjs";
import * as router from "./router.mjs";
import * as chatSocket from "./socket.mjs";
import * as state from "./state.mjs";
import * as theme from "./theme.mjs";
import { renderAuth } from "./views/auth.mjs";
import { createChatView } from "./views/chat.mjs";
import { createSidebar } from "./views/sidebar.mjs";
import { renderUsage } from "./views/usage.mjs";

const root = document.getElementById("app");
const RETURN_KEY = "privia.returnTo";
const THEME_LABEL = { system: "Theme: system", light: "Theme: light", dark: "Theme: dark" };

let workspace = null;  // {element, main, chat, sidebar} once signed in
let signedIn = false;

theme.apply();

function notify(text) {
  const toast = document.getElementById("toast");
  if (!toast) return;
  toast.textContent = text;
  toast.hidden = false;
  clearTimeout(notify.timer);
  notify.timer = setTimeout(() => { toast.hidden = true; }, 6000);
}

function buildWorkspace() {
  const chat = createChatView({ navigate: router.navigate, onError: notify });
  const sidebar = createSidebar({ navigate: (path, options) => { closeDrawer(); router.navigate(path, options); }, currentID: () => chat.currentID(), onError: notify });
  const main = h("main", { class: "main", id: "main" });
  const menuButton = h("button", {
    type: "button", class: "icon menu-toggle", "aria-label": "Conversations", "aria-controls": "sidebar", "aria-expanded": "false",
    onclick: () => (element.classList.contains("drawer-open") ? closeDrawer() : openDrawer()),
  }, "☰");
  const themeButton = h("button", {
    type: "button", class: "theme-toggle", id: "theme-toggle", "aria-label": THEME_LABEL[theme.current()],
    onclick: () => { themeButton.setAttribute("aria-label", THEME_LABEL[theme.cycle()]); themeButton.textContent = icon(); },
  });
  const icon = () => ({ system: "◐", light: "☀", dark: "☾" })[theme.current()];
  themeButton.textContent = icon();
  const scrim = h("div", { class: "scrim", onclick: () => closeDrawer() });
  const element = h("div", { class: "workspace" },
    h("header", { class: "topbar" },
      menuButton,
      h("a", { href: "/", class: "brand", onclick: (event) => { event.preventDefault(); router.navigate("/"); } }, "Privia"),
      h("span", { class: "spacer" }),
      h("a", { href: "/usage", class: "usage-link", onclick: (event) => { event.preventDefault(); router.navigate("/usage"); } }, "Usage"),
      themeButton,
      h("span", { class: "user-email" }, api.user()?.email || ""),
      h("button", { type: "button", class: "sign-out", onclick: () => api.logout() }, "Sign out")),
    sidebar.element, scrim, main,
    h("div", { id: "toast", class: "toast", role: "status", hidden: true }));

  function openDrawer() {
    element.classList.add("drawer-open");
    menuButton.setAttribute("aria-expanded", "true");
    sidebar.element.querySelector("button, input, a")?.focus();
  }
  function closeDrawer() {
    if (!element.classList.contains("drawer-open")) return;
    element.classList.remove("drawer-open");
    menuButton.setAttribute("aria-expanded", "false");
  }
  element.addEventListener("keydown", (event) => { if (event.key === "Escape") closeDrawer(); });
  return { element, main, chat, sidebar };
}

function show(route, { keepView = false } = {}) {
  if (!signedIn) {
    if (route.name !== "signin" && route.name !== "signup") {
      sessionStorage.setItem(RETURN_KEY, location.pathname);
      history.replaceState(null, "", "/signin");
      route = { name: "signin" };
    }
    workspace = null;
    renderAuth(root, route.name, { onSignedIn: enter, navigate: router.navigate });
    return;
  }
  if (route.name === "signin" || route.name === "signup") return router.navigate("/", { replace: true });
  if (!workspace) {
    workspace = buildWorkspace();
    root.replaceChildren(workspace.element);
    state.reset();
    state.loadMore();
  }
  if (route.name === "usage") {
    renderUsage(workspace.main);
  } else {
    if (!workspace.main.contains(workspace.chat.element)) workspace.main.replaceChildren(workspace.chat.element);
    if (!keepView) workspace.chat.show(route.id);
    document.title = route.id ? document.title : "New chat · Privia";
  }
  workspace.sidebar.draw();
}

function enter() {
  signedIn = true;
  chatSocket.connect().catch(() => { /* turns fall back to SSE */ });
  const back = sessionStorage.getItem(RETURN_KEY);
  sessionStorage.removeItem(RETURN_KEY);
  const path = back && router.parse(back).name !== "signin" && router.parse(back).name !== "signup" ? back : location.pathname;
  history.replaceState(null, "", path);
  show(router.parse(path));
}

api.onSignedOut(() => {
  signedIn = false;
  chatSocket.disconnect();
  const route = router.current();
  if (route.name !== "signin" && route.name !== "signup") sessionStorage.setItem(RETURN_KEY, location.pathname);
  history.pushState(null, "", "/signin");
  show({ name: "signin" });
});

// Other tabs (and this one) announce changes to the workspace.
chatSocket.onEvent((event) => {
  if (!workspace) return;
  const id = event.conversation_id;
  if (!id) return;
  if (event.kind === "conversation.deleted") {
    state.remove(id);
    if (workspace.chat.currentID() === id && !workspace.chat.isStreaming()) router.navigate("/", { replace: true });
  } else if (event.kind === "conversation.renamed" && event.title !== undefined) {
    if (state.find(id)) state.upsert({ id, title: event.title }, { toTop: false });
    workspace.chat.renamed(id, event.title);
  } else if (event.kind === "conversation.created" || event.kind === "message.finished") {
    state.refreshOne(id);
  }
});

router.onChange((route, options) => show(route, options));

(async () => {
  try {
    signedIn = await api.refresh();
  } catch {
    signedIn = false;
  }
  root.removeAttribute("aria-busy");
  if (signedIn) enter();
  else show(router.current());
})();
