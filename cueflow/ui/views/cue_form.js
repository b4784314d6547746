// The create/edit form of a cue: name, schedule (with its meaning in words as you type),
// transport and callback, payload JSON and the run controls. The API validates; each of its
// validation errors is shown under the field it names.

import { api } from "../api.js";
import { h, fill } from "../dom.js";
import { describeSchedule } from "../cron.js";
import { controlFields, field } from "./controls_form.js";

const TRANSPORTS = [
  ["webhook", "Webhook: POST to a URL"],
  ["worker", "Worker: claimed by your workers"],
  ["inprocess", "In-process handler"],
];
const SCHEDULES = [["recurring", "Cron"], ["interval", "Every N seconds"], ["once", "Once"]];

function input(id, value, attrs = {}) {
  return h("input", { id, name: id, autocomplete: "off", spellcheck: "false", value: value ?? "", ...attrs });
}

/** A datetime-local value (the browser's zone) of an ISO instant. */
function localValue(iso) {
  if (!iso) return "";
  const when = new Date(iso);
  return new Date(when.getTime() - when.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

/** The schedule object the inputs describe. */
function scheduleOf(inputs) {
  const type = inputs.type.value;
  const timezone = inputs.timezone.value.trim() || "UTC";
  if (type === "interval") return { type, interval_seconds: Number(inputs.interval.value), timezone };
  if (type === "once") {
    const at = inputs.at.value ? new Date(inputs.at.value) : null;
    return { type, at: at && !Number.isNaN(at.getTime()) ? at.toISOString() : inputs.at.value, timezone };
  }
  return { type, cron: inputs.cron.value.trim(), timezone };
}

/** The fields errors without a field of their own are about, by error code. */
const CODE_FIELDS = { duplicate_cue_name: "name", invalid_schedule: "schedule", invalid_callback_url: "callback", invalid_timezone: "schedule.timezone" };

/** The field an error detail is about: its own, else a dotted path its message names
 * ("callback.url is required"), else the one its code implies. */
function fieldOf(detail, code) {
  const own = String(detail.field || "").replace(/^body\.?/, "");
  if (own) return own;
  const named = String(detail.message).match(/\b([a-z_]+(?:\.[a-z_]+)+)\b/);
  return named ? named[1] : CODE_FIELDS[code] ?? "";
}

/** Show the API's field errors under their inputs; the rest go to ``general``. */
function showErrors(form, general, failure) {
  const details = failure.details?.length ? failure.details : [{ field: "", message: failure.message }];
  const boxes = [...form.querySelectorAll("[data-field]")];
  const unplaced = [];
  for (const detail of details) {
    const path = fieldOf(detail, failure.code);
    // the longest field name the error's path starts with: "schedule.cron" before "schedule"
    const box = boxes
      .filter((node) => path === node.dataset.field || path.startsWith(`${node.dataset.field}.`))
      .sort((a, b) => b.dataset.field.length - a.dataset.field.length)[0];
    if (box) box.querySelector(".field-error").textContent = detail.message.replace(/^Value error, /, "");
    else unplaced.push(path ? `${path}: ${detail.message}` : detail.message);
  }
  general.textContent = unplaced.join(" · ");
  const first = form.querySelector(".field-error:not(:empty)");
  if (first) first.closest("[data-field]").querySelector("input, select, textarea")?.focus();
}

function checked(name, label, node, help) {
  const box = field(`cue-${name}`, label, node, help);
  box.dataset.field = name;
  box.appendChild(h("p", { class: "field-error", role: "alert" }));
  return box;
}

/**
 * Open the form for a new cue (``cue`` null) or to edit ``cue``; resolves to the saved cue,
 * or null when cancelled.
 */
export function editCue(cue) {
  return new Promise((resolve) => {
    const schedule = cue?.schedule ?? { type: "recurring", cron: "0 9 * * *", timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC" };
    const inputs = {
      name: input("cue-name", cue?.name, { required: true, maxlength: 255 }),
      description: input("cue-description", cue?.description),
      type: h("select", { id: "cue-schedule-type", name: "schedule_type" },
        SCHEDULES.map(([value, label]) => h("option", { value, selected: value === schedule.type }, label))),
      cron: input("cue-cron", schedule.cron, { placeholder: "m h dom mon dow" }),
      interval: input("cue-interval", schedule.interval_seconds, { type: "number", min: 1, step: 1 }),
      at: input("cue-at", localValue(schedule.at), { type: "datetime-local" }),
      timezone: input("cue-timezone", schedule.timezone || "UTC"),
      transport: h("select", { id: "cue-transport", name: "transport", disabled: Boolean(cue) },
        TRANSPORTS.map(([value, label]) => h("option", { value, selected: value === (cue?.transport ?? "webhook") }, label))),
      url: input("cue-callback-url", cue?.callback?.url, { type: "url", placeholder: "https://…" }),
      payload: h("textarea", { id: "cue-payload", name: "payload", rows: 5, spellcheck: "false", class: "mono" },
        JSON.stringify(cue?.payload ?? {}, null, 2)),
    };
    const preview = h("p", { class: "schedule-preview muted", "aria-live": "polite" });
    const controls = controlFields(cue);
    const general = h("p", { class: "form-error", role: "alert" });
    const cancel = h("button", { type: "button", class: "button ghost", "data-action": "cancel" }, "Cancel");
    const save = h("button", { type: "submit", class: "button primary", "data-action": "save" }, cue ? "Save cue" : "Create cue");
    const parts = {
      cron: checked("schedule.cron", "Cron", inputs.cron),
      interval: checked("schedule.interval_seconds", "Every (seconds)", inputs.interval),
      at: checked("schedule.at", "At (your local time)", inputs.at),
      url: checked("callback", "Callback URL", inputs.url),
    };

    const update = () => {
      const type = inputs.type.value;
      parts.cron.hidden = type !== "recurring";
      parts.interval.hidden = type !== "interval";
      parts.at.hidden = type !== "once";
      parts.url.hidden = inputs.transport.value !== "webhook";
      const words = describeSchedule(scheduleOf(inputs));
      fill(preview, words.words, words.detail ? ` · ${words.detail}` : "");
    };
    for (const node of [inputs.type, inputs.cron, inputs.interval, inputs.at, inputs.timezone, inputs.transport]) {
      node.addEventListener("input", update);
    }

    const form = h("form", { id: "cue-form", class: "controls-form cue-form", method: "dialog", novalidate: true },
      h("h2", {}, cue ? `Edit “${cue.name}”` : "New cue"),
      h("div", { class: "form-pair" }, checked("name", "Name", inputs.name), checked("description", "Description", inputs.description)),
      h("fieldset", {}, h("legend", {}, "Schedule"),
        h("div", { class: "form-pair" }, checked("schedule.type", "Kind", inputs.type), checked("schedule.timezone", "Time zone", inputs.timezone)),
        parts.cron, parts.interval, parts.at, preview,
        h("div", { dataset: { field: "schedule" } }, h("p", { class: "field-error", role: "alert" }))),
      h("fieldset", {}, h("legend", {}, "Delivery"),
        checked("transport", "Transport", inputs.transport, cue ? "A cue's transport cannot change." : null), parts.url,
        checked("payload", "Payload (JSON object)", inputs.payload)),
      h("details", { class: "form-more" }, h("summary", {}, "Run controls"), controls.nodes),
      general,
      h("div", { class: "dialog-actions" }, cancel, save));
    const dialog = h("dialog", { class: "confirm controls-dialog cue-dialog", "aria-label": cue ? "Edit cue" : "New cue" }, form);
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
      for (const node of form.querySelectorAll(".field-error")) node.textContent = "";
      general.textContent = "";
      let body;
      try {
        body = bodyOf(inputs, controls, cue);
      } catch (failure) {
        showErrors(form, general, failure);
        return;
      }
      save.disabled = true;
      try {
        close(cue ? await api("PATCH", `/v1/cues/${cue.id}`, body) : await api("POST", "/v1/cues", body));
      } catch (failure) {
        showErrors(form, general, failure);
        save.disabled = false;
      }
    });
    update();
    document.body.appendChild(dialog);
    dialog.showModal();
    inputs.name.focus();
  });
}

/** An error of the form's own checks, shaped as the API's (``field`` "": the whole form). */
function formError(field, message) {
  return Object.assign(new Error(message), { details: [{ field, message }] });
}

/** The POST (new) or PATCH (edit) body of the form; throws a field error it can tell. */
function bodyOf(inputs, controls, cue) {
  let payload;
  try {
    payload = JSON.parse(inputs.payload.value || "{}");
  } catch (problem) {
    throw formError("payload", `Not valid JSON: ${problem.message}`);
  }
  if (payload === null || typeof payload !== "object" || Array.isArray(payload)) {
    throw formError("payload", "The payload must be a JSON object.");
  }
  let runControls;
  try {
    runControls = controls.patch();
  } catch (problem) {
    throw formError("", `Run controls: ${problem.message}`);
  }
  const body = {
    name: inputs.name.value.trim(),
    description: inputs.description.value.trim() || null,
    schedule: scheduleOf(inputs),
    payload,
    ...runControls,
  };
  const transport = cue ? cue.transport : inputs.transport.value;
  if (!cue) body.transport = transport;
  if (transport === "webhook") body.callback = { url: inputs.url.value.trim() || null };
  return body;
}
