/**
 * The notebook output of `lenscope.notebook.show(result)`: the analyzed text in a read-only
 * CodeMirror view carrying the editor's own annotation extension, so its tokens have exactly the
 * decorations' colours and hover tooltip (top-k, rank, log-prob, neuron chips, Why?), and the
 * keyboard keys (Alt+Shift+→/←, Alt+Shift+K) work the same. A legend says what the colours mean.
 * It needs no kernel: everything it shows is in the saved output.
 */
import { EditorState } from '@codemirror/state';
import { EditorView, tooltips } from '@codemirror/view';
import { jupyterTheme } from '@jupyterlab/codemirror';
import type { CommandRegistry } from '@lumino/commands';
import type { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';

import type { ScaleName } from '../colors';
import type { Attention } from '../api/attention';
import { annotationExtension, AttentionModeHooks, setAnnotation, setAttention } from '../editor/annotations';
import type { TooltipActions } from '../editor/tooltip';
import { el } from '../format';
import { renderCard } from '../views/card';
import { diffLegend, logprobLegend } from '../views/legend';
import { annotationOf, attentionWeights, describeOutput, OutputPayload, parseOutput, PictureOutput, TextOutput } from './payload';
import { renderAttentionHeads, FULL_K } from '../views/attentionview';
import { copyCodeButton } from '../views/copycode';
import { renderLensHeatmap } from '../views/lensheatmap';
import { renderWaterfall } from '../views/waterfall';
import { CommandIDs } from '../tokens';

/** What an output needs from the page: the colour settings, the tooltip's actions, the commands (a card's examples open files). */
export interface OutputHost {
  colours(): { scale: ScaleName; floor: number };
  actions(payload: TextOutput): Omit<TooltipActions, 'toggleHead'>;
  commands: CommandRegistry;
}

export class LenscopeOutput extends Widget implements IRenderMime.IRenderer {
  private view: EditorView | null = null;

  constructor(
    private readonly mimeType: string,
    private readonly host: OutputHost
  ) {
    super();
    this.addClass('ls-output');
  }

  renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    this.view?.destroy();
    this.view = null;
    this.node.replaceChildren();
    let payload: OutputPayload;
    try {
      payload = parseOutput(this.mimeType, model.data[this.mimeType]);
    } catch (err) {
      this.node.dataset.state = 'error';
      this.node.append(el('div', 'ls-error', `lenscope cannot show this output: ${err instanceof Error ? err.message : String(err)}`));
      return Promise.resolve();
    }
    this.node.dataset.state = 'ready';
    this.node.dataset.kind = payload.kind;
    if (payload.kind === 'card') {
      // the card tab's own rendering: examples coloured by activation, logit effects, histogram
      this.node.dataset.model = payload.card.model;
      this.node.append(el('div', 'ls-output-head', describeOutput(payload)), renderCard(payload.card, this.host.commands));
      return Promise.resolve();
    }
    if (payload.kind === 'lens' || payload.kind === 'waterfall' || payload.kind === 'attention') {
      this.node.append(el('div', 'ls-output-head', describeOutput(payload)), renderPicture(payload, this.host));
      return Promise.resolve();
    }
    const { scale, floor } = this.host.colours();
    const a = payload.analysis;
    this.node.dataset.model = a.model;
    this.node.dataset.tokens = String(a.length);
    const head = el('div', 'ls-output-head');
    head.append(el('span', 'ls-output-title', describeOutput(payload)));
    head.append(payload.kind === 'comparison' ? diffLegend(a.model, payload.compare.analysis.model, payload.compare.clamp) : logprobLegend(scale, floor));
    const body = el('div', 'ls-output-text');
    this.node.append(head);
    const attention = payload.kind === 'analysis' && payload.attention ? attentionMode(payload.attention, () => this.view) : null;
    if (attention) {
      this.node.dataset.attention = 'true';
      this.node.append(attention.node);
    }
    this.node.append(body);
    this.view = new EditorView({
      parent: body,
      state: EditorState.create({
        doc: payload.text,
        extensions: [
          EditorState.readOnly.of(true),
          EditorView.lineWrapping,
          jupyterTheme,
          // as JupyterLab's own editors: on <body>, positioned absolutely (Lumino's `contain`)
          tooltips({ position: 'absolute', parent: document.body }),
          EditorView.contentAttributes.of({ 'aria-label': `${describeOutput(payload)}: Alt+Shift+→/← move between tokens, Alt+Shift+K shows a token's predictions` }),
          annotationExtension(this.host.actions(payload), attention?.hooks)
        ]
      })
    });
    this.view.dispatch({ effects: setAnnotation.of(annotationOf(payload, scale, floor)) });
    return Promise.resolve();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.view?.destroy();
    this.view = null;
    super.dispose();
  }
}

/**
 * The editor's attention mode over an output with attention data: while it is on, hovering a
 * token (or moving the caret) colours the text tokens the chosen heads attend to from it (the
 * editor's attention layer, alpha = weight / the row's largest), and the tooltip steps aside.
 */
function attentionMode(attention: Attention, view: () => EditorView | null): { node: HTMLElement; hooks: AttentionModeHooks } {
  const state = { on: false, layer: attention.layers[0], heads: Array.from({ length: attention.nHeads }, (_, h) => h), token: null as number | null };
  const draw = (): void => {
    const v = view();
    if (!v) {
      return;
    }
    if (!state.on || state.token === null || !state.heads.length) {
      v.dispatch({ effects: setAttention.of(null) });
      return;
    }
    const { weights, max } = attentionWeights(attention, state.layer, state.heads, state.token);
    v.dispatch({ effects: setAttention.of({ position: state.token, target: -1, layer: state.layer, head: -1, weights, max }) });
  };
  const node = el('div', 'ls-output-attention');
  const toggle = el('button', 'ls-button ls-output-attention-mode', 'Attention mode');
  toggle.title = 'Hover a token: the tokens the chosen heads attend to from it';
  toggle.setAttribute('aria-pressed', 'false');
  toggle.addEventListener('click', () => {
    state.on = !state.on;
    toggle.setAttribute('aria-pressed', String(state.on));
    draw();
  });
  node.append(toggle);
  const layer = el('select', 'ls-output-attention-layer');
  layer.setAttribute('aria-label', 'layer');
  for (const l of attention.layers) {
    const option = el('option', '', `L${l}`);
    option.value = String(l);
    layer.append(option);
  }
  layer.addEventListener('change', () => {
    state.layer = Number(layer.value);
    heads.querySelectorAll<HTMLElement>('.ls-output-head-chip').forEach(chip => (chip.title = shareTitle(Number(chip.dataset.head))));
    draw();
  });
  const shareTitle = (h: number): string => {
    const share = attention.positionalShare(state.layer, h);
    return Number.isFinite(share) ? `${Math.round(share * 100)}% of its score spread from position` : '';
  };
  const heads = el('span', 'ls-output-heads');
  for (let h = 0; h < attention.nHeads; h++) {
    const chip = el('button', 'ls-button ls-output-head-chip', `H${h}`);
    chip.dataset.head = String(h);
    chip.setAttribute('aria-pressed', 'true');
    chip.title = shareTitle(h);
    chip.addEventListener('click', () => {
      const on = !state.heads.includes(h);
      state.heads = on ? [...state.heads, h].sort((a, b) => a - b) : state.heads.filter(x => x !== h);
      chip.setAttribute('aria-pressed', String(on));
      draw();
    });
    heads.append(chip);
  }
  node.append(layer, heads, el('span', 'ls-muted', ' mean of the heads chosen'));
  return {
    node,
    hooks: {
      active: () => state.on,
      hover: (_, token) => {
        state.token = token;
        draw();
      }
    }
  };
}

/**
 * A picture output: the tab's own rendering (numbers on hover, the same data attributes) and
 * "Copy as code" of the same request. Its cards open through the commands (the server's model of
 * that name).
 */
function renderPicture(payload: PictureOutput, host: OutputHost): HTMLElement {
  const box = el('div', 'ls-output-picture');
  const context = payload.context ?? '';
  if (payload.kind === 'lens') {
    const { scale, floor } = host.colours();
    const view = renderLensHeatmap(payload.lens, payload.labels, { scale, floor });
    const request = { model: payload.lens.model, text: payload.text, context, top_k: payload.lens.k };
    view.querySelector('.ls-picture-bar')?.append(copyCodeButton('the logit lens at every token', () => ({ kind: 'logitLensHeatmapSnippet', request })));
    box.append(view);
  } else if (payload.kind === 'waterfall') {
    const a = payload.attribution;
    const commands = host.commands;
    const bar = el('div', 'ls-picture-bar');
    const request = { model: a.model, text: payload.text, context, position: a.position, target: a.target, baseline: a.baseline, top: a.topNeurons.length || 10 };
    bar.append(copyCodeButton('these parts of the prediction', () => ({ kind: 'attributionSnippet', request })));
    box.append(
      bar,
      renderWaterfall(a, {
        openNeuron: (layer, index) => void commands.execute(CommandIDs.openNeuron, { model: a.model, layer, index }),
        openFeature: index => void commands.execute(CommandIDs.openFeature, { model: a.model, sae: a.features?.sae ?? '', index }),
        openHead: (layer, head) => void commands.execute(CommandIDs.openHead, { model: a.model, layer, head })
      })
    );
  } else {
    const att = payload.attention;
    let layer = att.layers[0];
    let query = 0;
    const draw = (): void => {
      const view = renderAttentionHeads(att, layer, payload.labels, {
        onLayer: l => {
          layer = l;
          draw();
        },
        onPick: q => (query = q)
      });
      const request = { model: att.model, text: payload.text, context, layers: [layer], k: Math.min(att.k, FULL_K) };
      view.querySelector('.ls-picture-bar')?.append(copyCodeButton('this layer’s attention from the picked token', () => ({ kind: 'attentionSnippet', request: { ...request, token: query } })));
      box.replaceChildren(view);
    };
    draw();
  }
  return box;
}
