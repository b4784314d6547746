// The dashboard shell: sign-in, hash routing, the header and toasts. Each view renders into
// <main> and returns a function that stops its timers when the view is left.

import { accountOf, apiKey, api, signIn, signOut } from "./api.js";
import { h, fill } from "./dom.js";
import { cuesView } from "./views/cues.js";
import { feedView } from "./views/feed.js";
import { executionView } from "./views/execution.js";
import { workersView } from "./views/workers.js";
import { keysView } from "./views/keys.js";
import { failuresView } from "./views/failures.js";
import { flowsView, flowView } from "./views/flows.js";
import { runsView } from "./views/runs.js";
import { runView } from "./views/run.js";
import { overviewView } from "./views/overview.js";

const main = document.getElementById("view");
const topbar = document.querySelector(".topbar");
let leave = () => {};
let signInNotice = "";

const ROUTES = [
  [/^#\/overview$/, "overview", () => overviewView],
  [/^#\/cues$/, "cues", () => cuesView],
  [/^#\/executions(?:\?cue=([\w-]+))?$/, "executions", (match) => (view, ctx) => feedView(view, ctx, match[1])],
  [/^#\/executions\/([\w-]+)$/, "executions", (match) => (view, ctx) => executionView(view, ctx, match[1])],
  [/^#\/workers$/, "workers", () => workersView],
  [/^#\/keys$/, "keys", () => keysView],
  [/^#\/failures$/, "failures", () => failuresView],
  [/^#\/flows$/, "flows", () => flowsView],
  [/^#\/flows\/([\w-]+)$/, "flows", (match) => (view, ctx) => flowView(view, ctx, match[1])],
  [/^#\/runs(?:\?([\w=&%.-]*))?$/, "runs", (match) => (view, ctx) => runsView(view, ctx, match[1])],
  [/^#\/runs\/([\w-]+)$/, "runs", (match) => (view, ctx) => runView(view, ctx, match[1])],
];

/** A short message in the corner; kind is "ok" or "error". */
export function toast(message, kind = "ok") {
  const box = document.querySelector(".toasts");
  const note = h("div", { class: `toast toast-${kind}` }, message);
  box.appendChild(note);
  setTimeout(() => note.remove(), kind === "error" ? 7000 : 4000);
}

const context = { toast, navigate: (hash) => { location.hash = hash; } };

function showSignIn() {
  topbar.hidden = true;
  const input = h("input", {
    id: "api-key", name: "api_key", type: "password", autocomplete: "off", spellcheck: "false",
    placeholder: "cue_sk_…", required: true,
  });
  const error = h("p", { class: "form-error", role: "alert" }, signInNotice);
  const submit = h("button", { type: "submit", class: "button primary wide" }, "Sign in");
  const form = h("form", { class: "signin-card", id: "sign-in" },
    h("div", { class: "signin-brand" }, h("img", { src: "icon.svg", alt: "", width: 36, height: 36 }), "cueflow"),
    h("h1", {}, "Sign in"),
    h("p", { class: "muted" }, "Use an API key of your account. It is kept in this browser tab only, and forgotten when you close it."),
    h("label", { for: "api-key" }, "API key"),
    input, error, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    const key = input.value.trim();
    try {
      await accountOf(key);
      signIn(key);
      signInNotice = "";
      if (!/^#\/\w/.test(location.hash) || location.hash === "#/signin") location.hash = "#/cues";
      route();
    } catch (failure) {
      error.textContent = failure.status === 401 ? "This API key is not valid." : failure.message;
      submit.disabled = false;
    }
  });
  fill(main, h("section", { class: "signin" }, form));
  input.focus();
}

async function showAccount() {
  try {
    const me = await api("GET", "/v1/auth/me");
    document.querySelector(".account-email").textContent = me.email;
  } catch {
    // a 401 signs out through the event below; other failures leave the header blank
  }
}

function route() {
  leave();
  leave = () => {};
  if (!apiKey()) {
    showSignIn();
    return;
  }
  if (topbar.hidden) {
    topbar.hidden = false;
    showAccount();
  }
  const hash = location.hash || "#/cues";
  const found = ROUTES.map(([pattern, section, make]) => [hash.match(pattern), section, make])
    .find(([match]) => match);
  if (!found) {
    location.replace("#/cues");
    return;
  }
  const [match, section, make] = found;
  for (const link of topbar.querySelectorAll("nav a")) {
    link.classList.toggle("active", link.dataset.section === section);
  }
  fill(main);
  leave = make(match)(main, context) || (() => {});
}

window.addEventListener("hashchange", route);
window.addEventListener("cueflow:unauthorized", () => {
  if (!apiKey()) return;
  signOut();
  signInNotice = "Your session has ended: sign in again.";
  route();
});
document.getElementById("sign-out").addEventListener("click", () => {
  signOut();
  document.querySelector(".account-email").textContent = "";
  signInNotice = "";
  route();
});
route();
