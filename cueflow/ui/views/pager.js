// Paging and search for the lists: "1–50 of 230", previous/next, and a search box whose
// changes wait until typing pauses.

import { h } from "../dom.js";

/**
 * Previous/next controls over pages of ``size`` rows; ``onChange()`` runs after a move.
 * ``show(total, count)`` updates the position after each load; ``offset()`` is the current one.
 */
export function pager(size, onChange, label = "rows") {
  let offset = 0;
  let total = 0;
  const info = h("span", { class: "pager-info muted" });
  const move = (by) => {
    offset = Math.max(0, offset + by);
    onChange();
  };
  const previous = h("button", { type: "button", class: "button small", "data-action": "previous-page", onclick: () => move(-size) }, "‹ Newer");
  const next = h("button", { type: "button", class: "button small", "data-action": "next-page", onclick: () => move(size) }, "Older ›");
  return {
    node: h("div", { class: "pager", role: "navigation", "aria-label": `Pages of ${label}` }, previous, info, next),
    offset: () => offset,
    reset() {
      offset = 0;
    },
    show(newTotal, count) {
      total = newTotal;
      if (offset > 0 && count === 0 && total > 0) {
        move(-Math.ceil((offset - total + 1) / size) * size); // the page emptied: back to the last one
        return;
      }
      info.textContent = total ? `${offset + 1}–${offset + count} of ${total}` : `no ${label}`;
      previous.disabled = offset === 0;
      next.disabled = offset + count >= total;
    },
  };
}

/** A search box: ``onSearch(text)`` runs 300 ms after typing stops (and at once on Enter). */
export function searchBox(id, placeholder, onSearch) {
  let timer = null;
  const input = h("input", {
    id, type: "search", name: id, placeholder, autocomplete: "off", spellcheck: "false", class: "search",
    "aria-label": placeholder,
  });
  const fire = () => {
    clearTimeout(timer);
    onSearch(input.value.trim());
  };
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(fire, 300);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") fire();
  });
  return input;
}
