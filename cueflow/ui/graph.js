// A flow drawn as its graph: steps as nodes in columns by depth, edges from each step's
// `needs`, in inline SVG. Step ids and statuses go in as text nodes and attribute values,
// never as markup.

const SVG = "http://www.w3.org/2000/svg";
const NODE_W = 168;
const NODE_H = 50;
const GAP_X = 64;
const GAP_Y = 18;
const PAD = 12;
const LABEL_CHARS = 20;

/**
 * Where each step goes: its column is its depth (0 for a step without needs, else one more
 * than its deepest parent); within a column, steps sit near the mean row of their parents.
 * Returns {nodes: [{id, step, column, row, x, y}], edges: [{from, to}], width, height}.
 * Needs naming an unknown step are ignored, and a cycle does not hang it (definitions are
 * validated as DAGs, but the drawing must never lock the page).
 */
export function layout(steps) {
  const byId = new Map(steps.map((step) => [step.id, step]));
  const depth = new Map();
  const visiting = new Set();
  const depthOf = (id) => {
    if (depth.has(id)) return depth.get(id);
    if (visiting.has(id)) return 0;
    visiting.add(id);
    const parents = (byId.get(id).needs || []).filter((need) => byId.has(need));
    const value = parents.length ? 1 + Math.max(...parents.map(depthOf)) : 0;
    visiting.delete(id);
    depth.set(id, value);
    return value;
  };
  const columns = [];
  for (const step of steps) {
    const column = depthOf(step.id);
    (columns[column] ||= []).push(step);
  }
  const row = new Map();
  const nodes = [];
  columns.forEach((members = [], column) => {
    const wish = (step) => {
      const parents = (step.needs || []).filter((need) => row.has(need));
      return parents.length ? parents.reduce((sum, need) => sum + row.get(need), 0) / parents.length : 0;
    };
    const ordered = members.map((step, index) => ({ step, index, wish: wish(step) }))
      .sort((a, b) => a.wish - b.wish || a.index - b.index);
    ordered.forEach(({ step }, index) => {
      row.set(step.id, index);
      nodes.push({
        id: step.id, step, column, row: index,
        x: PAD + column * (NODE_W + GAP_X), y: PAD + index * (NODE_H + GAP_Y),
      });
    });
  });
  const edges = steps.flatMap((step) => (step.needs || [])
    .filter((need) => byId.has(need))
    .map((need) => ({ from: need, to: step.id })));
  const tallest = Math.max(1, ...columns.map((members = []) => members.length));
  return {
    nodes, edges,
    width: PAD * 2 + Math.max(1, columns.length) * (NODE_W + GAP_X) - GAP_X,
    height: PAD * 2 + tallest * (NODE_H + GAP_Y) - GAP_Y,
  };
}

function el(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function clipped(text) {
  return text.length > LABEL_CHARS ? `${text.slice(0, LABEL_CHARS - 1)}…` : text;
}

/** What a node says under its id: its kind and what it waits for or runs. */
function kindOf(step) {
  if (step.type === "wait") return `wait · ${step.event ?? ""}`;
  const task = step.payload && typeof step.payload.task === "string" ? step.payload.task : null;
  const kind = step.for_each ? `for each ${step.for_each}` : step.transport || "worker";
  return task ? `${kind} · ${task}` : kind;
}

/** What a node of a run says under its id: its status, and its items or attempts. */
function progress(state) {
  if (Array.isArray(state.items) && state.items.length) {
    const done = state.items.filter((item) => item.status === "succeeded").length;
    return `${state.status} · ${done}/${state.items.length} items`;
  }
  return state.attempts > 1 ? `${state.status} · ${state.attempts} attempts` : state.status;
}

/**
 * The <svg> of ``steps`` (definitions); ``states`` maps step id to its run state (absent:
 * the definition alone, every node neutral). ``selected`` is outlined; ``onSelect(id)`` runs
 * when a node is clicked or chosen with Enter.
 */
export function flowGraph(steps, states = null, selected = null, onSelect = null) {
  const { nodes, edges, width, height } = layout(steps);
  const where = new Map(nodes.map((node) => [node.id, node]));
  const svg = el("svg", {
    class: "flow-graph", width, height, viewBox: `0 0 ${width} ${height}`, role: "group",
    "aria-label": "Steps of the flow and what each one needs",
  });
  const defs = el("defs");
  const marker = el("marker", {
    id: "flow-arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7,
    orient: "auto-start-reverse",
  });
  marker.appendChild(el("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "flow-arrow" }));
  defs.appendChild(marker);
  svg.appendChild(defs);
  for (const edge of edges) {
    const from = where.get(edge.from);
    const to = where.get(edge.to);
    const x1 = from.x + NODE_W;
    const y1 = from.y + NODE_H / 2;
    const x2 = to.x;
    const y2 = to.y + NODE_H / 2;
    const bend = (x2 - x1) / 2;
    const path = el("path", {
      class: "flow-edge", d: `M ${x1} ${y1} C ${x1 + bend} ${y1}, ${x2 - bend} ${y2}, ${x2} ${y2}`,
      "marker-end": "url(#flow-arrow)",
    });
    path.dataset.from = edge.from;
    path.dataset.to = edge.to;
    svg.appendChild(path);
  }
  for (const node of nodes) {
    const state = states ? states[node.id] : null;
    const status = state ? String(state.status).replace(/[^a-z_]/g, "") : "definition";
    const group = el("g", {
      class: `flow-node node-${status}${node.id === selected ? " selected" : ""}`,
      transform: `translate(${node.x} ${node.y})`,
    });
    group.dataset.step = node.id;
    group.dataset.status = status;
    if (onSelect) {
      group.setAttribute("tabindex", "0");
      group.setAttribute("role", "button");
      group.setAttribute("aria-label", `Step ${node.id}: ${state ? state.status : "not run"}`);
      group.addEventListener("click", () => onSelect(node.id));
      group.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          onSelect(node.id);
        }
      });
    }
    group.appendChild(el("title", {}, `${node.id}${state ? ` — ${state.status}` : ""}`));
    group.appendChild(el("rect", { width: NODE_W, height: NODE_H, rx: 9, ry: 9 }));
    group.appendChild(el("text", { x: 12, y: 20, class: "flow-node-id" }, clipped(node.id)));
    const detail = state ? progress(state) : kindOf(node.step);
    group.appendChild(el("text", { x: 12, y: 38, class: "flow-node-detail" }, clipped(detail)));
    svg.appendChild(group);
  }
  return svg;
}
