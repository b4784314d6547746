// Building DOM nodes. Text always goes in as text nodes, so nothing from the API is ever
// parsed as HTML.

/** An element: h("a", {href: "#/x", class: "link", onclick: fn}, "text", child, ...). */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      node.className = value;
    } else if (name === "dataset") {
      Object.assign(node.dataset, value);
    } else if (value === true) {
      node.setAttribute(name, "");
    } else {
      node.setAttribute(name, String(value));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else if (child instanceof Node) node.appendChild(child);
    else node.appendChild(document.createTextNode(String(child)));
  }
}

/** Replace the children of ``node``. */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** A link to an http(s) URL taken from data, or plain text for any other scheme. */
export function safeLink(url, label) {
  try {
    const parsed = new URL(url);
    if (parsed.protocol === "http:" || parsed.protocol === "https:") {
      return h("a", { href: parsed.href, target: "_blank", rel: "noopener noreferrer" }, label ?? url);
    }
  } catch {
    // not a URL: shown as text below
  }
  return document.createTextNode(String(label ?? url));
}

/** A status pill: its colour comes from the status name. */
export function badge(status, extraClass = "") {
  const name = status ?? "none";
  return h("span", { class: `badge badge-${String(name).replace(/[^a-z_]/g, "")} ${extraClass}`.trim() }, name.replace(/_/g, " "));
}

/** Pretty-printed JSON in a <pre>. */
export function jsonBlock(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}
