/**
 * The lenscope HTTP client. No JupyterLab imports: the caller passes a `fetch`-like function
 * that adds auth (in JupyterLab, `ServerConnection.makeRequest`), so any other client can
 * reuse this one. Speaks msgpack both ways.
 */
import { decode, encode } from '@msgpack/msgpack';

import { Activations, Analysis, AnalyzeResponseWire, ActivationsResponseWire } from './analysis';
import { Attention, AttentionRequest, AttentionResponseWire } from './attention';
import { AttributeRequest, Attribution, AttributionResponseWire } from './attribution';
import { LogitLens, LogitLensRequest, LogitLensResponseWire } from './logitlens';
import { parseServerTiming } from './timing';
import { UnitActivations, UnitActivationsRequest, UnitActivationsResponseWire } from './units';
import type { components } from './schema';

/** `sae` and `top_features` have server defaults (no SAE, 10): a request may leave them out. */
export type AnalyzeRequest = Omit<components['schemas']['AnalyzeRequest'], 'sae' | 'top_features' | 'token_ids'> &
  Partial<Pick<components['schemas']['AnalyzeRequest'], 'sae' | 'top_features' | 'token_ids'>>;
export type { AttributeRequest } from './attribution';
export type ActivationsRequest = components['schemas']['ActivationsRequest'];
export type ModelsResponse = components['schemas']['ModelsResponse'];
export type ModelEntry = components['schemas']['ModelEntry'];
export type HealthResponse = components['schemas']['HealthResponse'];
export type ErrorResponse = components['schemas']['ErrorResponse'];
export type NeuronCard = components['schemas']['NeuronCardResponse'];
export type IndexBuildRequest = components['schemas']['IndexBuildRequest'];
export type Job = components['schemas']['JobResponse'];
export type IndexesResponse = components['schemas']['IndexesResponse'];
export type JobsResponse = components['schemas']['JobsResponse'];
export type NeuronSearch = components['schemas']['NeuronSearchResponse'];
export type CompareRequest = components['schemas']['CompareRequest'];
export type CompareJobResult = components['schemas']['CompareJobResult'];
export type CompareRow = components['schemas']['CompareRow'];
export type CompareGroup = components['schemas']['CompareGroup'];
export type ExportLink = components['schemas']['ExportLink'];
export type IndexJobResult = components['schemas']['IndexJobResult'];
export type IndexEntry = components['schemas']['IndexEntry'];
export type NeuronExample = components['schemas']['NeuronExample'];
export type SampleExample = components['schemas']['SampleExample'];
export type IndexDocument = components['schemas']['IndexDocumentResponse'];
export type HeadCard = components['schemas']['HeadCardResponse'];
/** A head card's questions: which tokens it reads over, and a source / query token (text or id). */
export interface HeadCardQuestions {
  vocab?: 'frequent' | 'all';
  source?: string;
  query?: string;
}
export type TokenPair = components['schemas']['TokenPair'];
export type NeuronInputs = components['schemas']['NeuronInputsResponse'];
export type LogitEffect = components['schemas']['LogitEffect'];
export type PatchRequest = components['schemas']['PatchRequest'];
export type PatchResponse = components['schemas']['PatchResponse'];
export type HeadScores = components['schemas']['HeadScoresResponse'];
export type HeadScoresTextRequest = components['schemas']['HeadScoresTextRequest'];
export type SweepRequest = components['schemas']['SweepRequest'];
export type SweepResponse = components['schemas']['SweepResponse'];
export type SweptUnit = components['schemas']['SweptUnit'];

/** `?index=NAME` (or `&index=NAME`) when an index is named, else nothing. */
function indexQuery(name: string | null | undefined, sep: '?' | '&'): string {
  return name ? `${sep}index=${encodeURIComponent(name)}` : '';
}

export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

const MSGPACK = 'application/msgpack';

/** An error the server answered with: its HTTP status and `{error: {code, message}}`. */
export class LenscopeApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfter: number | null = null
  ) {
    super(message);
    this.name = 'LenscopeApiError';
  }
}

export class LenscopeClient {
  /**
   * @param baseUrl the Jupyter server's base URL (ends with '/')
   * @param fetchFn a fetch that authenticates (defaults to the global fetch)
   */
  constructor(
    private readonly baseUrl: string,
    private readonly fetchFn: FetchLike = (url, init) => fetch(url, init)
  ) {}

  async analyze(request: AnalyzeRequest, signal?: AbortSignal): Promise<Analysis> {
    const { body, headers } = await this.request<AnalyzeResponseWire>('POST', 'analyze', request, signal);
    return new Analysis(body, request.text, parseServerTiming(headers.get('Server-Timing')));
  }

  async activations(request: ActivationsRequest, signal?: AbortSignal): Promise<Activations> {
    return new Activations(await this.call<ActivationsResponseWire>('POST', 'activations', request, signal));
  }

  /** Named units (`L0.N224`, `F1741` of `sae`) at every token of the text: one column per unit, in the order asked. */
  async unitActivations(request: Partial<UnitActivationsRequest> & Pick<UnitActivationsRequest, 'text' | 'units'>, signal?: AbortSignal): Promise<UnitActivations> {
    return new UnitActivations(await this.call<UnitActivationsResponseWire>('POST', 'unit_activations', request, signal), request.text);
  }

  /** Direct logit attribution of the prediction at text token `position` (same text and context as the analysis). */
  async attribute(request: Partial<AttributeRequest> & Pick<AttributeRequest, 'text' | 'position'>, signal?: AbortSignal): Promise<Attribution> {
    return new Attribution(await this.call<AttributionResponseWire>('POST', 'attribute', request, signal));
  }

  /** Every text token's `k` strongest sources for every head of `layers` (default: all). */
  async attention(request: Partial<AttentionRequest> & Pick<AttentionRequest, 'text'>, signal?: AbortSignal): Promise<Attention> {
    return new Attention(await this.call<AttentionResponseWire>('POST', 'attention', request, signal));
  }

  /** The logit lens at text tokens `positions` (default: every token): each block's residual stream through the final LayerNorm and the unembedding. */
  async logitLens(request: Partial<LogitLensRequest> & Pick<LogitLensRequest, 'text'>, signal?: AbortSignal): Promise<LogitLens> {
    return new LogitLens(await this.call<LogitLensResponseWire>('POST', 'logit_lens', request, signal));
  }

  /** Activation patching: the restored share of logit(target) − logit(baseline) per layer, component, position and head. */
  patch(request: Partial<PatchRequest> & Pick<PatchRequest, 'clean' | 'corrupted' | 'target' | 'baseline'>, signal?: AbortSignal): Promise<PatchResponse> {
    return this.call<PatchResponse>('POST', 'patch', request, signal);
  }

  /** Rank by causal effect: every neuron, head (and the SAE's features) zero-ablated in turn at text token `position` (`method: 'estimate'`: gradient × activation), beside the direct-attribution ranking. */
  sweep(request: Partial<SweepRequest> & Pick<SweepRequest, 'text' | 'position'>, signal?: AbortSignal): Promise<SweepResponse> {
    return this.call<SweepResponse>('POST', 'sweep', request, signal);
  }

  models(): Promise<ModelsResponse> {
    return this.call<ModelsResponse>('GET', 'models');
  }

  /** `indexName`: the index to read (`GET indexes`); without it the server's default, the model's with the most tokens. */
  neuronCard(model: string, layer: number, index: number, indexName?: string | null): Promise<NeuronCard> {
    return this.call<NeuronCard>('GET', `neurons/${encodeURIComponent(model)}/${layer}/${index}${indexQuery(indexName, '?')}`);
  }

  /** SAE feature `index`'s card from the model's feature index for that SAE (a NeuronCard with `sae` set, layer 0). */
  featureCard(model: string, sae: string, index: number, indexName?: string | null): Promise<NeuronCard> {
    return this.call<NeuronCard>('GET', `features/${encodeURIComponent(model)}/${encodeURIComponent(sae)}/${index}${indexQuery(indexName, '?')}`);
  }

  /** SAE features whose top examples peak on a token, or (`by: 'description'`) whose description matches words (hits: layer 0, index = the feature). */
  searchFeatures(model: string, sae: string, token: string, by: 'token' | 'description' = 'token', indexName?: string | null): Promise<NeuronSearch> {
    return this.call<NeuronSearch>('GET', `features/${encodeURIComponent(model)}/${encodeURIComponent(sae)}/search?q=${encodeURIComponent(token)}&by=${by}${indexQuery(indexName, '&')}`);
  }

  /** What neuron (layer, index) reads: the tokens that most raise its pre-activation on their own. */
  neuronInputs(model: string, layer: number, index: number, vocab: 'frequent' | 'all' = 'frequent'): Promise<NeuronInputs> {
    return this.call<NeuronInputs>('GET', `neurons/${encodeURIComponent(model)}/${layer}/${index}/inputs?vocab=${vocab}`);
  }

  /** Every head's role scores on the repeated-random-token probe, with the in-context gain and the first probe sequence's ids. */
  headScores(model: string, length?: number, seed?: number): Promise<HeadScores> {
    const params = new URLSearchParams();
    if (length !== undefined) {
      params.set('length', String(length));
    }
    if (seed !== undefined) {
      params.set('seed', String(seed));
    }
    const query = params.toString();
    return this.call<HeadScores>('GET', `heads/${encodeURIComponent(model)}/scores${query ? `?${query}` : ''}`);
  }

  /** Every head's role scores on a text (its own repeats and duplicates), in analyze's windows. */
  headScoresOnText(request: Partial<HeadScoresTextRequest> & Pick<HeadScoresTextRequest, 'text'>, signal?: AbortSignal): Promise<HeadScores> {
    return this.call<HeadScores>('POST', 'head_scores_text', request, signal);
  }

  /** Head (layer, head) read from its weights: OV and QK token pairs, copying score. */
  headCard(model: string, layer: number, head: number, ask: HeadCardQuestions = {}): Promise<HeadCard> {
    // `vocab` (frequent tokens or all), `source` / `query`: a token's text or id, its OV / QK row
    const q = new URLSearchParams({ vocab: ask.vocab ?? 'frequent' });
    for (const key of ['source', 'query'] as const) {
      const value = ask[key];
      if (value !== undefined && value !== '') {
        q.set(key, value);
      }
    }
    return this.call<HeadCard>('GET', `heads/${encodeURIComponent(model)}/${layer}/${head}?${q.toString()}`);
  }

  /** ``by: 'description'`` finds neurons whose one-line description matches words ("closing bracket"). */
  searchNeurons(model: string, token: string, by: 'token' | 'description' = 'token', indexName?: string | null): Promise<NeuronSearch> {
    return this.call<NeuronSearch>('GET', `neurons/${encodeURIComponent(model)}/search?q=${encodeURIComponent(token)}&by=${by}${indexQuery(indexName, '&')}`);
  }

  indexes(): Promise<IndexesResponse> {
    return this.call<IndexesResponse>('GET', 'indexes');
  }

  buildIndex(request: IndexBuildRequest): Promise<Job> {
    return this.call<Job>('POST', 'indexes', request);
  }

  compareCorpus(request: CompareRequest): Promise<Job> {
    return this.call<Job>('POST', 'compare', request);
  }

  /** The text of one file as the index `index` stored it (for examples not in this workspace). */
  indexDocument(index: string, path: string): Promise<IndexDocument> {
    return this.call<IndexDocument>('GET', `indexes/${encodeURIComponent(index)}/document?path=${encodeURIComponent(path)}`);
  }

  /** Absolute URL of an export (a download; Jupyter's cookie authenticates a plain GET). */
  exportUrl(link: ExportLink): string {
    return `${this.baseUrl}lenscope/api/${link.url}`;
  }

  /** Every job the server knows (index updates started by saving a file among them). */
  jobs(): Promise<JobsResponse> {
    return this.call<JobsResponse>('GET', 'jobs');
  }

  job(id: string): Promise<Job> {
    return this.call<Job>('GET', `jobs/${encodeURIComponent(id)}`);
  }

  cancelJob(id: string): Promise<Job> {
    return this.call<Job>('DELETE', `jobs/${encodeURIComponent(id)}`);
  }

  health(): Promise<HealthResponse> {
    return this.call<HealthResponse>('GET', 'health');
  }

  private async call<T>(method: string, route: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    return (await this.request<T>(method, route, body, signal)).body;
  }

  private async request<T>(method: string, route: string, body?: unknown, signal?: AbortSignal): Promise<{ body: T; headers: Headers }> {
    const init: RequestInit = { method, headers: { Accept: MSGPACK }, signal };
    if (body !== undefined) {
      init.body = encode(body) as BodyInit;
      (init.headers as Record<string, string>)['Content-Type'] = MSGPACK;
    }
    const response = await this.fetchFn(`${this.baseUrl}lenscope/api/${route}`, init);
    const payload = await decodeBody(response);
    if (!response.ok) {
      const err = (payload as ErrorResponse | null)?.error;
      const retry = response.headers.get('Retry-After');
      throw new LenscopeApiError(
        response.status,
        err?.code ?? 'http_error',
        err?.message ?? `lenscope server answered ${response.status} ${response.statusText}`,
        retry ? Number(retry) : null
      );
    }
    return { body: payload as T, headers: response.headers };
  }
}

/** Decode a response body by its Content-Type (msgpack or JSON); null when empty or unreadable. */
export async function decodeBody(response: Response): Promise<unknown> {
  const type = response.headers.get('Content-Type') ?? '';
  const buffer = new Uint8Array(await response.arrayBuffer());
  if (buffer.length === 0) {
    return null;
  }
  try {
    if (type.startsWith(MSGPACK)) {
      return decode(buffer);
    }
    return JSON.parse(new TextDecoder().decode(buffer));
  } catch {
    return null;
  }
}
