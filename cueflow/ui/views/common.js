// What the views share: polling, page headers, tables, confirmations and cue names.

import { api, query } from "../api.js";
import { h } from "../dom.js";

/**
 * Run ``task`` now and then every ``ms`` milliseconds (never two at once, paused while the tab
 * is hidden); returns the function that stops it.
 */
export function every(ms, task) {
  let stopped = false;
  let timer = null;
  const tick = async () => {
    if (stopped) return;
    if (!document.hidden) {
      try {
        await task();
      } catch {
        // the view shows the failure itself; polling goes on
      }
    }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/** A page title with an optional subtitle and actions on the right. */
export function pageHeader(title, subtitle, ...actions) {
  return h("div", { class: "page-header" },
    h("div", {}, h("h1", {}, title), subtitle ? h("p", { class: "muted" }, subtitle) : null),
    h("div", { class: "page-actions" }, ...actions));
}

/** A table with a header row; ``body`` is the <tbody> the view fills. */
export function table(columns, body, attrs = {}) {
  return h("div", { class: "table-wrap" },
    h("table", attrs,
      h("thead", {}, h("tr", {}, columns.map((name) => h("th", { scope: "col" }, name)))),
      body));
}

/** One full-width row saying there is nothing (yet). */
export function emptyRow(columns, text) {
  return h("tr", { class: "empty" }, h("td", { colspan: columns }, text));
}

/** A banner for a failed load, or nothing. */
export function problem(node, failure) {
  node.hidden = !failure;
  node.textContent = failure ? `Could not load: ${failure.message}` : "";
}

/** Ask before something that cannot be undone; resolves to true when confirmed. */
export function confirmAction(title, text, confirmLabel) {
  return new Promise((resolve) => {
    const cancel = h("button", { type: "button", class: "button ghost", "data-action": "cancel" }, "Cancel");
    const ok = h("button", { type: "button", class: "button danger", "data-action": "confirm" }, confirmLabel);
    const dialog = h("dialog", { class: "confirm", "aria-labelledby": "confirm-title" },
      h("h2", { id: "confirm-title" }, title),
      h("p", {}, text),
      h("div", { class: "dialog-actions" }, cancel, ok));
    const close = (answer) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    cancel.addEventListener("click", () => close(false));
    ok.addEventListener("click", () => close(true));
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      close(false);
    });
    document.body.appendChild(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

const cueNames = new Map();

/** Cue names by id (the account's newest 100 cues), refreshed on each call. */
export async function loadCueNames() {
  const page = await api("GET", `/v1/cues${query({ limit: 100 })}`);
  for (const cue of page.cues) cueNames.set(cue.id, cue.name);
  return cueNames;
}

/** A cue's name if known, else its id. */
export function cueName(id) {
  return cueNames.get(id) ?? id;
}

/** Statuses after which an execution can be replayed. */
export const REPLAYABLE = new Set(["success", "failed", "missed"]);

/** Statuses that will not change any more. */
export const FINISHED = new Set(["success", "failed", "missed"]);
