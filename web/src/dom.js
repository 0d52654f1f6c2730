// Small DOM helpers: elements are built with text nodes only (never
// innerHTML), so no figure or name from the API can inject markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

function fill(node, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      node.addEventListener(k.slice(2), v);
    } else if (k === 'text') {
      node.textContent = v;
    } else {
      node.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** An HTML element: h('button', {class: 'x', onclick: f}, 'Label'). */
export function h(tag, attrs, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

/** An SVG element. */
export function s(tag, attrs, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** Replaces the children of `node`. */
export function put(node, ...children) {
  node.replaceChildren();
  return fill(node, {}, children);
}

/** The element with this id. */
export function byId(id) {
  return document.getElementById(id);
}
