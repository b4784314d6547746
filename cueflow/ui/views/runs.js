// Flow runs: newest first, filtered by flow and status, refreshed in place.

import { api, query } from "../api.js";
import { h, fill, badge } from "../dom.js";
import { absolute, timeCell } from "../format.js";
import { every, pageHeader, table, emptyRow, problem } from "./common.js";

const POLL_MS = 2000;
const COLUMNS = ["Run", "Flow", "Status", "Started", "Updated", "Finished"];
const STATUSES = [
  ["All", ""],
  ["Running", "running"],
  ["Waiting", "waiting"],
  ["Succeeded", "succeeded"],
  ["Failed", "failed"],
  ["Cancelled", "cancelled"],
];

/** The filters of a ``#/runs?flow=...&status=...`` address. */
export function runFilters(search) {
  const params = new URLSearchParams(search || "");
  return { flow: params.get("flow") || "", status: params.get("status") || "" };
}

export function runsView(main, { navigate }, search) {
  const filters = runFilters(search);
  const body = h("tbody", { "aria-live": "polite" });
  const banner = h("div", { class: "banner", role: "alert", hidden: true });
  const updated = h("span", { class: "muted" }, "connecting…");
  const flowPicker = h("select", { id: "runs-flow", "aria-label": "Flow" }, h("option", { value: "" }, "All flows"));
  const chips = h("div", { class: "chips", role: "group", "aria-label": "Filter by status" });
  const flowNames = new Map();
  let flowsLoaded = false;

  const show = () => navigate(`#/runs${query(filters)}`);

  function row(run) {
    const open = () => navigate(`#/runs/${run.id}`);
    return h("tr", {
      class: "clickable", tabindex: 0, dataset: { runId: run.id, status: run.status },
      onclick: open, onkeydown: (event) => { if (event.key === "Enter") open(); },
    },
    h("td", {}, h("a", { href: `#/runs/${run.id}`, class: "mono" }, run.id)),
    h("td", {}, flowNames.get(run.flow_id) ?? run.flow_id),
    h("td", {}, badge(run.status)),
    h("td", {}, timeCell(run.created_at)),
    h("td", {}, timeCell(run.updated_at)),
    h("td", {}, timeCell(run.finished_at)));
  }

  async function loadFlows() {
    const page = await api("GET", `/v1/flows${query({ limit: 100 })}`);
    flowsLoaded = true;
    for (const flow of page.flows) flowNames.set(flow.id, flow.name);
    if (filters.flow && !flowNames.has(filters.flow)) flowNames.set(filters.flow, filters.flow);
    fill(flowPicker, h("option", { value: "" }, "All flows"),
      [...flowNames].map(([id, name]) => h("option", { value: id, selected: id === filters.flow }, name)));
  }

  async function refresh() {
    try {
      if (!flowsLoaded) await loadFlows();
      const page = await api("GET", `/v1/flow-runs${query({ limit: 50, flow_id: filters.flow, status: filters.status })}`);
      problem(banner, null);
      fill(body, page.runs.length
        ? page.runs.map(row)
        : emptyRow(COLUMNS.length, "No runs here yet. Start one from a flow's page or with POST /v1/flows/{id}/runs."));
      updated.textContent = `${page.total} run${page.total === 1 ? "" : "s"} · updated ${absolute(new Date().toISOString()).slice(11)}`;
    } catch (failure) {
      problem(banner, failure);
      updated.textContent = "reconnecting…";
      throw failure;
    }
  }

  for (const [label, value] of STATUSES) {
    chips.appendChild(h("button", {
      type: "button", class: `chip${value === filters.status ? " active" : ""}`,
      "aria-pressed": String(value === filters.status), dataset: { status: value },
      onclick: () => {
        filters.status = value;
        show();
      },
    }, label));
  }
  flowPicker.addEventListener("change", () => {
    filters.flow = flowPicker.value;
    show();
  });

  fill(main,
    pageHeader("Runs", "Flow runs, newest first; refreshes every 2 seconds.", h("span", { class: "live" }, h("span", { class: "live-dot", "aria-hidden": "true" }), updated)),
    h("div", { class: "toolbar" }, chips, flowPicker),
    banner,
    table(COLUMNS, body, { class: "runs", id: "runs-table" }));
  return every(POLL_MS, refresh);
}
