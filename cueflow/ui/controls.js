// Run controls in words (docs/run-controls.md): a cue's overlap policy, priority, limits and
// required payload keys, and what a held-back execution waits for (its "waiting_for").

import { h } from "./dom.js";
import { absolute } from "./format.js";

const OVERLAP = {
  allow: "runs overlap",
  skip: "skip while running",
  buffer_one: "queue one while running",
  cancel_other: "cancel the running one",
};

/** "2 at once" / "2 at once · key llm"; null without a concurrency limit. */
export function concurrencyText(concurrency) {
  if (!concurrency || concurrency.limit == null) return null;
  return `${concurrency.limit} at once${concurrency.key ? ` · key ${concurrency.key}` : ""}`;
}

/** "60 per 60 s" / "60 per 60 s · key llm"; null without a rate limit. */
export function rateLimitText(rate) {
  if (!rate || rate.limit == null) return null;
  return `${rate.limit} per ${rate.period_seconds} s${rate.key ? ` · key ${rate.key}` : ""}`;
}

/** A cue's controls as [name, text, control] triples, every one of them (for details). */
export function controlFacts(cue) {
  const keys = cue.required_payload_keys || [];
  return [
    ["Overlap", OVERLAP[cue.overlap_policy] ?? cue.overlap_policy ?? "runs overlap", "overlap"],
    ["Priority", String(cue.priority ?? 0), "priority"],
    ["Concurrency", concurrencyText(cue.concurrency) ?? "no limit", "concurrency"],
    ["Rate limit", rateLimitText(cue.rate_limit) ?? "no limit", "rate-limit"],
    ["Required keys", keys.length ? keys.join(", ") : "none", "required-keys"],
  ];
}

/** The controls that differ from the defaults, as tags (a cue row); "defaults" if none. */
export function controlTags(cue) {
  const tags = [];
  const tag = (control, text, title) => tags.push(h("span", { class: "tag control", dataset: { control }, title }, text));
  if (cue.priority) tag("priority", `priority ${cue.priority}`, "Higher is claimed and delivered first");
  const concurrency = concurrencyText(cue.concurrency);
  if (concurrency) tag("concurrency", concurrency, "Most runs claimed or being delivered at once");
  const rate = rateLimitText(cue.rate_limit);
  if (rate) tag("rate-limit", rate, "Most runs started per period");
  if (cue.overlap_policy && cue.overlap_policy !== "allow") {
    tag("overlap", OVERLAP[cue.overlap_policy] ?? cue.overlap_policy, `overlap_policy: ${cue.overlap_policy}`);
  }
  const keys = cue.required_payload_keys || [];
  if (keys.length) tag("required-keys", `needs ${keys.join(", ")}`, "Keys every run's payload must carry");
  return tags.length ? h("div", { class: "controls" }, tags) : h("span", { class: "muted" }, "defaults");
}

/**
 * What a held-back execution waits for, in words, from its ``waiting_for``
 * ({reason, key, limit, in_flight?, period_seconds?, until}); null when it waits for nothing.
 * "waiting: concurrency key llm (limit 2)",
 * "waiting: rate limit (limit 60 per 60 s) until 12:00:05" (the browser's time).
 */
export function waitingText(waiting) {
  if (!waiting) return null;
  const what = waiting.reason === "rate_limit" ? "rate limit" : waiting.reason === "concurrency" ? "concurrency" : String(waiting.reason ?? "a limit").replace(/_/g, " ");
  const key = waiting.key ? ` key ${waiting.key}` : "";
  const per = waiting.period_seconds ? ` per ${waiting.period_seconds} s` : "";
  const limit = waiting.limit != null ? ` (limit ${waiting.limit}${per})` : "";
  const until = waiting.until ? ` until ${absolute(waiting.until).slice(11)}` : "";
  return `waiting: ${what}${key}${limit}${until}`;
}

/** The waiting note under an execution's status, or null. */
export function waitingNote(execution) {
  const text = waitingText(execution.waiting_for);
  if (!text) return null;
  const waiting = execution.waiting_for;
  const title = waiting.until ? `until ${absolute(waiting.until)}`
    : waiting.in_flight != null ? `${waiting.in_flight} running of ${waiting.limit}` : "";
  return h("div", { class: "waiting small", title }, text);
}
