// The account's API keys (docs/operations.md, "Scoped keys"): the account key and the scoped
// keys with their scope, creation and last use; a form creates one (its secret is shown once,
// here) and each scoped key can be revoked. Creating and revoking need a full key.

import { api } from "../api.js";
import { h, fill, badge } from "../dom.js";
import { timeCell } from "../format.js";
import { every, pageHeader, table, emptyRow, problem, confirmAction } from "./common.js";

const COLUMNS = ["Name", "Scope", "Key", "Created", "Last used", ""];
const SCOPES = [
  ["worker", "worker: poll, claim, heartbeat, outcome, release, worker registry"],
  ["read", "read: read-only"],
  ["full", "full: everything"],
];

export function keysView(main, { toast }) {
  const body = h("tbody");
  const banner = h("div", { class: "banner", role: "alert", hidden: true });
  const summary = h("p", { class: "muted" }, "Loading…");
  const secretBox = h("div", { class: "key-secret", id: "new-key", role: "status", hidden: true });
  let busy = false;

  const name = h("input", { id: "key-name", name: "name", maxlength: 100, placeholder: "e.g. build-host-1", autocomplete: "off" });
  const scope = h("select", { id: "key-scope", name: "scope" },
    SCOPES.map(([value, label]) => h("option", { value }, label)));
  const error = h("p", { class: "form-error", role: "alert" });
  const submit = h("button", { type: "submit", class: "button primary" }, "Create key");
  const form = h("form", { id: "key-form", class: "key-form", novalidate: true },
    h("div", { class: "form-field" }, h("label", { for: "key-name" }, "Name (optional)"), name),
    h("div", { class: "form-field" }, h("label", { for: "key-scope" }, "Scope"), scope),
    h("div", { class: "form-field key-submit" }, submit),
    error);

  function showSecret(created) {
    fill(secretBox,
      h("strong", {}, `New ${created.scope} key ${created.name ? `“${created.name}” ` : ""}created.`),
      " Copy its secret now: it is shown only once.",
      h("code", { class: "secret", id: "new-key-secret" }, created.api_key));
    secretBox.hidden = false;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    busy = true;
    error.textContent = "";
    const request = { scope: scope.value };
    if (name.value.trim()) request.name = name.value.trim();
    try {
      const created = await api("POST", "/v1/auth/keys", request);
      showSecret(created);
      name.value = "";
      toast(`Created key ${created.id}`);
    } catch (failure) {
      error.textContent = failure.message;
    } finally {
      submit.disabled = false;
      busy = false;
      await refresh();
    }
  });

  async function revoke(key) {
    const label = key.name ? `“${key.name}”` : key.id;
    const sure = await confirmAction(`Revoke ${label}?`,
      "Clients using this key are refused from now on (401 key_revoked). This cannot be undone.", "Revoke key");
    if (!sure) return;
    busy = true;
    try {
      await api("DELETE", `/v1/auth/keys/${encodeURIComponent(key.id)}`);
      toast(`Revoked ${label}`);
    } catch (failure) {
      toast(`Revoke failed: ${failure.message}`, "error");
    } finally {
      busy = false;
      await refresh();
    }
  }

  function row(key) {
    return h("tr", { dataset: { keyId: key.id } },
      h("td", { class: "strong" }, key.name || h("span", { class: "muted" }, "(no name)"),
        h("div", { class: "muted small" }, key.id)),
      h("td", { class: "key-scope" }, badge(key.scope, `badge-scope-${key.scope}`)),
      h("td", {}, h("code", {}, `${key.prefix}…`)),
      h("td", {}, timeCell(key.created_at)),
      h("td", { class: "key-last-used" }, key.last_used_at ? timeCell(key.last_used_at) : h("span", { class: "muted" }, "never")),
      h("td", {}, h("button", {
        type: "button", class: "button small danger-text", "data-action": "revoke", onclick: () => revoke(key),
      }, "Revoke")));
  }

  function accountRow(account) {
    return h("tr", { dataset: { keyId: "account" } },
      h("td", { class: "strong" }, "Account key", h("div", { class: "muted small" }, "replace it with POST /v1/auth/key/regenerate")),
      h("td", { class: "key-scope" }, badge(account.scope, `badge-scope-${account.scope}`)),
      h("td", {}, h("code", {}, `${account.prefix}…`)),
      h("td", {}, h("span", { class: "muted" }, "—")),
      h("td", {}, h("span", { class: "muted" }, "—")),
      h("td", {}));
  }

  async function refresh() {
    if (busy) return;
    try {
      const answer = await api("GET", "/v1/auth/keys");
      problem(banner, null);
      const count = answer.keys.length;
      summary.textContent = `${count} scoped key${count === 1 ? "" : "s"} besides the account key`;
      fill(body, accountRow(answer.account_key),
        count ? answer.keys.map(row) : emptyRow(COLUMNS.length, "No scoped keys yet. Create one for each worker host or agent."));
    } catch (failure) {
      problem(banner, failure);
      throw failure;
    }
  }

  fill(main,
    pageHeader("API keys", "A worker key can only poll, claim, heartbeat, report and release; a read key only reads. Secrets are stored hashed and shown once.", summary),
    banner,
    h("section", { class: "card key-create" }, h("h2", {}, "New key"), form, secretBox),
    table(COLUMNS, body, { class: "keys", id: "keys-table" }));
  return every(10000, refresh);
}
