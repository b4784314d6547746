// Live updates: the account's execution and cue changes pushed by the server
// (GET /v1/events/stream, server-sent events read through fetch so the API key travels in the
// Authorization header as for every other call). When the stream cannot be opened or drops
// (a proxy cutting it, a network error, silence past the heartbeat), the views are refreshed
// by polling instead, and the stream is tried again with a growing delay.

import { apiKey, apiUrl } from "./api.js";

const SILENCE_MS = 40000; // the server sends a heartbeat every 15 s
const RETRY_MS = [2000, 5000, 15000, 30000];

/** The events of the text received so far; returns [events, the unfinished rest]. */
export function parseEvents(text) {
  const blocks = text.split("\n\n");
  const rest = blocks.pop();
  const events = [];
  for (const block of blocks) {
    let name = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event: ")) name = line.slice(7);
      else if (line.startsWith("data: ")) data.push(line.slice(6));
    }
    if (data.length) events.push({ name, data: JSON.parse(data.join("\n")) });
  }
  return [events, rest];
}

/**
 * Call ``onChange(event)`` for each change the server pushes ({name: "executions"|"cues",
 * data}), and every ``pollMs`` while the stream is down (``onChange(null)``: look again).
 * ``onMode("live"|"polling")`` tells which one runs. Returns the function that stops both.
 */
export function liveUpdates(onChange, { pollMs = 5000, onMode = () => {} } = {}) {
  let stopped = false;
  let failures = 0;
  let pollTimer = null;
  let retryTimer = null;
  let controller = null;

  const poll = () => {
    if (stopped || pollTimer) return;
    onMode("polling");
    const tick = () => {
      if (stopped) return;
      if (!document.hidden) onChange(null);
      pollTimer = setTimeout(tick, pollMs);
    };
    pollTimer = setTimeout(tick, pollMs);
  };

  const stopPolling = () => {
    clearTimeout(pollTimer);
    pollTimer = null;
  };

  const reconnect = (delay) => {
    if (stopped) return;
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, delay);
  };

  async function connect() {
    controller = new AbortController();
    let watchdog = null;
    const quiet = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => controller.abort(), SILENCE_MS);
    };
    let ended = "dropped";
    try {
      const response = await fetch(apiUrl("/v1/events/stream"), {
        headers: { Authorization: `Bearer ${apiKey() ?? ""}`, Accept: "text/event-stream" },
        signal: controller.signal,
        cache: "no-store",
      });
      if (!response.ok || !response.body) throw new Error(`stream answered ${response.status}`);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      quiet();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        quiet();
        const [events, rest] = parseEvents(buffer + value);
        buffer = rest;
        for (const event of events) {
          if (event.name === "hello") {
            failures = 0;
            stopPolling();
            onMode("live");
            onChange(null); // catch up on what happened while the stream was down
          } else if (event.name === "drain" || event.name === "bye") {
            ended = "closed";
          } else if (event.name === "busy") {
            ended = "busy"; // this account has too many streams open: poll, try again later
          } else {
            onChange(event);
          }
        }
      }
    } catch {
      // dropped: polling takes over below
    } finally {
      clearTimeout(watchdog);
    }
    if (stopped) return;
    if (ended === "closed") {
      // the server is stopping or the stream's time is up: another node (or this one) answers
      reconnect(RETRY_MS[0]);
      return;
    }
    poll();
    if (ended === "busy") failures = RETRY_MS.length - 1;
    reconnect(RETRY_MS[Math.min(failures, RETRY_MS.length - 1)]);
    failures += 1;
  }

  connect();
  return () => {
    stopped = true;
    stopPolling();
    clearTimeout(retryTimer);
    if (controller) controller.abort();
  };
}

/** ``task`` at most once per ``ms`` (trailing call kept), never two at once. */
export function throttled(ms, task) {
  let last = 0;
  let timer = null;
  let running = false;
  const run = async () => {
    timer = null;
    if (running) {
      timer = setTimeout(run, ms);
      return;
    }
    running = true;
    last = Date.now();
    try {
      await task();
    } catch {
      // the view shows the failure itself
    } finally {
      running = false;
    }
  };
  const call = () => {
    if (timer) return;
    timer = setTimeout(run, Math.max(0, last + ms - Date.now()));
  };
  call.cancel = () => clearTimeout(timer);
  return call;
}
