// Workers and how recently each one sent a heartbeat.

import { api } from "../api.js";
import { h, fill, badge } from "../dom.js";
import { timeCell } from "../format.js";
import { every, pageHeader, table, emptyRow, problem } from "./common.js";

const COLUMNS = ["Worker", "Heartbeat", "Last heartbeat", "Handlers", "Registered"];

export function workersView(main) {
  const body = h("tbody");
  const banner = h("div", { class: "banner", role: "alert", hidden: true });
  const summary = h("p", { class: "muted" }, "Loading…");

  async function refresh() {
    try {
      const { workers } = await api("GET", "/v1/workers");
      problem(banner, null);
      const active = workers.filter((worker) => worker.heartbeat_status === "active").length;
      summary.textContent = `${workers.length} worker${workers.length === 1 ? "" : "s"} · ${active} active`;
      fill(body, workers.length
        ? workers.map((worker) => h("tr", { dataset: { workerId: worker.worker_id } },
          h("td", { class: "strong" }, worker.worker_id),
          h("td", {}, badge(worker.heartbeat_status), " ",
            h("span", { class: "muted small" }, `${worker.seconds_since_heartbeat} s silent`)),
          h("td", {}, timeCell(worker.last_heartbeat)),
          h("td", {}, worker.handlers && worker.handlers.length
            ? worker.handlers.map((handler) => h("span", { class: "tag" }, handler))
            : h("span", { class: "muted" }, "any task")),
          h("td", {}, timeCell(worker.registered_since))))
        : emptyRow(COLUMNS.length, "No workers yet. A worker appears here after its first POST /v1/worker/heartbeat."));
    } catch (failure) {
      problem(banner, failure);
      throw failure;
    }
  }

  fill(main, pageHeader("Workers", "Active: heard from recently · stale: silent for a while · dead: silent past the claim timeout.", summary),
    banner, table(COLUMNS, body, { class: "workers", id: "workers-table" }));
  return every(5000, refresh);
}
