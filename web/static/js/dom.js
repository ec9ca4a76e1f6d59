// Building DOM without HTML strings: every piece of text becomes a Text
// node or textContent, so nothing a user typed is ever parsed as markup.

/**
 * h(tag, props, ...children) creates an element. props: class, text
 * (textContent), dataset, on<event> listeners, and other attributes
 * (false/null skipped, true as an empty attribute). Children may be
 * nodes, strings (as text), arrays, or null/false (skipped).
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'dataset') {
      for (const [k, v] of Object.entries(value)) if (v != null) el.dataset[k] = v;
    }
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/**
 * Makes nodes el's children, moving only what changed place: nodes that
 * stay are not touched (focus, selection and hover survive), and focus
 * is restored if a focused node had to move.
 */
export function replaceKids(el, nodes) {
  const focused = el.contains(document.activeElement) ? document.activeElement : null;
  nodes.forEach((n, i) => {
    const at = el.childNodes[i];
    if (at !== n) el.insertBefore(n, at ?? null);
  });
  while (el.childNodes.length > nodes.length) el.lastChild.remove();
  if (focused && focused !== document.activeElement && focused.isConnected) focused.focus({ preventScroll: true });
}

/** Calls fn at most once per wait ms, with the latest arguments, after the calls stop. */
export function debounce(fn, wait) {
  let t = 0;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), wait);
  };
}
