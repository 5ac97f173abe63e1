// Building the app's elements. Text from the server or the worker (descriptions, names, notes)
// always goes in as text, never as HTML.

/** ``el("button", {type: "button", onclick}, "text", child...)``. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else if (value === true) node.setAttribute(name, "");
    else node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** A Font Awesome icon (v4 names, as the categories carry them), hidden from screen readers. */
export function icon(name) {
  return el("i", { class: `fa fa-${name || "circle"}`, "aria-hidden": "true" });
}

let toastTimer = null;

/** A short message at the bottom of the screen, read out by screen readers. */
export function toast(text) {
  let box = document.getElementById("toast");
  if (!box) {
    box = el("div", { id: "toast", class: "toast", role: "status", "aria-live": "polite" });
    document.body.append(box);
  }
  box.textContent = text;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, 4000);
}
