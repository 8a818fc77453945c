// The sign-in and sign-up pages. Each error shows the server's `detail`; a 429 says when
// to try again.

import * as api from "../api.mjs";
import { h } from "../dom.mjs";

function waitText(error) {
  const seconds = error.retryAfterSeconds;
  if (seconds === null) return "Too many attempts: try again in a minute.";
  if (seconds < 90) return `Too many attempts: try again in ${seconds} second${seconds === 1 ? "" : "s"}.`;
  return `Too many attempts: try again in ${Math.ceil(seconds / 60)} minutes.`;
}

/** Renders the page into `root`; calls onSignedIn() once a session exists. */
export function renderAuth(root, mode, { onSignedIn, navigate }) {
  const signingUp = mode === "signup";
  const error = h("p", { class: "form-error", role: "alert", "aria-live": "assertive", id: "auth-error" });
  const email = h("input", { id: "auth-email", name: "email", type: "email", autocomplete: "email", required: true });
  const password = h("input", {
    id: "auth-password", name: "password", type: "password", required: true,
    autocomplete: signingUp ? "new-password" : "current-password", minlength: signingUp ? "8" : undefined,
  });
  const fullName = signingUp ? h("input", { id: "auth-name", name: "full_name", type: "text", autocomplete: "name" }) : null;
  const submit = h("button", { type: "submit", class: "primary" }, signingUp ? "Create account" : "Sign in");

  const form = h("form", {
    class: "auth-form",
    "aria-describedby": "auth-error",
    onsubmit: async (event) => {
      event.preventDefault();
      error.textContent = "";
      submit.disabled = true;
      try {
        if (signingUp) {
          await api.signup(email.value.trim(), password.value, fullName.value.trim());
        } else {
          await api.login(email.value.trim(), password.value);
        }
        onSignedIn();
      } catch (failure) {
        error.textContent = failure.status === 429 ? waitText(failure) : (failure.detail || "Could not reach Privia; try again.");
        submit.disabled = false;
      }
    },
  },
    h("h1", {}, signingUp ? "Create your Privia account" : "Sign in to Privia"),
    fullName && h("label", { for: "auth-name" }, "Name (optional)"), fullName,
    h("label", { for: "auth-email" }, "Email"), email,
    h("label", { for: "auth-password" }, "Password"), password,
    error,
    submit,
    h("p", { class: "auth-switch" },
      signingUp ? "Already have an account? " : "New here? ",
      h("a", {
        href: signingUp ? "/signin" : "/signup",
        onclick: (event) => { event.preventDefault(); navigate(signingUp ? "/signin" : "/signup"); },
      }, signingUp ? "Sign in" : "Create an account")),
  );
  root.replaceChildren(h("main", { class: "auth-page" }, form));
  document.title = signingUp ? "Sign up · Privia" : "Sign in · Privia";
  email.focus();
}
