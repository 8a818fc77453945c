// Markdown to safe HTML: marked (GFM) → math through KaTeX (only between $$…$$ and \(…\),
// so prices like $5 stay text) → DOMPurify. Code is highlighted by highlight.js and gets a
// copy button. `marked` and `hljs` are globals from Debian's UMD builds (index.html).

import DOMPurify from "../vendor/purify.es.mjs";
import katex from "../vendor/katex/katex.mjs";

const { marked, hljs } = globalThis;

const math = (tex, displayMode) => katex.renderToString(tex, { displayMode, throwOnError: false, trust: false });

marked.use({
  gfm: true,
  breaks: false,
  mangle: false,
  headerIds: false,
  langPrefix: "hljs language-",
  highlight(code, language) {
    try {
      if (language && hljs.getLanguage(language)) return hljs.highlight(language, code, true).value;
      return hljs.highlightAuto(code).value;
    } catch {
      return null;  // marked escapes the code itself
    }
  },
  extensions: [
    {
      name: "displayMath",
      level: "block",
      start: (src) => src.indexOf("$$"),
      tokenizer(src) {
        const match = /^\$\$([\s\S]+?)\$\$[^\S\n]*(?:\n|$)/.exec(src);
        if (match) return { type: "displayMath", raw: match[0], tex: match[1].trim() };
        return undefined;
      },
      renderer: (token) => `<div class="math-display">${math(token.tex, true)}</div>\n`,
    },
    {
      name: "inlineMath",
      level: "inline",
      start(src) {
        const positions = [src.indexOf("$$"), src.indexOf("\\(")].filter((i) => i >= 0);
        return positions.length ? Math.min(...positions) : undefined;
      },
      tokenizer(src) {
        const match = /^\$\$([^$]+?)\$\$/.exec(src) || /^\\\(([\s\S]+?)\\\)/.exec(src);
        if (match) return { type: "inlineMath", raw: match[0], tex: match[1].trim(), display: match[0].startsWith("$$") };
        return undefined;
      },
      renderer: (token) => math(token.tex, token.display),
    },
  ],
});

// Links open in a new tab without telling the other site where they came from; images load
// only from data: URLs, so an answer never makes the page contact another origin.
DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A" && node.hasAttribute("href")) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
  if (node.tagName === "IMG" && !(node.getAttribute("src") || "").startsWith("data:")) {
    node.removeAttribute("src");
    node.removeAttribute("srcset");
  }
});

const PURIFY = { FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "iframe", "object", "embed"], FORBID_ATTR: ["srcset"] };

/** Sanitized HTML for a Markdown text. */
export function render(text) {
  let html;
  try {
    html = marked.parse(text);
  } catch {
    html = `<pre>${escapeHTML(text)}</pre>`;
  }
  return DOMPurify.sanitize(html, PURIFY);
}

export function escapeHTML(text) {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

/** Renders `text` into `element` and adds a copy button to each code block. */
export function renderInto(element, text) {
  element.innerHTML = render(text);
  for (const pre of element.querySelectorAll("pre")) {
    const code = pre.querySelector("code") || pre;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "copy-code";
    button.textContent = "Copy";
    button.setAttribute("aria-label", "Copy code");
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(code.textContent);
        button.textContent = "Copied";
      } catch {
        button.textContent = "Copy failed";
      }
      setTimeout(() => { button.textContent = "Copy"; }, 1500);
    });
    pre.classList.add("has-copy");
    pre.prepend(button);
  }
}
