// Routes are paths: /signin, /signup, / (a new chat), /c/<id> (a conversation), /usage.
// nginx serves index.html for each (nginx/snippets/privia/web.conf), so reload and shared
// links work; back and forward come through popstate.

const listeners = new Set();

export function parse(path = location.pathname) {
  const conversation = /^\/c\/([A-Za-z0-9_-]+)\/?$/.exec(path);
  if (conversation) return { name: "chat", id: conversation[1] };
  if (path === "/signin" || path === "/signin/") return { name: "signin" };
  if (path === "/signup" || path === "/signup/") return { name: "signup" };
  if (path === "/usage" || path === "/usage/") return { name: "usage" };
  return { name: "chat", id: null };
}

export const current = () => parse();
export const onChange = (listener) => listeners.add(listener);

/** Goes to `path`; `keepView` only updates the address (a new chat got its id). */
export function navigate(path, { replace = false, keepView = false } = {}) {
  if (path !== location.pathname) {
    if (replace) history.replaceState(null, "", path);
    else history.pushState(null, "", path);
  }
  const route = parse(path);
  for (const listener of listeners) listener(route, { keepView });
}

addEventListener("popstate", () => {
  const route = parse();
  for (const listener of listeners) listener(route, {});
});
