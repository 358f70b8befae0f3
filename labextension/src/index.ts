/**
 * lenscope's JupyterLab plugin: it only wires. The model (`model.ts`) holds the state, views
 * (`views/`, `panel.ts`, `editor/`) follow its signals, commands live in `commands.ts`.
 * The model is provided as `ILenscope` for other plugins.
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Clipboard, ICommandPalette } from '@jupyterlab/apputils';
import { EditorExtensionRegistry, IEditorExtensionRegistry } from '@jupyterlab/codemirror';
import { IEditorTracker } from '@jupyterlab/fileeditor';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ServerConnection } from '@jupyterlab/services';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { LabIcon, ToolbarButton } from '@jupyterlab/ui-components';

import { LenscopeClient } from './api/client';
import { addCommands } from './commands';
import { cardJson } from './export';
import { annotationExtension } from './editor/annotations';
import { AttentionMode } from './editor/attentionmode';
import { InlineView } from './editor/inline';
import { MainViews } from './mainarea';
import { addPictureCommands, PictureCommandIDs } from './pictures';
import { addProbeCommands } from './probe';
import { LenscopeModel } from './model';
import { LenscopePanel } from './panel';
import { readSettings } from './settings';
import { CommandIDs, ILenscope } from './tokens';
import { copyCode } from './views/copycode';
import { outputsPlugin } from './mime/plugin';

export { ILenscope, CommandIDs } from './tokens';
export type { LenscopeModel, Run, Status } from './model';

const PLUGIN_ID = 'lenscope:plugin';

const ICON = new LabIcon({
  name: 'lenscope:icon',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">' +
    '<path d="M10 2a8 8 0 0 1 6.32 12.9l5.39 5.4-1.42 1.4-5.39-5.38A8 8 0 1 1 10 2zm0 2a6 6 0 1 0 0 12 6 6 0 0 0 0-12z"/>' +
    '<rect x="6" y="8" width="2" height="4"/><rect x="9" y="6" width="2" height="8"/><rect x="12" y="9" width="2" height="3"/></g></svg>'
});

const plugin: JupyterFrontEndPlugin<ILenscope> = {
  id: PLUGIN_ID,
  description: 'A language model’s predictions and neurons, inline on your text',
  autoStart: true,
  provides: ILenscope,
  requires: [IEditorExtensionRegistry, ISettingRegistry],
  optional: [ICommandPalette, INotebookTracker, IEditorTracker, ILayoutRestorer],
  activate: async (
    app: JupyterFrontEnd,
    extensions: IEditorExtensionRegistry,
    settingRegistry: ISettingRegistry,
    palette: ICommandPalette | null,
    notebooks: INotebookTracker | null,
    editors: IEditorTracker | null,
    restorer: ILayoutRestorer | null
  ): Promise<ILenscope> => {
    const serverSettings = ServerConnection.makeSettings();
    const client = new LenscopeClient(serverSettings.baseUrl, (url, init) => ServerConnection.makeRequest(url, init, serverSettings));
    // the defaults live in schema/plugin.json; the registry's composite carries them
    const settings = await settingRegistry.load(PLUGIN_ID);
    const model = new LenscopeModel(client, readSettings(settings.composite));
    settings.changed.connect(() => (model.settings = readSettings(settings.composite)));

    new InlineView(model);
    const attentionMode = new AttentionMode(model);
    extensions.addExtension({
      name: 'lenscope:annotations',
      factory: () => EditorExtensionRegistry.createImmutableExtension(annotationExtension({
            openNeuron: (layer, index) => model.openNeuron(layer, index),
            openFeature: index => model.openFeature(index),
            attribute: (position, target, baseline) => model.attribute(position, target, 10, baseline ?? null),
            logitLens: position => {
              model.updateLens({ token: position });
              return model.logitLens(position);
            },
            openHead: (name, layer, head) => void app.commands.execute(CommandIDs.openHead, { model: name, layer, head }),
            openWaterfall: (position, target, baseline) => void app.commands.execute(PictureCommandIDs.waterfall, { position, target, baseline }),
            openLensHeatmap: () => void app.commands.execute(PictureCommandIDs.lensHeatmap),
            ablate: (what, position) => void app.commands.execute(CommandIDs.ablate, { component: what.component, layer: what.layer, index: what.index, position }),
            copyWhyCode: (button, position, target, baseline) => {
              const run = model.run;
              if (run) {
                const request = { model: run.analysis.model, text: run.target.text, context: run.target.context, position, target, baseline, top: 10 };
                copyCode(button, { kind: 'attributionSnippet', request });
              }
            }
          }, attentionMode.hooks))
    });

    const panel = new LenscopePanel(model, app.commands);
    panel.title.icon = ICON;
    app.shell.add(panel, 'right', { rank: 900 });
    restorer?.add(panel, 'lenscope-panel'); // open again after a reload when it was open

    const views = new MainViews(app, model, ICON, restorer);
    model.neuronRequested.connect((_, args) => {
      const tab = views.openCard(args);
      if (!tab.toolbar.node.querySelector('.ls-copy-card')) {
        const copy = new ToolbarButton({ label: 'Copy JSON', className: 'ls-copy-card', tooltip: 'Copy the card as JSON', onClick: () => void app.commands.execute(CommandIDs.copyCard) });
        tab.toolbar.addItem('copy', copy);
      }
    });
    model.featureRequested.connect((_, args) => {
      const tab = views.openFeature(args);
      if (!tab.toolbar.node.querySelector('.ls-copy-card')) {
        const copy = new ToolbarButton({
          label: 'Copy JSON',
          className: 'ls-copy-card',
          tooltip: 'Copy the feature card as JSON',
          onClick: () => tab.content.card && Clipboard.copyToSystem(cardJson(tab.content.card))
        });
        tab.toolbar.addItem('copy', copy);
      }
    });
    addCommands(app, model, views, { app, notebooks, editors }, panel.id, ICON, palette);
    addPictureCommands(app, model, views, palette);
    addProbeCommands(app, model, views, palette);

    // saving a file may start updates of the indexes that cover it (server side): the panel shows them
    app.serviceManager.contents.fileChanged.connect((_, change) => {
      const saved = change.type === 'save' ? change.newValue : null;
      if (saved?.path) {
        model.jobs.saved(saved.path, saved.last_modified);
      }
    });

    // a closed file takes its analysis with it (the panel must not show a closed file's tokens)
    for (const tracker of [notebooks, editors]) {
      // (Lumino emits `disposed` before it detaches the node: ask whose editor it was, not whether it is gone)
      tracker?.widgetAdded.connect((_, widget) => widget.disposed.connect(() => model.forget(t => widget.node.contains(t.view.dom))));
    }
    void model.refreshModels();
    return model;
  }
};

export default [plugin, outputsPlugin];
