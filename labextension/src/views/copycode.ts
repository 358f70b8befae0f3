/**
 * "Copy as code": a button that puts on the clipboard a Python cell recomputing what its view
 * shows (`snippets.ts`). It says which snippet and request it copied last (`data-snippet`,
 * `data-request`), so a test can build the same cell.
 */
import { Clipboard } from '@jupyterlab/apputils';

import { el } from '../format';
import { snippetCode, SnippetRequest } from '../snippets';

/** Copy the cell for `s`; the button says "Copied" for a moment and keeps what it copied in its data. */
export function copyCode(button: HTMLElement, s: SnippetRequest): void {
  const code = snippetCode(s);
  Clipboard.copyToSystem(code);
  button.dataset.snippet = s.kind;
  button.dataset.request = JSON.stringify(s.request);
  button.dataset.copied = String(Number(button.dataset.copied ?? 0) + 1);
  const label = button.textContent;
  button.textContent = 'Copied';
  window.setTimeout(() => {
    button.textContent = label;
  }, 1200);
}

/** A "Copy as code" button; `what` names what the cell recomputes (its title). */
export function copyCodeButton(what: string, make: () => SnippetRequest | null, className = 'ls-button ls-copy-code'): HTMLButtonElement {
  const button = el('button', className, 'Copy as code');
  button.title = `Copy a Python cell that recomputes ${what} with lenscope's Python API and prints it`;
  button.addEventListener('click', () => {
    const s = make();
    if (s) {
      copyCode(button, s);
    }
  });
  return button;
}

/** The folder Jupyter serves, as the page's config says (what `PageConfig.getOption('serverRoot')` reads). */
export function serverRoot(): string {
  try {
    const config = JSON.parse(document.getElementById('jupyter-config-data')?.textContent ?? '{}') as { serverRoot?: string };
    return config.serverRoot || '.';
  } catch {
    return '.';
  }
}
