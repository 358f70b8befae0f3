/**
 * Registers the renderer of lenscope's notebook outputs with JupyterLab's rendermime registry
 * (a plugin of this extension rather than a separate `mimeExtension`, so that a tooltip's chips
 * and "Why?" reach the lenscope model: its settings, API client and commands). Safe: the renderer
 * never injects HTML (token text goes in as text), so it also renders in untrusted notebooks.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import type { IRenderMime } from '@jupyterlab/rendermime-interfaces';

import type { TooltipActions } from '../editor/tooltip';
import type { LensColumn } from '../api/logitlens';
import { CommandIDs, ILenscope } from '../tokens';
import { OUTPUT_MIMES, serverExtrasBlocked, TextOutput } from './payload';
import { LenscopeOutput, OutputHost } from './renderer';

/** Ahead of text/html (rank 50 in JupyterLab's defaults) and JSON: lenscope's own view first. */
const RANK = 40;

function host(app: JupyterFrontEnd, lenscope: ILenscope | null): OutputHost {
  return {
    commands: app.commands,
    colours: () => ({ scale: lenscope?.settings.colorScale ?? 'surprise', floor: lenscope?.settings.logprobFloor ?? -10 }),
    actions: (payload: TextOutput): Omit<TooltipActions, 'toggleHead'> => {
      const model = payload.analysis.model;
      const blocked = (): string | null => {
        if (!lenscope) {
          return 'the lenscope panel is not loaded';
        }
        const names = lenscope.models.map(m => m.name);
        return serverExtrasBlocked(payload, names.length ? names : null);
      };
      const lens = new Map<number, Promise<LensColumn | null>>();
      return {
        openNeuron: (layer, index) => void app.commands.execute(CommandIDs.openNeuron, { model, layer, index }),
        openFeature: index => void app.commands.execute(CommandIDs.openFeature, { model, sae: payload.analysis.features?.sae ?? '', index }),
        openHead: (name, layer, head) => void app.commands.execute(CommandIDs.openHead, { model: name, layer, head }),
        attribute: (position, target, baseline) => {
          const why = blocked();
          if (why || !lenscope) {
            return Promise.reject(new Error(`no “Why?” here: ${why}`));
          }
          const { text, context } = payload;
          return lenscope.client.attribute({ model, text, context: context ?? '', position, target, baseline: baseline ?? null, top: 10 });
        },
        logitLens: position => {
          if (blocked() || !lenscope) {
            return Promise.resolve(null); // the line is left out
          }
          let pending = lens.get(position);
          if (!pending) {
            pending = lenscope.client
              .logitLens({ model, text: payload.text, context: payload.context ?? '', positions: [position], top_k: 5 })
              .then(l => l.at(position));
            pending.catch(() => lens.delete(position));
            lens.set(position, pending);
          }
          return pending;
        }
      };
    }
  };
}

export const outputsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'lenscope:notebook-outputs',
  description: 'Renders lenscope.notebook.show(result) outputs with the editor’s colours and tooltips',
  autoStart: true,
  requires: [IRenderMimeRegistry],
  optional: [ILenscope],
  activate: (app: JupyterFrontEnd, rendermime: IRenderMimeRegistry, lenscope: ILenscope | null): void => {
    const h = host(app, lenscope);
    const factory: IRenderMime.IRendererFactory = {
      safe: true,
      mimeTypes: OUTPUT_MIMES,
      defaultRank: RANK,
      createRenderer: options => new LenscopeOutput(options.mimeType, h)
    };
    rendermime.addFactory(factory, RANK);
  }
};
