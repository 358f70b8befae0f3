/** Error messages and hints for what the server (or the network) answered. */
import { LenscopeApiError } from './api/client';

export function describe(err: unknown): string {
  if (err instanceof LenscopeApiError) {
    return `${err.message} (${err.status} ${err.code})`;
  }
  return err instanceof Error ? err.message : String(err);
}

export function isAbort(err: unknown): boolean {
  return err instanceof DOMException ? err.name === 'AbortError' : err instanceof Error && err.name === 'AbortError';
}

export function hintFor(err: unknown): string {
  if (!(err instanceof LenscopeApiError)) {
    return 'Check that the Jupyter server is running.';
  }
  switch (err.code) {
    case 'input_too_large':
      return 'Select a shorter stretch of text.';
    case 'unknown_model':
    case 'model_unavailable':
      return 'Pick another model in the list above.';
    case 'queue_full':
    case 'worker_died':
      return `The model worker is busy or restarting; try again${err.retryAfter ? ` in ${err.retryAfter} s` : ''}.`;
    default:
      return 'See the message above; the server log has details.';
  }
}
