// Light, dark, or the system's (the default). The choice is a preference, kept in
// localStorage; the page's colours follow the `data-theme` attribute (app.css).

const KEY = "privia.theme";
const order = ["system", "light", "dark"];

export function current() {
  try { return localStorage.getItem(KEY) || "system"; } catch { return "system"; }
}

export function apply(choice = current()) {
  const root = document.documentElement;
  if (choice === "system") delete root.dataset.theme;
  else root.dataset.theme = choice;
  const light = document.getElementById("hljs-light");
  const dark = document.getElementById("hljs-dark");
  if (light && dark) {
    light.media = choice === "system" ? "(prefers-color-scheme: light)" : choice === "light" ? "all" : "not all";
    dark.media = choice === "system" ? "(prefers-color-scheme: dark)" : choice === "dark" ? "all" : "not all";
  }
}

/** The next choice in turn; returns it. */
export function cycle() {
  const next = order[(order.indexOf(current()) + 1) % order.length];
  try { localStorage.setItem(KEY, next); } catch { /* not kept across reloads */ }
  apply(next);
  return next;
}
