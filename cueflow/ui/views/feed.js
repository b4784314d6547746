// The live execution feed: GET /v1/executions a page at a time, redrawn in place when the
// server pushes a change (live.js), or polled every 1.5 s while the stream is down.

import { api, query } from "../api.js";
import { h, fill, badge, safeLink } from "../dom.js";
import { absolute, timeCell, shortId } from "../format.js";
import { waitingNote } from "../controls.js";
import { pageHeader, table, emptyRow, problem, loadCueNames, cueName } from "./common.js";
import { pager } from "./pager.js";
import { liveUpdates, throttled } from "../live.js";

const POLL_MS = 1500;
const PAGE = 50;
const COLUMNS = ["Execution", "Cue", "Status", "Priority", "Attempts", "Worker", "Outcome", "Evidence", "Scheduled", "Updated"];
const FILTERS = [
  ["All", ""],
  ["In flight", "pending,delivering,retrying,retry_ready"],
  ["Succeeded", "success"],
  ["Failed", "failed,missed"],
];

/** The outcome cell: reported success or failure with its result or error text. */
export function outcomeSummary(execution) {
  const outcome = execution.outcome;
  if (!outcome) return h("span", { class: "muted" }, execution.outcome_state ? execution.outcome_state.replace(/_/g, " ") : "—");
  const text = outcome.success ? outcome.result : outcome.error;
  return h("span", { class: outcome.success ? "outcome ok" : "outcome bad", title: text ?? "" },
    outcome.success ? "✓ " : "✗ ", text || (outcome.success ? "success" : "failure"));
}

/** The evidence cell: its summary, external id or result link. */
export function evidenceSummary(execution) {
  const evidence = execution.evidence;
  if (!evidence) return h("span", { class: "muted" }, "—");
  const parts = [];
  if (evidence.summary) parts.push(h("span", { class: "clip", title: evidence.summary }, evidence.summary));
  if (evidence.external_id) parts.push(h("span", { class: "tag" }, evidence.external_id));
  if (evidence.result_url) parts.push(safeLink(evidence.result_url, "result"));
  if (Array.isArray(evidence.artifacts) && evidence.artifacts.length) {
    parts.push(h("span", { class: "muted small" }, `${evidence.artifacts.length} artifact${evidence.artifacts.length === 1 ? "" : "s"}`));
  }
  return parts.length ? h("span", { class: "evidence" }, parts) : h("span", { class: "muted" }, "—");
}

export function feedView(main, { navigate }, cueId) {
  const body = h("tbody", { "aria-live": "polite" });
  const banner = h("div", { class: "banner", role: "alert", hidden: true });
  const pulse = h("span", { class: "live-dot", "aria-hidden": "true" });
  const updated = h("span", { class: "muted" }, "connecting…");
  const filterBar = h("div", { class: "chips", role: "group", "aria-label": "Filter by status" });
  let statuses = "";
  const seen = new Set();
  let first = true;
  let namesLoadedAt = 0;
  const pages = pager(PAGE, () => refresh().catch(() => {}), "executions");

  function row(execution) {
    const fresh = !first && !seen.has(execution.id);
    seen.add(execution.id);
    const open = () => navigate(`#/executions/${execution.id}`);
    return h("tr", {
      class: `clickable${fresh ? " fresh" : ""}`, tabindex: 0,
      dataset: { executionId: execution.id, cueId: execution.cue_id, status: execution.status },
      onclick: open, onkeydown: (event) => { if (event.key === "Enter") open(); },
    },
    h("td", {}, h("a", { href: `#/executions/${execution.id}`, class: "mono" }, shortId(execution.id))),
    h("td", {}, cueName(execution.cue_id)),
    h("td", { class: "execution-status" }, badge(execution.status), waitingNote(execution)),
    h("td", { class: "numeric priority" }, String(execution.priority ?? 0)),
    h("td", { class: "numeric" }, String(execution.attempts)),
    h("td", {}, execution.claimed_by_worker ?? h("span", { class: "muted" }, "—")),
    h("td", { class: "wide-cell" }, outcomeSummary(execution)),
    h("td", { class: "wide-cell" }, evidenceSummary(execution)),
    h("td", {}, timeCell(execution.scheduled_for)),
    h("td", {}, timeCell(execution.updated_at)));
  }

  async function refresh() {
    try {
      const page = await api("GET", `/v1/executions${query({ limit: PAGE, offset: pages.offset(), status__in: statuses, cue_id: cueId })}`);
      const unnamed = page.executions.some((execution) => cueName(execution.cue_id) === execution.cue_id);
      if (unnamed && Date.now() - namesLoadedAt > 10000) {
        namesLoadedAt = Date.now();
        await loadCueNames();
      }
      problem(banner, null);
      fill(body, page.executions.length
        ? page.executions.map(row)
        : emptyRow(COLUMNS.length, "No executions yet. They appear here as soon as a cue fires."));
      first = false;
      pages.show(page.total, page.executions.length);
      if (cueId) header.querySelector("h1").textContent = `Live feed · ${cueName(cueId)}`;
      updated.textContent = `${page.total} execution${page.total === 1 ? "" : "s"} · updated ${absolute(new Date().toISOString()).slice(11)}`;
    } catch (failure) {
      problem(banner, failure);
      updated.textContent = "reconnecting…";
      throw failure;
    }
  }

  for (const [label, value] of FILTERS) {
    filterBar.appendChild(h("button", {
      type: "button", class: `chip${value === statuses ? " active" : ""}`, "aria-pressed": String(value === statuses),
      onclick: (event) => {
        statuses = value;
        pages.reset();
        for (const chip of filterBar.children) {
          chip.classList.toggle("active", chip === event.currentTarget);
          chip.setAttribute("aria-pressed", String(chip === event.currentTarget));
        }
        refresh().catch(() => {});
      },
    }, label));
  }

  const title = cueId ? `Live feed · ${cueName(cueId)}` : "Live feed";
  const mode = h("span", { class: "live-mode muted small", "data-mode": "connecting" });
  const header = pageHeader(title, "Newest first; changes are pushed by the server as they happen.",
    h("span", { class: "live" }, pulse, updated, mode));
  fill(main, header, h("div", { class: "toolbar" }, filterBar,
    cueId ? h("a", { href: "#/executions", class: "button ghost small" }, "Show all cues") : null, pages.node),
  banner, table(COLUMNS, body, { class: "feed", id: "feed-table" }));
  const changed = throttled(300, refresh);
  refresh().catch(() => {});
  const stop = liveUpdates(() => changed(), {
    pollMs: POLL_MS,
    onMode: (now) => {
      mode.dataset.mode = now;
      mode.textContent = now === "live" ? " · live" : " · polling (stream unavailable)";
    },
  });
  return () => {
    stop();
    changed.cancel();
  };
}
