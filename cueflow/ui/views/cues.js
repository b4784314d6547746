// Cues: status, schedule in words and cron, next and last run, transport, run controls;
// search by name, page through them, create and edit, pause, resume, fire now, edit the run
// controls and delete. Redrawn when the server pushes a change (live.js).

import { api, query } from "../api.js";
import { h, fill, badge } from "../dom.js";
import { describeSchedule } from "../cron.js";
import { timeCell } from "../format.js";
import { controlTags } from "../controls.js";
import { editControls } from "./controls_form.js";
import { editCue } from "./cue_form.js";
import { pager, searchBox } from "./pager.js";
import { liveUpdates, throttled } from "../live.js";
import { pageHeader, table, emptyRow, problem, confirmAction } from "./common.js";

const PAGE = 50;

const COLUMNS = ["Cue", "Status", "Schedule", "Next run", "Last run", "Transport", "Controls", "Runs", ""];

export function cuesView(main, { toast }) {
  const summary = h("p", { class: "muted" }, "Loading…");
  const banner = h("div", { class: "banner", role: "alert", hidden: true });
  const body = h("tbody");
  let busy = false;
  let search = "";
  const pages = pager(PAGE, () => refresh().catch(() => {}), "cues");
  const searchInput = searchBox("cue-search", "Search cues by name", (text) => {
    search = text;
    pages.reset();
    refresh().catch(() => {});
  });

  async function edit(cue) {
    busy = true;
    try {
      const saved = await editCue(cue);
      if (saved) toast(cue ? `Saved ${saved.name}` : `Created ${saved.name}`);
    } finally {
      busy = false;
      await refresh();
    }
  }

  async function act(cue, label, call, done) {
    busy = true;
    try {
      const result = await call();
      toast(done(result));
    } catch (failure) {
      toast(`${label} failed: ${failure.message}`, "error");
    } finally {
      busy = false;
      await refresh();
    }
  }

  function actions(cue) {
    const paused = cue.status === "paused";
    return h("div", { class: "row-actions" },
      paused
        ? h("button", {
          type: "button", class: "button small", "data-action": "resume",
          onclick: () => act(cue, "Resume", () => api("PATCH", `/v1/cues/${cue.id}`, { status: "active" }), () => `Resumed ${cue.name}`),
        }, "Resume")
        : h("button", {
          type: "button", class: "button small", "data-action": "pause",
          disabled: cue.status !== "active",
          onclick: () => act(cue, "Pause", () => api("PATCH", `/v1/cues/${cue.id}`, { status: "paused" }), () => `Paused ${cue.name}`),
        }, "Pause"),
      h("button", { type: "button", class: "button small", "data-action": "edit", onclick: () => edit(cue) }, "Edit"),
      h("button", {
        type: "button", class: "button small", "data-action": "controls",
        onclick: async () => {
          busy = true;
          try {
            const changed = await editControls(cue);
            if (changed) toast(`Saved the run controls of ${cue.name}`);
          } finally {
            busy = false;
            await refresh();
          }
        },
      }, "Controls"),
      h("button", {
        type: "button", class: "button small", "data-action": "fire",
        onclick: () => act(cue, "Fire", () => api("POST", `/v1/cues/${cue.id}/fire`), (run) => `Fired ${cue.name}: execution ${run.id.slice(0, 8)}`),
      }, "Fire now"),
      h("button", {
        type: "button", class: "button small danger-text", "data-action": "delete",
        onclick: async () => {
          const sure = await confirmAction(`Delete “${cue.name}”?`,
            "The cue and its whole execution history are removed. This cannot be undone.", "Delete cue");
          if (sure) await act(cue, "Delete", () => api("DELETE", `/v1/cues/${cue.id}`), () => `Deleted ${cue.name}`);
        },
      }, "Delete"));
  }

  function row(cue) {
    const schedule = describeSchedule(cue.schedule);
    return h("tr", { dataset: { cueId: cue.id, cueName: cue.name } },
      h("td", {},
        h("a", { class: "strong", href: `#/executions?cue=${encodeURIComponent(cue.id)}`, title: "Executions of this cue" }, cue.name),
        cue.description ? h("div", { class: "muted small" }, cue.description) : null),
      h("td", { class: "cue-status" }, badge(cue.status)),
      h("td", {},
        h("div", { class: "schedule-words" }, schedule.words),
        h("code", { class: "schedule-detail" }, schedule.detail)),
      h("td", {}, cue.status === "active" ? timeCell(cue.next_run) : h("span", { class: "muted" }, "—")),
      h("td", {}, timeCell(cue.last_run)),
      h("td", {}, h("span", { class: "tag" }, cue.transport)),
      h("td", { class: "cue-controls" }, controlTags(cue)),
      h("td", { class: "numeric" }, String(cue.run_count)),
      h("td", {}, actions(cue)));
  }

  async function refresh() {
    if (busy) return;
    try {
      const page = await api("GET", `/v1/cues${query({ limit: PAGE, offset: pages.offset(), name: search })}`);
      problem(banner, null);
      const matching = search ? ` matching “${search}”` : "";
      summary.textContent = `${page.total} cue${page.total === 1 ? "" : "s"}${matching}`;
      pages.show(page.total, page.cues.length);
      fill(body, page.cues.length
        ? page.cues.map(row)
        : emptyRow(COLUMNS.length, search ? "No cue matches this search." : "No cues yet. Create one with “New cue”, POST /v1/cues, the CLI or a client library."));
    } catch (failure) {
      problem(banner, failure);
      throw failure;
    }
  }

  const create = h("button", { type: "button", class: "button primary", "data-action": "new-cue", onclick: () => edit(null) }, "New cue");
  fill(main,
    pageHeader("Cues", null, summary, create),
    h("div", { class: "toolbar" }, searchInput, pages.node),
    banner,
    table(COLUMNS, body, { class: "cues", id: "cues-table" }));
  const changed = throttled(1000, refresh);
  refresh().catch(() => {});
  const stop = liveUpdates((event) => {
    if (!busy && (!event || event.name === "cues" || event.name === "executions")) changed();
  }, { pollMs: 5000 });
  return () => {
    stop();
    changed.cancel();
  };
}
