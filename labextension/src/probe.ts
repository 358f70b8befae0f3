/**
 * The induction probe's command: `lenscope:open-induction-probe` {model?} opens the probe's
 * sequence as a lenscope tab (`ProbeView`, through `MainViews.dock`), one at a time.
 */
import type { JupyterFrontEnd } from '@jupyterlab/application';
import type { ICommandPalette } from '@jupyterlab/apputils';
import type { Widget } from '@lumino/widgets';

import type { MainViews } from './mainarea';
import type { LenscopeModel } from './model';
import { OPEN_PROBE } from './views/headroles';
import { ProbeView } from './views/probeview';

export function addProbeCommands(app: JupyterFrontEnd, model: LenscopeModel, views: MainViews, palette: ICommandPalette | null): void {
  let open: Widget | null = null;
  app.commands.addCommand(OPEN_PROBE, {
    label: 'lenscope: Run the induction probe',
    caption: 'Repeated random tokens: the in-context gain, the top induction heads, and the sequence with attention mode on the top one',
    execute: args => {
      const name = (typeof args.model === 'string' && args.model) || model.run?.analysis.model || model.model;
      open?.dispose();
      open = views.dock(views.mainAreaTab(new ProbeView(model, app.commands, name), `induction probe · ${name}`, 'lenscope-induction-probe-tab'));
      return open;
    }
  });
  palette?.addItem({ command: OPEN_PROBE, category: 'lenscope' });
}
