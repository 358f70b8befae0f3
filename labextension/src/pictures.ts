/**
 * The pictures of the current analysis as lenscope tabs (`MainViews.dock`): the logit lens
 * heatmap, the prediction's parts as a waterfall, the full attention view. One tab of each kind:
 * opening one again (another token, a new analysis) replaces it. Not restored on reload: they
 * picture this session's analysis.
 */
import type { JupyterFrontEnd } from '@jupyterlab/application';
import type { ICommandPalette } from '@jupyterlab/apputils';
import type { Widget } from '@lumino/widgets';

import type { MainViews } from './mainarea';
import type { LenscopeModel } from './model';
import { AttentionPicturesView } from './views/attentionview';
import { LensHeatmapView } from './views/lensheatmap';
import { WaterfallView } from './views/waterfall';

export namespace PictureCommandIDs {
  /** the logit lens at every token of the current analysis, as a heatmap */
  export const lensHeatmap = 'lenscope:open-logit-lens-heatmap';
  /** args: {position, target?, baseline?}: the parts of that prediction as a waterfall */
  export const waterfall = 'lenscope:open-waterfall';
  /** args: {layer?, head?}: every head of a layer side by side, one large with token labels */
  export const attention = 'lenscope:open-attention-view';
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

export function addPictureCommands(app: JupyterFrontEnd, model: LenscopeModel, views: MainViews, palette: ICommandPalette | null): void {
  const open = new Map<string, Widget>();
  const dock = (kind: string, content: Widget, label: string): void => {
    open.get(kind)?.dispose();
    const tab = views.mainAreaTab(content, label, `lenscope-picture-${kind}`);
    open.set(kind, tab);
    views.dock(tab);
  };
  const hasRun = () => !!model.run;
  app.commands.addCommand(PictureCommandIDs.lensHeatmap, {
    label: 'lenscope: Logit lens heatmap of the analysis',
    caption: 'The next token’s log-prob (or rank) after the embeddings and each block, at every token of the analyzed text',
    isEnabled: hasRun,
    execute: () => dock('lens', new LensHeatmapView(model), 'logit lens')
  });
  app.commands.addCommand(PictureCommandIDs.waterfall, {
    label: 'lenscope: Parts of the prediction (waterfall)',
    caption: 'The direct parts of the prediction after a token, as a waterfall (default: the logit lens’ current token)',
    isEnabled: hasRun,
    execute: args => {
      const n = model.run?.analysis.tokens.length ?? 1;
      const position = Math.min(n - 1, num(args.position) ?? model.lens.token ?? Math.max(0, n - 2));
      dock('waterfall', new WaterfallView({ position, target: num(args.target), baseline: num(args.baseline) }, model, app.commands), `why @${position}`);
    }
  });
  app.commands.addCommand(PictureCommandIDs.attention, {
    label: 'lenscope: Attention view of the analysis',
    caption: 'Every head of a layer side by side, one large with the tokens on both axes',
    isEnabled: hasRun,
    execute: args => dock('attention', new AttentionPicturesView(model, app.commands, { layer: num(args.layer) ?? undefined, head: num(args.head) ?? undefined }), 'attention')
  });
  for (const command of [PictureCommandIDs.lensHeatmap, PictureCommandIDs.waterfall, PictureCommandIDs.attention]) {
    palette?.addItem({ command, category: 'lenscope' });
  }
}
