// Schedules in words: common cron shapes, intervals and one-time runs. Anything unusual is
// called "Custom schedule"; the raw cron is always shown next to the words.

const DAY_NAMES = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const DAY_ABBREVIATIONS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const MONTH_NAMES = ["January", "February", "March", "April", "May", "June", "July", "August",
  "September", "October", "November", "December"];
const MONTH_ABBREVIATIONS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT",
  "NOV", "DEC"];

const isNumber = (text) => /^\d+$/.test(text);

function dayNumber(text) {
  const upper = text.toUpperCase();
  const index = DAY_ABBREVIATIONS.indexOf(upper);
  if (index >= 0) return index;
  if (isNumber(text) && Number(text) <= 7) return Number(text) % 7;
  return null;
}

/** The weekdays a day-of-week field names, as a sorted array of 0..6, or null. */
function weekdays(field) {
  const days = new Set();
  for (const part of field.split(",")) {
    const [from, to] = part.split("-");
    const start = dayNumber(from);
    const end = to === undefined ? start : dayNumber(to);
    if (start === null || end === null) return null;
    if (to !== undefined && Number(to) === 7) {
      for (let day = start; day <= 6; day++) days.add(day);
      days.add(0);
      continue;
    }
    if (end < start) return null;
    for (let day = start; day <= end; day++) days.add(day);
  }
  return [...days].sort((a, b) => a - b);
}

function clock(hour, minute) {
  return `${String(hour).padStart(2, "0")}:${String(minute).padStart(2, "0")}`;
}

function list(words) {
  return words.length <= 1 ? words.join("") : `${words.slice(0, -1).join(", ")} and ${words.at(-1)}`;
}

function plural(count, unit) {
  return count === 1 ? `Every ${unit}` : `Every ${count} ${unit}s`;
}

function dayPhrase(field) {
  const days = weekdays(field);
  if (!days) return null;
  const key = days.join(",");
  if (key === "0,1,2,3,4,5,6") return "Every day";
  if (key === "1,2,3,4,5") return "Every weekday";
  if (key === "0,6") return "Every weekend day";
  return `Every ${list(days.map((day) => DAY_NAMES[day]))}`;
}

function monthName(field) {
  if (isNumber(field) && Number(field) >= 1 && Number(field) <= 12) return MONTH_NAMES[Number(field) - 1];
  const index = MONTH_ABBREVIATIONS.indexOf(field.toUpperCase());
  return index >= 0 ? MONTH_NAMES[index] : null;
}

/** A five-field cron expression in words, or "Custom schedule". */
export function describeCron(cron) {
  const fields = String(cron || "").trim().split(/\s+/);
  if (fields.length !== 5) return "Custom schedule";
  const [minute, hour, dom, month, dow] = fields;
  const everyDay = dom === "*" && month === "*";
  const step = (field) => (/^\*\/\d+$/.test(field) ? Number(field.slice(2)) : null);

  if (everyDay && dow === "*") {
    if (minute === "*" && hour === "*") return "Every minute";
    if (step(minute) && hour === "*") return plural(step(minute), "minute");
    if (isNumber(minute) && hour === "*") {
      return minute === "0" ? "Every hour, on the hour" : `Every hour at minute ${Number(minute)}`;
    }
    if (isNumber(minute) && step(hour)) {
      return `${plural(step(hour), "hour")}${minute === "0" ? "" : ` at minute ${Number(minute)}`}`;
    }
  }
  if (!isNumber(minute)) return "Custom schedule";
  const hours = hour.split(",");
  if (!hours.every((h) => isNumber(h) && Number(h) < 24) || Number(minute) > 59) return "Custom schedule";
  const at = `at ${list(hours.map((h) => clock(Number(h), Number(minute))))}`;

  if (everyDay) {
    const days = dow === "*" ? "Every day" : dayPhrase(dow);
    return days ? `${days} ${at}` : "Custom schedule";
  }
  if (dow === "*" && isNumber(dom) && Number(dom) >= 1 && Number(dom) <= 31) {
    if (month === "*") return `On day ${Number(dom)} of every month ${at}`;
    const name = monthName(month);
    if (name) return `Every year on ${name} ${Number(dom)} ${at}`;
  }
  return "Custom schedule";
}

function seconds(count) {
  const units = [["day", 86400], ["hour", 3600], ["minute", 60]];
  for (const [unit, length] of units) {
    if (count % length === 0) return plural(count / length, unit);
  }
  return plural(count, "second");
}

/** {words, detail} for a cue's schedule object: words for people, detail for the exact rule. */
export function describeSchedule(schedule) {
  const zone = schedule.timezone || "UTC";
  if (schedule.type === "recurring") {
    return { words: `${describeCron(schedule.cron)} (${zone})`, detail: schedule.cron };
  }
  if (schedule.type === "interval") {
    return { words: seconds(Number(schedule.interval_seconds)), detail: `every ${schedule.interval_seconds} s` };
  }
  if (schedule.type === "once") {
    return { words: "Once", detail: schedule.at || "" };
  }
  return { words: "Custom schedule", detail: schedule.type || "" };
}
