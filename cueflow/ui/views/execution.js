// One execution: its facts, its timeline (fired, claimed, heartbeats, attempts, retries,
// outcome), its priority and what it waits for, its outcome and evidence, its cue's run
// controls, and replay.

import { api } from "../api.js";
import { h, fill, badge, jsonBlock, safeLink } from "../dom.js";
import { absolute, relative } from "../format.js";
import { controlFacts, waitingText } from "../controls.js";
import { every, pageHeader, problem, REPLAYABLE, FINISHED } from "./common.js";

const TRIGGERS = { manual_fire: "fired by hand", replay: "replayed", misfire: "a missed run caught up" };

/** The timeline's events, oldest first: [time, title, detail, kind]. */
export function timeline(execution) {
  const events = [];
  const add = (time, title, detail, kind = "") => {
    if (time) events.push({ time, title, detail, kind });
  };
  const trigger = TRIGGERS[execution.triggered_by] ?? "on schedule";
  add(execution.created_at, "Fired", `${trigger}, scheduled for ${absolute(execution.scheduled_for)}`, "fired");
  if (execution.claimed_by_worker) {
    add(execution.claimed_at, `Claimed by ${execution.claimed_by_worker}`, "lease taken", "claimed");
  } else if (execution.started_at) {
    add(execution.started_at, "Delivery started", null, "claimed");
  }
  if (execution.last_heartbeat_at) {
    add(execution.last_heartbeat_at, "Last heartbeat", execution.claimed_by_worker ? `from ${execution.claimed_by_worker}` : null, "heartbeat");
  }
  if (execution.last_attempt_at) {
    const parts = [`attempt ${execution.attempts}`];
    if (execution.http_status) parts.push(`HTTP ${execution.http_status}`);
    if (execution.error_message) parts.push(execution.error_message);
    add(execution.last_attempt_at, "Last attempt", parts.join(" · "), execution.error_message ? "bad" : "");
  }
  if (execution.next_retry && !FINISHED.has(execution.status)) {
    add(execution.next_retry, "Retry scheduled", `attempt ${execution.attempts + 1}`, "retry");
  }
  if (execution.delivered_at) add(execution.delivered_at, "Delivered", null, "ok");
  const outcome = execution.outcome;
  if (outcome) {
    add(outcome.recorded_at, outcome.success ? "Outcome: success" : "Outcome: failure",
      (outcome.success ? outcome.result : outcome.error) || null, outcome.success ? "ok" : "bad");
  }
  if (execution.status === "failed" && !outcome) add(execution.updated_at, "Failed", execution.error_message, "bad");
  if (execution.status === "missed") add(execution.updated_at, "Missed", "nobody claimed it in time", "bad");
  return events.sort((a, b) => new Date(a.time) - new Date(b.time));
}

function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.map(([name, value]) =>
    h("div", {}, h("dt", {}, name), h("dd", {}, value ?? h("span", { class: "muted" }, "—")))));
}

function evidenceSection(evidence) {
  if (!evidence) return h("p", { class: "muted" }, "No evidence reported.");
  const pairs = [];
  for (const [name, value] of Object.entries(evidence)) {
    let shown = value;
    if (name === "result_url") shown = safeLink(String(value));
    else if (typeof value === "object" && value !== null) shown = jsonBlock(value);
    else shown = String(value);
    pairs.push([name.replace(/_/g, " "), shown]);
  }
  return facts(pairs);
}

export function executionView(main, { toast, navigate }, executionId) {
  const banner = h("div", { class: "banner", role: "alert", hidden: true });
  const content = h("div", { class: "execution" }, h("p", { class: "muted" }, "Loading…"));
  let cue = null;
  let stop = () => {};

  async function replay() {
    try {
      const run = await api("POST", `/v1/executions/${executionId}/replay`);
      toast(`Replayed: execution ${run.id.slice(0, 8)}`);
      navigate(`#/executions/${run.id}`);
    } catch (failure) {
      toast(`Replay failed: ${failure.message}`, "error");
    }
  }

  function render(execution) {
    const title = cue ? cue.name : execution.cue_id;
    const outcome = execution.outcome;
    fill(content,
      pageHeader(title, `Execution ${execution.id}`,
        REPLAYABLE.has(execution.status)
          ? h("button", { type: "button", class: "button primary", "data-action": "replay", onclick: replay }, "Replay")
          : null,
        h("a", { class: "button ghost", href: "#/executions" }, "Back to feed")),
      h("div", { class: "grid" },
        h("section", { class: "card" },
          h("h2", {}, "Summary"),
          facts([
            ["Status", badge(execution.status)],
            ["Waiting for", waitingText(execution.waiting_for)?.replace(/^waiting: /, "")],
            ["Priority", String(execution.priority ?? 0)],
            ["Attempts", String(execution.attempts)],
            ["Worker", execution.claimed_by_worker],
            ["Transport", cue ? cue.transport : null],
            ["Triggered", TRIGGERS[execution.triggered_by] ?? "on schedule"],
            ["Scheduled for", absolute(execution.scheduled_for)],
            ["HTTP status", execution.http_status === null ? null : String(execution.http_status)],
            ["Outcome state", execution.outcome_state ? execution.outcome_state.replace(/_/g, " ") : null],
            ["Error", execution.error_message],
          ])),
        h("section", { class: "card" },
          h("h2", {}, "Timeline"),
          h("ol", { class: "timeline", id: "timeline" }, timeline(execution).map((event) =>
            h("li", { class: event.kind, dataset: { event: event.title } },
              h("div", { class: "timeline-title" }, event.title),
              event.detail ? h("div", { class: "timeline-detail" }, event.detail) : null,
              h("time", { datetime: event.time, title: absolute(event.time) }, `${absolute(event.time)} · ${relative(event.time)}`)))))),
      h("div", { class: "grid" },
        h("section", { class: "card" },
          h("h2", {}, "Outcome"),
          outcome
            ? facts([
              ["Reported", outcome.success ? h("span", { class: "outcome ok" }, "✓ success") : h("span", { class: "outcome bad" }, "✗ failure")],
              ["Result", outcome.result],
              ["Error", outcome.error],
              ["Recorded", absolute(outcome.recorded_at)],
              ["Metadata", outcome.metadata ? jsonBlock(outcome.metadata) : null],
            ])
            : h("p", { class: "muted" }, "No outcome reported yet.")),
        h("section", { class: "card" }, h("h2", {}, "Evidence"), evidenceSection(execution.evidence))),
      cue ? h("div", { class: "grid" },
        h("section", { class: "card" }, h("h2", {}, "Payload"), jsonBlock(cue.payload)),
        h("section", { class: "card", id: "run-controls" }, h("h2", {}, "Run controls"),
          facts(controlFacts(cue).map(([name, text]) => [name, text])))) : null);
  }

  async function refresh() {
    try {
      const execution = await api("GET", `/v1/executions/${executionId}`);
      if (!cue) cue = await api("GET", `/v1/cues/${execution.cue_id}?execution_limit=1`).catch(() => null);
      problem(banner, null);
      render(execution);
      if (FINISHED.has(execution.status) && execution.outcome) stop();
    } catch (failure) {
      problem(banner, failure);
      if (failure.status === 404) {
        stop();
        fill(content, h("p", { class: "muted" }, "This execution does not exist (or its cue was deleted)."));
      }
      throw failure;
    }
  }

  fill(main, banner, content);
  stop = every(2000, refresh);
  return () => stop();
}
