// The overview: how the account's executions are doing over the last hour or day, from
// GET /v1/stats/overview. Executions per minute by status, schedule-to-start lag and delivery
// latency percentiles, executions waiting to start, and the queue now; redrawn when the
// server pushes a change (at most every 5 s), every 30 s while the stream is down, and each
// minute besides, so the time axis moves on with its one-minute buckets.

import { api, query } from "../api.js";
import { h, fill } from "../dom.js";
import { relative } from "../format.js";
import { lineChart } from "../charts.js";
import { liveUpdates, throttled } from "../live.js";
import { every, pageHeader, problem } from "./common.js";

const WINDOWS = [["1h", "Last hour"], ["24h", "Last day"]];
const SHOWN_STATUSES = ["success", "failed", "missed", "pending", "delivering", "retrying", "retry_ready"];

/** Seconds in words: "40 ms", "2.5 s", "5 min", "6 h"; "—" for none. */
export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 120) return `${Number(seconds.toFixed(1))} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds / 3600)} h`;
}

function stat(label, value, detail, id) {
  return h("div", { class: "card stat", id },
    h("div", { class: "muted small" }, label),
    h("div", { class: "stat-value" }, value),
    detail ? h("div", { class: "muted small" }, detail) : null);
}

/** A percentile: the bound of its histogram bucket, so "at most". */
function atMost(seconds) {
  return seconds === null || seconds === undefined ? "—" : `≤ ${duration(seconds)}`;
}

function percentiles(delays) {
  const { p50, p99 } = delays.overall;
  return `p50 ${atMost(p50)} · p99 ${atMost(p99)} · ${delays.count} measured`;
}

export function overviewView(main) {
  let window = "1h";
  let charts = [];
  const banner = h("div", { class: "banner", role: "alert", hidden: true });
  const stats = h("div", { class: "stats" });
  const grid = h("div", { class: "chart-grid" });
  const note = h("p", { class: "muted small" });
  const chips = h("div", { class: "chips", role: "group", "aria-label": "Time window" },
    WINDOWS.map(([value, label]) => h("button", {
      type: "button", class: `chip${value === window ? " active" : ""}`, "aria-pressed": String(value === window),
      dataset: { window: value },
      onclick: (event) => {
        window = value;
        for (const chip of chips.children) {
          chip.classList.toggle("active", chip === event.currentTarget);
          chip.setAttribute("aria-pressed", String(chip === event.currentTarget));
        }
        refresh().catch(() => {});
      },
    }, label)));

  function draw(data) {
    const totals = data.executions.totals;
    const finished = totals.success + totals.failed + totals.missed;
    const rate = finished ? `${Math.round((100 * totals.success) / finished)} % succeeded` : "none finished";
    const queue = data.queue;
    fill(stats,
      stat("Executions", String(Object.values(totals).reduce((a, b) => a + b, 0)), rate, "stat-executions"),
      stat("Queue now", String(queue.total),
        queue.oldest_scheduled_for ? `oldest due ${relative(queue.oldest_scheduled_for)}` : "nothing waiting", "stat-queue"),
      stat("Schedule-to-start lag, p95", atMost(data.lag.overall.p95), percentiles(data.lag), "stat-lag"),
      stat("Delivery latency, p95", atMost(data.latency.overall.p95), percentiles(data.latency), "stat-latency"));
    for (const chart of charts) chart.destroy();
    const perMinute = Object.fromEntries(SHOWN_STATUSES.map((status) => [status, data.executions.per_minute[status]]));
    charts = [
      lineChart("Executions per minute, by status", data.buckets, perMinute, { unit: "per min", id: "chart-executions" }),
      lineChart("Schedule-to-start lag", data.buckets, data.lag.series, { unit: "seconds", id: "chart-lag", points: true }),
      lineChart("Delivery latency", data.buckets, data.latency.series, { unit: "seconds", id: "chart-latency", points: true }),
      lineChart("Waiting to start", data.buckets, { waiting: queue.waiting }, { unit: "executions", id: "chart-waiting" }),
      queueChart(queue),
    ];
    fill(grid, charts.map((chart) => chart.node));
    for (const chart of charts) chart.resize();
    const minutes = data.bucket_seconds / 60;
    note.textContent = `One point per ${minutes === 1 ? "minute" : `${minutes} minutes`}, by the time each execution was created. `
      + "Percentiles are the upper bound of the histogram bucket they fall in.";
  }

  async function refresh() {
    try {
      draw(await api("GET", `/v1/stats/overview${query({ window })}`));
      problem(banner, null);
    } catch (failure) {
      problem(banner, failure);
      throw failure;
    }
  }

  fill(main, pageHeader("Overview", "How your executions are doing.", chips), banner, stats, grid, note);
  const resize = () => charts.forEach((chart) => chart.resize());
  addEventListener("resize", resize);
  const changed = throttled(5000, refresh);
  const stopTimer = every(60000, refresh);
  const stopLive = liveUpdates(() => changed(), { pollMs: 30000 });
  return () => {
    stopTimer();
    stopLive();
    changed.cancel();
    removeEventListener("resize", resize);
    for (const chart of charts) chart.destroy();
  };
}

/** The queue now, one bar per status (a table-like figure, no library needed). */
function queueChart(queue) {
  const most = Math.max(1, ...Object.values(queue.by_status));
  const node = h("figure", { class: "chart queue-chart", id: "chart-queue" },
    h("figcaption", {}, "Queue depth now"),
    Object.entries(queue.by_status).map(([status, count]) => h("div", { class: "queue-row", dataset: { status } },
      h("span", { class: "queue-label" }, status.replace(/_/g, " ")),
      h("span", { class: "queue-bar" }, h("span", { class: `queue-fill queue-${status}`, dataset: { share: String(count / most) } })),
      h("span", { class: "queue-count numeric" }, String(count)))));
  // widths set through the CSSOM: the page's policy allows no inline style attributes
  for (const fillNode of node.querySelectorAll(".queue-fill")) {
    fillNode.style.width = `${Math.round(Number(fillNode.dataset.share) * 100)}%`;
  }
  return { node, resize: () => {}, destroy: () => {} };
}
