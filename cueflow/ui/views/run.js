// One flow run: its graph with each step coloured by status, refreshed until the run ends;
// a step's output, error, attempts, timing and executions; Approve / Reject for a waiting
// wait step (they send its event); cancel.

import { api } from "../api.js";
import { h, fill, badge, jsonBlock } from "../dom.js";
import { absolute, relative, shortId } from "../format.js";
import { flowGraph } from "../graph.js";
import { every, pageHeader, problem, confirmAction } from "./common.js";

const POLL_MS = 1500;
/** Run statuses that will not change any more. */
export const RUN_ENDED = new Set(["succeeded", "failed", "cancelled"]);

/** The data an approval decision sends as the wait step's event (documented in docs/flows.md). */
export function decision(approved) {
  return { data: { approved } };
}

function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.map(([name, value]) =>
    h("div", {}, h("dt", {}, name), h("dd", {}, value ?? h("span", { class: "muted" }, "—")))));
}

function when(iso) {
  return iso ? h("time", { datetime: iso, title: absolute(iso) }, `${absolute(iso)} · ${relative(iso)}`) : null;
}

function duration(state) {
  if (!state.started_at) return null;
  const end = state.finished_at ? new Date(state.finished_at) : new Date();
  const seconds = Math.max(0, Math.round((end - new Date(state.started_at)) / 1000));
  const text = seconds < 120 ? `${seconds} s` : `${Math.round(seconds / 60)} min`;
  return state.finished_at ? text : `${text} so far`;
}

export function runView(main, { toast, navigate }, runId) {
  const banner = h("div", { class: "banner", role: "alert", hidden: true });
  const content = h("div", { class: "flow-run" }, h("p", { class: "muted" }, "Loading…"));
  let flow = null;
  let run = null;
  let selected = null;
  let busy = false;
  let shown = "";
  let stop = () => {};

  const definitions = () => {
    const known = new Map((flow ? flow.steps : []).map((step) => [step.id, step]));
    // the run's own steps, in its order, with the needs and events it started with (the flow
    // may have been edited since); the flow adds the rest of each step's definition
    return Object.entries(run.steps).map(([id, state]) => {
      const own = { id, needs: state.needs ?? [], ...(state.type ? { type: state.type } : {}), ...(state.event ? { event: state.event } : {}) };
      return { ...(known.get(id) ?? {}), ...own };
    });
  };

  async function act(label, call, done) {
    busy = true;
    // one decision per click: the buttons come back with the redraw below
    for (const button of content.querySelectorAll("button")) button.disabled = true;
    try {
      const answer = await call();
      toast(done(answer));
    } catch (failure) {
      toast(`${label} failed: ${failure.message}`, "error");
    } finally {
      busy = false;
      shown = "";
      await refresh().catch(() => {});
    }
  }

  function send(step, approved) {
    const path = `/v1/flow-runs/${encodeURIComponent(runId)}/events/${encodeURIComponent(step.event)}`;
    return act(approved ? "Approve" : "Reject", () => api("POST", path, decision(approved)),
      (answer) => answer.resumed.length
        ? `${approved ? "Approved" : "Rejected"}: ${answer.resumed.join(", ")}`
        : `Nothing was waiting for “${step.event}” any more`);
  }

  function waitActions(step) {
    return h("div", { class: "wait-actions", dataset: { step: step.id } },
      h("button", { type: "button", class: "button primary", "data-action": "approve", onclick: () => send(step, true) }, "Approve"),
      h("button", { type: "button", class: "button danger-text", "data-action": "reject", onclick: () => send(step, false) }, "Reject"));
  }

  async function cancel() {
    const sure = await confirmAction("Cancel this run?",
      "Its open steps are cancelled and nothing moves it afterwards. This cannot be undone.", "Cancel run");
    if (sure) await act("Cancel", () => api("POST", `/v1/flow-runs/${encodeURIComponent(runId)}/cancel`), () => `Cancelled run ${runId}`);
  }

  function waiting(steps) {
    return steps.filter((step) => step.type === "wait" && run.steps[step.id].status === "waiting");
  }

  function stepPanel(step) {
    if (!step) return h("p", { class: "muted" }, "Click a step in the graph to see its output, error, attempts and executions.");
    const state = run.steps[step.id];
    const executions = state.execution_ids.length
      ? h("ul", { class: "plain-list" }, state.execution_ids.map((id, index) =>
        h("li", {}, h("a", { class: "mono", href: `#/executions/${id}`, dataset: { executionId: id } }, shortId(id)),
          h("span", { class: "muted small" }, ` attempt ${index + 1}`))))
      : null;
    const items = Array.isArray(state.items) && state.items.length
      ? h("div", { class: "step-items" }, state.items.map((item) => h("span", { class: "tag" }, `#${item.item} `, item.status)))
      : null;
    return h("div", { id: "step-detail", dataset: { step: step.id, status: state.status } },
      h("h3", { class: "mono" }, step.id),
      step.type === "wait" && state.status === "waiting" && !RUN_ENDED.has(run.status) ? waitActions(step) : null,
      facts([
        ["Status", badge(state.status)],
        ["Kind", step.type === "wait" ? `wait for “${step.event ?? ""}”` : (step.transport || "worker")],
        ["Attempts", String(state.attempts)],
        ["Started", when(state.started_at)],
        ["Finished", when(state.finished_at)],
        ["Took", duration(state)],
        ["Items", items],
        ["Executions", executions],
      ]),
      h("h4", {}, "Output"),
      state.output === null || state.output === undefined ? h("p", { class: "muted" }, "No output.") : jsonBlock(state.output),
      state.error ? [h("h4", {}, "Error"), h("p", { class: "outcome bad step-error" }, state.error.reason ?? ""), jsonBlock(state.error)] : null);
  }

  function render() {
    const steps = definitions();
    const pick = (id) => {
      selected = id;
      render();
    };
    const ended = RUN_ENDED.has(run.status);
    const open = waiting(steps);
    const chosen = steps.find((step) => step.id === selected) ?? null;
    const edited = flow && new Date(flow.updated_at) > new Date(run.created_at);
    fill(content,
      pageHeader(flow ? flow.name : run.flow_id, `Run ${run.id}`,
        badge(run.status, "run-status"),
        ended ? null : h("button", { type: "button", class: "button danger-text", "data-action": "cancel-run", onclick: cancel }, "Cancel run"),
        h("a", { class: "button ghost", href: `#/runs?flow=${encodeURIComponent(run.flow_id)}` }, "Runs of this flow")),
      open.length && !ended
        ? h("section", { class: "card approvals", id: "approvals" },
          h("h2", {}, "Waiting for a decision"),
          open.map((step) => h("div", { class: "approval", dataset: { step: step.id } },
            h("span", {}, h("strong", { class: "mono" }, step.id), h("span", { class: "muted" }, ` waits for “${step.event}”`)),
            waitActions(step))))
        : null,
      h("section", { class: "card graph-card" }, h("h2", {}, "Graph"),
        edited ? h("p", { class: "muted small", id: "graph-note" },
          "The flow was edited after this run started: this run keeps the steps it started with.") : null,
        h("div", { class: "graph-scroll", id: "run-graph" }, flowGraph(steps, run.steps, selected, pick))),
      h("div", { class: "grid" },
        h("section", { class: "card" }, h("h2", {}, "Step"), stepPanel(chosen)),
        h("section", { class: "card" }, h("h2", {}, "Run"),
          facts([
            ["Status", badge(run.status)],
            ["Flow", flow ? h("a", { href: `#/flows/${encodeURIComponent(flow.id)}` }, flow.name) : run.flow_id],
            ["Started", when(run.created_at)],
            ["Updated", when(run.updated_at)],
            ["Finished", when(run.finished_at)],
            ["Idempotency key", run.idempotency_key],
          ]),
          h("h4", {}, "Input"), jsonBlock(run.input))));
  }

  async function refresh() {
    if (busy) return;
    try {
      const answer = await api("GET", `/v1/flow-runs/${encodeURIComponent(runId)}`);
      if (!flow) flow = await api("GET", `/v1/flows/${encodeURIComponent(answer.flow_id)}`).catch(() => null);
      problem(banner, null);
      // redraw only on a change, so focus and scroll stay put while nothing happens
      const text = JSON.stringify(answer);
      run = answer;
      if (text !== shown) render();
      shown = text;
      if (RUN_ENDED.has(run.status)) stop();
    } catch (failure) {
      problem(banner, failure);
      if (failure.status === 404) {
        stop();
        fill(content, h("p", { class: "muted" }, "This run does not exist (or its flow was deleted)."));
      }
      throw failure;
    }
  }

  fill(main, banner, content);
  stop = every(POLL_MS, refresh);
  return () => stop();
}
