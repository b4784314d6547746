// Time-series charts drawn with the vendored uPlot (vendor/uplot.js, MIT): one small wrapper
// so the views only say which series to draw, in the dashboard's colours.

import uPlot from "./vendor/uplot.js";
import { h } from "./dom.js";

/** Colours by series name; anything else cycles through SPARE. */
const COLOURS = {
  success: "#2f9e44", failed: "#e03131", missed: "#f08c00", pending: "#868e96",
  delivering: "#1971c2", retrying: "#ae3ec9", retry_ready: "#f783ac",
  p50: "#1971c2", p95: "#f08c00", p99: "#e03131", waiting: "#5c7cfa",
};
const SPARE = ["#5c7cfa", "#20c997", "#fab005"];

/**
 * A line chart in a new <figure>: ``times`` (Date or ISO strings) on x, one line per entry of
 * ``series`` ({name: [values or null]}); ``unit`` labels the y axis; ``points`` marks each
 * value (so a lone measured bucket between gaps shows). Returns {node, resize, destroy}.
 */
export function lineChart(title, times, series, { unit = "", id, points = false } = {}) {
  const figure = h("figure", { class: "chart", id },
    h("figcaption", {}, title));
  const names = Object.keys(series);
  const xs = times.map((time) => new Date(time).getTime() / 1000);
  const width = () => Math.max(280, figure.clientWidth - 16);
  const options = {
    width: 600,
    height: 220,
    series: [
      {},
      ...names.map((name, index) => ({
        label: name.replace(/_/g, " "),
        stroke: COLOURS[name] ?? SPARE[index % SPARE.length],
        width: 2,
        spanGaps: false,
        points: { show: points, size: 4 },
      })),
    ],
    axes: [{}, { label: unit, size: 56 }],
    scales: { y: { range: (_, min, max) => [0, Math.max(1, max ?? 0) * 1.1] } },
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
  };
  const plot = new uPlot(options, [xs, ...names.map((name) => series[name])], figure);
  const resize = () => plot.setSize({ width: width(), height: 220 });
  return { node: figure, resize, destroy: () => plot.destroy() };
}
