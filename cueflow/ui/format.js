// Times for people: "in 3 min", "2 h ago", with the exact local time as a tooltip.

const UNITS = [
  ["d", 86400],
  ["h", 3600],
  ["min", 60],
  ["s", 1],
];

/** "in 3 min" / "12 s ago" for an ISO timestamp, relative to now. */
export function relative(iso, now = Date.now()) {
  if (!iso) return "—";
  const seconds = Math.round((new Date(iso).getTime() - now) / 1000);
  const size = Math.abs(seconds);
  if (size < 2) return "now";
  const [unit, length] = UNITS.find(([, length]) => size >= length);
  const amount = Math.floor(size / length);
  return seconds > 0 ? `in ${amount} ${unit}` : `${amount} ${unit} ago`;
}

/** The exact time in the browser's zone: "2026-01-05 12:00:03". */
export function absolute(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** A <time> element showing the relative time with the absolute one as its title. */
export function timeCell(iso) {
  const node = document.createElement("time");
  if (!iso) {
    node.textContent = "—";
    return node;
  }
  node.dateTime = iso;
  node.title = absolute(iso);
  node.textContent = relative(iso);
  return node;
}

/** An execution or cue id, shortened for tables. */
export function shortId(id) {
  return id ? String(id).slice(0, 8) : "—";
}
