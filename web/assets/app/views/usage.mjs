// The usage page: the caller's tokens per day over the last 30 days as an inline SVG bar
// chart, the totals, and the budget in force (GET /api/usage).

import * as api from "../api.mjs";
import { h } from "../dom.mjs";

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  for (const child of children) element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return element;
}

function chart(days, rows) {
  const totals = new Map();
  for (const row of rows) {
    const day = row.day.slice(0, 10);
    totals.set(day, (totals.get(day) || 0) + row.input_tokens + row.output_tokens);
  }
  const labels = [];
  const today = new Date();
  for (let i = days - 1; i >= 0; i--) {
    labels.push(new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - i)).toISOString().slice(0, 10));
  }
  const max = Math.max(1, ...labels.map((d) => totals.get(d) || 0));
  const width = 600, height = 200, pad = 24, barWidth = (width - pad) / labels.length;
  const bars = labels.map((day, i) => {
    const value = totals.get(day) || 0;
    const barHeight = ((height - pad) * value) / max;
    return svg("rect", { x: pad + i * barWidth + 1, y: height - pad - barHeight, width: Math.max(1, barWidth - 2), height: barHeight, class: "bar" },
      svg("title", {}, `${day}: ${value} tokens`));
  });
  return svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "usage-chart", role: "img", "aria-label": `Tokens per day, last ${days} days; most in a day: ${max}` },
    svg("line", { x1: pad, y1: height - pad, x2: width, y2: height - pad, class: "axis" }),
    svg("text", { x: pad, y: height - 6, class: "label" }, labels[0]),
    svg("text", { x: width, y: height - 6, class: "label", "text-anchor": "end" }, labels[labels.length - 1]),
    svg("text", { x: 0, y: 12, class: "label" }, String(max)),
    ...bars);
}

export async function renderUsage(root) {
  const section = h("section", { class: "usage", "aria-labelledby": "usage-title" }, h("h1", { id: "usage-title" }, "Usage"), h("p", {}, "Loading…"));
  root.replaceChildren(section);
  document.title = "Usage · Privia";
  try {
    const report = await api.request("GET", "/api/usage?days=30");
    const { totals, budget } = report;
    const limits = [];
    if (budget.daily_tokens) limits.push(`${budget.daily_tokens.toLocaleString()} tokens a day`);
    if (budget.daily_cost) limits.push(`${budget.daily_cost} a day`);
    section.replaceChildren(
      h("h1", { id: "usage-title" }, "Usage"),
      h("p", {}, `Last ${report.days} days: ${totals.input_tokens.toLocaleString()} tokens in, ${totals.output_tokens.toLocaleString()} out, cost ${totals.cost.toFixed(4)}.`),
      h("p", {}, limits.length ? `Budget: ${limits.join(", ")}.` : "No budget limit."),
      chart(report.days, report.by_day_and_model),
    );
  } catch (error) {
    section.replaceChildren(h("h1", { id: "usage-title" }, "Usage"), h("p", { role: "alert" }, error.detail || error.message));
  }
}
