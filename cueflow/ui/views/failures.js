// Failed and missed executions, and alerts, with replay.

import { api, query } from "../api.js";
import { h, fill, badge } from "../dom.js";
import { timeCell, shortId } from "../format.js";
import { every, pageHeader, table, emptyRow, problem, loadCueNames, cueName } from "./common.js";

const FAILED_COLUMNS = ["Execution", "Cue", "Status", "Attempts", "Error", "Scheduled", ""];
const ALERT_COLUMNS = ["When", "Type", "Severity", "Message", "Cue", "Execution", ""];

export function failuresView(main, { toast, navigate }) {
  const failedBody = h("tbody");
  const alertBody = h("tbody");
  const banner = h("div", { class: "banner", role: "alert", hidden: true });

  async function replay(executionId) {
    try {
      const run = await api("POST", `/v1/executions/${executionId}/replay`);
      toast(`Replayed: execution ${run.id.slice(0, 8)}`);
      navigate(`#/executions/${run.id}`);
    } catch (failure) {
      toast(`Replay failed: ${failure.message}`, "error");
    }
  }

  const replayButton = (executionId) => h("button", {
    type: "button", class: "button small", "data-action": "replay",
    onclick: (event) => {
      event.stopPropagation();
      replay(executionId);
    },
  }, "Replay");

  async function refresh() {
    try {
      const [failed, alerts] = await Promise.all([
        api("GET", `/v1/executions${query({ status__in: "failed,missed", limit: 50 })}`),
        api("GET", `/v1/alerts${query({ limit: 50 })}`),
        loadCueNames(),
      ]);
      problem(banner, null);
      fill(failedBody, failed.executions.length
        ? failed.executions.map((execution) => h("tr", { dataset: { executionId: execution.id } },
          h("td", {}, h("a", { class: "mono", href: `#/executions/${execution.id}` }, shortId(execution.id))),
          h("td", {}, cueName(execution.cue_id)),
          h("td", {}, badge(execution.status)),
          h("td", { class: "numeric" }, String(execution.attempts)),
          h("td", { class: "wide-cell" }, h("span", { class: "clip", title: execution.error_message ?? "" },
            execution.error_message ?? (execution.outcome && execution.outcome.error) ?? "—")),
          h("td", {}, timeCell(execution.scheduled_for)),
          h("td", {}, replayButton(execution.id))))
        : emptyRow(FAILED_COLUMNS.length, "Nothing has failed."));
      fill(alertBody, alerts.alerts.length
        ? alerts.alerts.map((alert) => h("tr", { dataset: { alertId: alert.id } },
          h("td", {}, timeCell(alert.created_at)),
          h("td", {}, h("span", { class: "tag" }, alert.alert_type.replace(/_/g, " "))),
          h("td", {}, badge(alert.severity)),
          h("td", { class: "wide-cell" }, alert.message),
          h("td", {}, alert.cue_id ? cueName(alert.cue_id) : "—"),
          h("td", {}, alert.execution_id ? h("a", { class: "mono", href: `#/executions/${alert.execution_id}` }, shortId(alert.execution_id)) : "—"),
          h("td", {}, alert.execution_id ? replayButton(alert.execution_id) : null)))
        : emptyRow(ALERT_COLUMNS.length, "No alerts."));
    } catch (failure) {
      problem(banner, failure);
      throw failure;
    }
  }

  fill(main, pageHeader("Failures & alerts", "Failed and missed executions, newest first, and the alerts they raised."),
    banner,
    h("h2", { class: "section-title" }, "Failed executions"),
    table(FAILED_COLUMNS, failedBody, { id: "failed-table" }),
    h("h2", { class: "section-title" }, "Alerts"),
    table(ALERT_COLUMNS, alertBody, { id: "alerts-table" }));
  return every(5000, refresh);
}
