/**
 * The one API client and its types, shared with the JupyterLab extension: imported from
 * ../../labextension/src (no copy), bundled by esbuild. Everything here is free of JupyterLab.
 */
export { LenscopeApiError, LenscopeClient } from '../../labextension/src/api/client';
export type { FetchLike, ModelsResponse, ModelEntry, NeuronCard, NeuronExample, LogitEffect } from '../../labextension/src/api/client';
export { Analysis } from '../../labextension/src/api/analysis';
export type { Prediction, NeuronHit, Candidate } from '../../labextension/src/api/analysis';
export { colorFor, surprise, diffColor, clampedDiff, activationColor } from '../../labextension/src/colors';
export { visible, fmt } from '../../labextension/src/format';
export { hintFor } from '../../labextension/src/errors';
export { UnitActivations } from '../../labextension/src/api/units';
export type { SaeEntry } from '../../labextension/src/api/features';
export { saesFor } from '../../labextension/src/saes';
