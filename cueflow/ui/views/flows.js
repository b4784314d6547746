// Flows: the account's flows, one flow's definition (its graph, steps and their run controls),
// and starting a run of it with a JSON input.

import { api, query } from "../api.js";
import { h, fill, jsonBlock } from "../dom.js";
import { timeCell } from "../format.js";
import { flowGraph } from "../graph.js";
import { controlTags } from "../controls.js";
import { every, pageHeader, table, emptyRow, problem } from "./common.js";

const COLUMNS = ["Flow", "Steps", "Waits", "Created", "Updated", ""];
const STEP_COLUMNS = ["Step", "Kind", "Needs", "When", "Retry", "Timeout", "Controls"];

export function flowsView(main) {
  const summary = h("p", { class: "muted" }, "Loading…");
  const banner = h("div", { class: "banner", role: "alert", hidden: true });
  const body = h("tbody");

  function row(flow) {
    const waits = flow.steps.filter((step) => step.type === "wait").length;
    return h("tr", { dataset: { flowId: flow.id, flowName: flow.name } },
      h("td", {},
        h("a", { class: "strong", href: `#/flows/${encodeURIComponent(flow.id)}` }, flow.name),
        flow.description ? h("div", { class: "muted small" }, flow.description) : null),
      h("td", { class: "numeric" }, String(flow.steps.length)),
      h("td", { class: "numeric" }, String(waits)),
      h("td", {}, timeCell(flow.created_at)),
      h("td", {}, timeCell(flow.updated_at)),
      h("td", {}, h("div", { class: "row-actions" },
        h("a", { class: "button small", href: `#/runs${query({ flow: flow.id })}` }, "Runs"),
        h("a", { class: "button small primary", href: `#/flows/${encodeURIComponent(flow.id)}`, "data-action": "open" }, "Start a run"))));
  }

  async function refresh() {
    try {
      const page = await api("GET", `/v1/flows${query({ limit: 100 })}`);
      problem(banner, null);
      const shown = page.total > page.flows.length ? ` (newest ${page.flows.length} shown)` : "";
      summary.textContent = `${page.total} flow${page.total === 1 ? "" : "s"}${shown}`;
      fill(body, page.flows.length
        ? page.flows.map(row)
        : emptyRow(COLUMNS.length, "No flows yet. Define one with POST /v1/flows (see docs/flows.md)."));
    } catch (failure) {
      problem(banner, failure);
      throw failure;
    }
  }

  fill(main, pageHeader("Flows", "Multi-step workflows: each step runs as an execution.", summary),
    banner, table(COLUMNS, body, { class: "flows", id: "flows-table" }));
  return every(5000, refresh);
}

function stepRow(step) {
  const kind = step.type === "wait"
    ? `wait for “${step.event}”`
    : [step.transport || "worker", step.payload && typeof step.payload.task === "string" ? `task ${step.payload.task}` : null,
      step.for_each ? `for each item of ${step.for_each}` : null].filter(Boolean).join(" · ");
  const retry = step.retry && step.retry.max_attempts > 1 ? `${step.retry.max_attempts} attempts` : "—";
  return h("tr", { dataset: { step: step.id } },
    h("td", { class: "strong mono" }, step.id),
    h("td", {}, kind),
    h("td", {}, (step.needs || []).length ? step.needs.map((need) => h("span", { class: "tag" }, need)) : h("span", { class: "muted" }, "—")),
    h("td", {}, step.when || "success"),
    h("td", {}, retry),
    h("td", {}, step.timeout_seconds ? `${step.timeout_seconds} s` : "—"),
    h("td", { class: "step-controls" }, step.type === "wait" ? h("span", { class: "muted" }, "—") : controlTags(step)));
}

export function flowView(main, { toast, navigate }, flowId) {
  const banner = h("div", { class: "banner", role: "alert", hidden: true });
  const content = h("div", {}, h("p", { class: "muted" }, "Loading…"));

  function startForm(flow) {
    const input = h("textarea", {
      id: "run-input", name: "input", rows: 6, spellcheck: "false", class: "mono",
      "aria-describedby": "run-input-help",
    });
    input.value = "{}";
    const key = h("input", { id: "run-key", name: "idempotency_key", autocomplete: "off", placeholder: "optional" });
    const error = h("p", { class: "form-error", role: "alert" });
    const submit = h("button", { type: "submit", class: "button primary" }, "Start run");
    const form = h("form", { class: "start-run", id: "start-run" },
      h("label", { for: "run-input" }, "Input (JSON)"),
      input,
      h("p", { class: "muted small", id: "run-input-help" },
        flow.input_schema ? "Checked against the flow's input schema below." : "Any JSON value; steps read it as flow.input."),
      h("label", { for: "run-key" }, "Idempotency key"),
      key, error, h("div", {}, submit));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      let value;
      try {
        value = JSON.parse(input.value || "null");
      } catch (failure) {
        error.textContent = `The input is not valid JSON: ${failure.message}`;
        return;
      }
      error.textContent = "";
      submit.disabled = true;
      try {
        const body = { input: value };
        if (key.value.trim()) body.idempotency_key = key.value.trim();
        const run = await api("POST", `/v1/flows/${encodeURIComponent(flowId)}/runs`, body);
        toast(`Started ${flow.name}: run ${run.id}`);
        navigate(`#/runs/${run.id}`);
      } catch (failure) {
        error.textContent = failure.message;
        submit.disabled = false;
      }
    });
    return form;
  }

  async function load() {
    try {
      const flow = await api("GET", `/v1/flows/${encodeURIComponent(flowId)}`);
      problem(banner, null);
      fill(content,
        pageHeader(flow.name, flow.description || `Flow ${flow.id}`,
          h("a", { class: "button", href: `#/runs${query({ flow: flow.id })}` }, "Runs of this flow"),
          h("a", { class: "button ghost", href: "#/flows" }, "All flows")),
        h("section", { class: "card graph-card" }, h("h2", {}, "Graph"),
          h("div", { class: "graph-scroll" }, flowGraph(flow.steps))),
        h("div", { class: "grid" },
          h("section", { class: "card" }, h("h2", {}, "Start a run"), startForm(flow)),
          h("section", { class: "card" }, h("h2", {}, "Input schema"),
            flow.input_schema ? jsonBlock(flow.input_schema) : h("p", { class: "muted" }, "None: any input is accepted."))),
        h("h2", { class: "section-title" }, "Steps"),
        table(STEP_COLUMNS, h("tbody", {}, flow.steps.map(stepRow)), { id: "steps-table" }));
    } catch (failure) {
      problem(banner, failure);
      if (failure.status === 404) fill(content, h("p", { class: "muted" }, "This flow does not exist (or was deleted)."));
    }
  }

  fill(main, banner, content);
  load();
  return () => {};
}
