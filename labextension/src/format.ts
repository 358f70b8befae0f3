/** Token text for display: whitespace made visible, and always escaped by building DOM text. */

export function visible(token: string): string {
  return token
    .replace(/ /g, '\u00b7')
    .replace(/\t/g, '\u2192')
    .replace(/\r/g, '\u240d')
    .replace(/\n/g, '\u21b5');
}

/** An element with text content (never innerHTML: token strings are untrusted). */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

export function fmt(x: number, digits = 2): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '—';
}
