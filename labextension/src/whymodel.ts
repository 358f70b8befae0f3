/**
 * The tooltip's "why" view's request: `POST attribute` for the current run, through one
 * `LatestRequest` (a newer question aborts the one in flight). It keeps no state: the tooltip
 * shows the answer, or the error it is thrown.
 */
import type { AnalysisModel } from './analysismodel';
import type { Attribution } from './api/attribution';
import type { LenscopeClient } from './api/client';
import { LatestRequest } from './request';

export class WhyModel {
  /** no `failed` hook: errors are thrown to the caller, which shows them where asked */
  private readonly request = new LatestRequest();

  constructor(
    private readonly client: LenscopeClient,
    private readonly analysis: AnalysisModel
  ) {}

  /**
   * Why the last analysis predicted what it did after text token `position`: the direct logit
   * attribution of `target` (a token id; default the actual next token), from the same model,
   * text and context; with `baseline`, of logit(target) − logit(baseline). A newer call aborts
   * this one; resolves with null when aborted or when the analysis was replaced meanwhile.
   */
  async attribute(position: number, target: number | null = null, top = 10, baseline: number | null = null): Promise<Attribution | null> {
    const run = this.analysis.run;
    if (!run) {
      return null;
    }
    const result = await this.request.run(signal =>
      this.client.attribute({ model: run.analysis.model, text: run.target.text, context: run.target.context, position, target, top, baseline }, signal)
    );
    return this.analysis.run?.analysis !== run.analysis ? null : result;
  }

  abort(): void {
    this.request.abort();
  }
}
