/**
 * The lenscope side panel, a compact dashboard of collapsible sections (`PanelSection`): the model
 * and SAE, the analysis (what it is of, status, legend), the selection's strongest units, the
 * workspace's actions (index, compare), then the longer ones: the neuron search, the tokens,
 * interventions, attention and the logit lens (those two are `<details>` of their own). Cards,
 * stored texts, patching and comparisons open as main-area tabs (`mainarea.ts`).
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
import { PanelSection } from './views/section';

export class LenscopePanel extends Panel {
  constructor(model: LenscopeModel, commands: CommandRegistry) {
    super();
    this.id = 'lenscope-panel';
    this.addClass('ls-panel');
    this.title.caption = 'lenscope';
    const analysis = new AnalysisView(model, commands, this.node);
    const neurons = new NeuronsView(model, commands);
    this.addWidget(new PanelSection('model', 'Model and SAE', new ModelPicker(model)));
    this.addWidget(new PanelSection('analysis', 'Analysis', analysis));
    this.addWidget(new PanelSection('strongest', 'Strongest neurons', neurons));
    const features = new PanelSection('features', 'Strongest SAE features', neurons.features);
    features.hide(); // until a run has SAE features
    neurons.onFeatures = shown => features.setHidden(!shown);
    this.addWidget(features);
    this.addWidget(new PanelSection('workspace', 'Workspace', new JobsView(model, commands)));
    this.addWidget(new PanelSection('find', 'Find neurons', neurons.finder));
    this.addWidget(new PanelSection('tokens', 'Tokens', analysis.tokens));
    this.addWidget(new PanelSection('interventions', 'Interventions', new InterventionsView(model)));
    this.addWidget(new AttentionView(model, commands));
    this.addWidget(new LogitLensView(model, commands)); // with commands: its heatmap button shows
  }
}
