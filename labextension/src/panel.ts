/**
 * The lenscope side panel: model picker, the analysis (what it is of, legend, tokens), the
 * strongest neurons, and the jobs. Neuron cards and comparisons open as main-area tabs.
 */
import type { CommandRegistry } from '@lumino/commands';
import { Panel } from '@lumino/widgets';

import type { LenscopeModel } from './model';
import { AnalysisView } from './views/analysis';
import { AttentionView } from './views/attention';
import { InterventionsView } from './views/interventions';
import { JobsView } from './views/jobs';
import { LogitLensView } from './views/logitlens';
import { NeuronsView } from './views/neurons';
import { ModelPicker } from './views/picker';

export class LenscopePanel extends Panel {
  constructor(model: LenscopeModel, commands: CommandRegistry) {
    super();
    this.id = 'lenscope-panel';
    this.addClass('ls-panel');
    this.title.caption = 'lenscope';
    this.addWidget(new ModelPicker(model));
    this.addWidget(new AnalysisView(model, commands, this.node));
    this.addWidget(new InterventionsView(model));
    this.addWidget(new AttentionView(model, commands));
    this.addWidget(new LogitLensView(model));
    this.addWidget(new NeuronsView(model, commands));
    this.addWidget(new JobsView(model, commands));
  }
}
