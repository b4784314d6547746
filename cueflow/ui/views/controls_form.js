// The run-controls editor of a cue (docs/run-controls.md): a dialog whose form sets the cue's
// overlap policy, priority, concurrency and rate limits (with their keys) and required payload
// keys in one PATCH. An empty limit removes it ({} on the wire).

import { api } from "../api.js";
import { h } from "../dom.js";

const POLICIES = [
  ["allow", "Allow: runs overlap"],
  ["skip", "Skip a fire while a run is under way"],
  ["buffer_one", "Queue one fire while a run is under way"],
  ["cancel_other", "Cancel the running one"],
];

/** A labelled input with an optional help line. */
export function field(id, label, input, help) {
  return h("div", { class: "form-field" }, h("label", { for: id }, label), input,
    help ? h("p", { class: "muted small" }, help) : null);
}

function numberInput(id, value, attrs = {}) {
  return h("input", { id, name: id, type: "number", step: 1, value: value ?? "", ...attrs });
}

function textInput(id, value, placeholder) {
  return h("input", { id, name: id, autocomplete: "off", spellcheck: "false", value: value ?? "", placeholder });
}

/** The PATCH body of the form's values (throws an Error naming a bad field). */
export function controlsPatch(values) {
  const whole = (text, name) => {
    if (!/^-?\d+$/.test(text)) throw new Error(`${name} must be a whole number`);
    return Number(text);
  };
  const body = { overlap_policy: values.overlap, priority: whole(values.priority || "0", "Priority") };
  body.concurrency = values.concurrencyLimit
    ? { limit: whole(values.concurrencyLimit, "Concurrency limit"), key: values.concurrencyKey || null }
    : {};
  if (values.rateLimit || values.ratePeriod) {
    if (!values.rateLimit || !values.ratePeriod) throw new Error("A rate limit needs both a limit and a period");
    body.rate_limit = { limit: whole(values.rateLimit, "Rate limit"), period_seconds: whole(values.ratePeriod, "Period"), key: values.rateKey || null };
  } else {
    body.rate_limit = {};
  }
  body.required_payload_keys = values.requiredKeys.split(",").map((key) => key.trim()).filter(Boolean);
  return body;
}

/**
 * The run-control inputs of ``cue`` (null: a new cue's defaults): ``nodes`` to place in a
 * form, ``patch()`` their PATCH body (throws an Error naming a bad field), ``focus`` the
 * first input worth focusing.
 */
export function controlFields(cue) {
  const overlap = h("select", { id: "control-overlap", name: "overlap" },
    POLICIES.map(([value, label]) => h("option", { value, selected: value === (cue?.overlap_policy || "allow") }, label)));
  const priority = numberInput("control-priority", cue?.priority ?? 0, { min: -1000, max: 1000 });
  const concurrencyLimit = numberInput("control-concurrency-limit", cue?.concurrency?.limit, { min: 1, placeholder: "no limit" });
  const concurrencyKey = textInput("control-concurrency-key", cue?.concurrency?.key, "this cue only");
  const rateLimit = numberInput("control-rate-limit", cue?.rate_limit?.limit, { min: 1, placeholder: "no limit" });
  const ratePeriod = numberInput("control-rate-period", cue?.rate_limit?.period_seconds, { min: 1, placeholder: "seconds" });
  const rateKey = textInput("control-rate-key", cue?.rate_limit?.key, "this cue only");
  const requiredKeys = textInput("control-required-keys", (cue?.required_payload_keys || []).join(", "), "none");
  return {
    focus: priority,
    nodes: [
      field("control-overlap", "Overlap policy", overlap),
      field("control-priority", "Priority", priority, "-1000 to 1000; higher is claimed and delivered first."),
      h("div", { class: "form-pair" },
        field("control-concurrency-limit", "Concurrency limit", concurrencyLimit),
        field("control-concurrency-key", "Concurrency key", concurrencyKey)),
      h("div", { class: "form-pair" },
        field("control-rate-limit", "Rate limit", rateLimit),
        field("control-rate-period", "Per (seconds)", ratePeriod),
        field("control-rate-key", "Rate key", rateKey)),
      field("control-required-keys", "Required payload keys", requiredKeys, "Comma-separated."),
    ],
    patch: () => controlsPatch({
      overlap: overlap.value, priority: priority.value.trim(),
      concurrencyLimit: concurrencyLimit.value.trim(), concurrencyKey: concurrencyKey.value.trim(),
      rateLimit: rateLimit.value.trim(), ratePeriod: ratePeriod.value.trim(), rateKey: rateKey.value.trim(),
      requiredKeys: requiredKeys.value,
    }),
  };
}

/** Open the editor of ``cue``'s controls; resolves to the changed cue, or null if cancelled. */
export function editControls(cue) {
  return new Promise((resolve) => {
    const controls = controlFields(cue);
    const error = h("p", { class: "form-error", role: "alert" });
    const cancel = h("button", { type: "button", class: "button ghost", "data-action": "cancel" }, "Cancel");
    const save = h("button", { type: "submit", class: "button primary", "data-action": "save" }, "Save controls");
    const form = h("form", { id: "controls-form", class: "controls-form", method: "dialog", novalidate: true },
      h("h2", {}, `Run controls of “${cue.name}”`),
      controls.nodes,
      error,
      h("div", { class: "dialog-actions" }, cancel, save));
    const dialog = h("dialog", { class: "confirm controls-dialog", "aria-label": "Run controls" }, form);
    const close = (answer) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    cancel.addEventListener("click", () => close(null));
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      close(null);
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.textContent = "";
      let body;
      try {
        body = controls.patch();
      } catch (failure) {
        error.textContent = failure.message;
        return;
      }
      save.disabled = true;
      try {
        close(await api("PATCH", `/v1/cues/${cue.id}`, body));
      } catch (failure) {
        error.textContent = failure.message;
        save.disabled = false;
      }
    });
    document.body.appendChild(dialog);
    dialog.showModal();
    controls.focus.focus();
  });
}
