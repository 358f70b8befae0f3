/**
 * One request lifecycle, written once (the idea of jupyterlab-git's `taskhandler.ts`): every
 * request the models send goes through a `LatestRequest`, which
 *
 * - aborts the request in flight when a newer one starts (an `AbortController` per request; the
 *   task gets its signal), and drops a superseded request's result or error;
 * - surfaces errors in one place: the `failed` hook, where the error becomes the owner's state
 *   (without the hook the error is thrown to the caller);
 * - keeps one busy state: `busy`, and the `busy` hook, called with `true` whenever a request
 *   starts and with `false` when the request in flight ends (done, failed or aborted) with no
 *   newer one after it.
 *
 * No JupyterLab imports: it runs as it is under jest.
 */
import { isAbort } from './errors';

export interface RequestHooks {
  /** a request started (true), or the one in flight ended with none after it (false) */
  busy?: (busy: boolean) => void;
  /** the request in flight failed (not aborted): the one place its error becomes state */
  failed?: (error: unknown) => void;
}

export class LatestRequest {
  private controller: AbortController | null = null;

  constructor(private readonly hooks: RequestHooks = {}) {}

  /** A request is in flight. */
  get busy(): boolean {
    return this.controller !== null;
  }

  /**
   * Run `task` as the current request: the one in flight (if any) is aborted first. Resolves
   * with the task's value; with null when this request was superseded or aborted meanwhile,
   * or when it failed and the `failed` hook took the error. Without a `failed` hook a failure
   * is thrown.
   */
  async run<T>(task: (signal: AbortSignal) => Promise<T>): Promise<T | null> {
    this.controller?.abort();
    const controller = new AbortController();
    this.controller = controller;
    this.hooks.busy?.(true);
    let value: T;
    try {
      value = await task(controller.signal);
    } catch (err) {
      if (controller.signal.aborted || isAbort(err)) {
        this.end(controller);
        return null; // superseded or aborted: its error is nobody's
      }
      this.end(controller);
      if (!this.hooks.failed) {
        throw err;
      }
      this.hooks.failed(err);
      return null;
    }
    if (controller.signal.aborted) {
      return null; // superseded or aborted while it was answered
    }
    this.end(controller);
    return value;
  }

  /** Abort the request in flight, if any (busy goes false). */
  abort(): void {
    const controller = this.controller;
    if (controller) {
      controller.abort();
      this.end(controller);
    }
  }

  /** `controller`'s request ended: if it was the current one, nothing is in flight now. */
  private end(controller: AbortController): void {
    if (this.controller === controller) {
      this.controller = null;
      this.hooks.busy?.(false);
    }
  }
}
