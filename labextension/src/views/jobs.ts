/**
 * The side panel's jobs: building the workspace's neuron index, and comparing two models over
 * the workspace. Each shows its newest job: progress, "cancelling…" as soon as cancel is
 * pressed, and its last state ("done", "failed: …", "cancelled") until the next job starts.
 * The index's newest job may be an update the server started because a file it covers was
 * saved: "updating the index after saving src/m05.py", then what it reused.
 */
import type { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import type { IndexEntry } from '../api/client';
import { el } from '../format';
import { isActive, JobKind, jobStatus, JobView } from '../jobs';
import type { LenscopeModel } from '../model';
import { CommandIDs } from '../tokens';

class JobSection {
  readonly node = el('div', 'ls-job');
  private readonly progress = el('progress', 'ls-progress');
  private readonly cancel = el('button', 'ls-action ls-cancel', 'cancel');
  private readonly status = el('span', 'ls-job-status ls-muted');
  readonly extra = el('div', 'ls-job-extra');
  private current: JobView | null = null;

  constructor(
    model: LenscopeModel,
    readonly kind: JobKind,
    title: string,
    button: HTMLButtonElement
  ) {
    this.node.classList.add(kind === 'index' ? 'ls-index' : 'ls-compare-corpus');
    this.progress.hidden = true;
    this.cancel.hidden = true;
    this.cancel.addEventListener('click', () => this.current && void model.jobs.cancel(this.current.job.id));
    const line = el('div', 'ls-job-line');
    line.append(this.progress, this.cancel);
    this.node.append(el('h3', '', title), button, line, this.status, this.extra);
  }

  show(view: JobView): void {
    this.current = view;
    const { job } = view;
    const running = isActive(job);
    this.node.dataset.jobState = view.cancelling ? 'cancelling' : job.state;
    this.node.dataset.trigger = job.trigger ?? 'request'; // "save": an update after saving a file it covers
    this.progress.hidden = false;
    this.cancel.hidden = !running;
    this.cancel.disabled = view.cancelling;
    const p = job.progress;
    // always a value: a <progress> without one is indeterminate and keeps animating
    this.progress.max = p && p.tokens_total > 0 ? p.tokens_total : 1;
    this.progress.value = p ? p.tokens_done : job.state === 'done' ? 1 : 0;
    if (job.state === 'done') {
      this.progress.value = this.progress.max;
    }
    this.progress.classList.toggle('ls-progress-ended', !running);
    this.status.textContent = jobStatus(view);
    this.status.className = `ls-job-status ${job.state === 'failed' ? 'ls-error' : 'ls-muted'}`;
  }
}

export class JobsView extends Widget {
  private readonly index: JobSection;
  private readonly compare: JobSection;
  private readonly indexList = el('p', 'ls-index-list ls-muted');

  constructor(
    private readonly model: LenscopeModel,
    commands: CommandRegistry
  ) {
    super();
    this.addClass('ls-jobs');
    const build = el('button', 'ls-action ls-build-index', 'Index the workspace');
    build.title = 'Build a neuron index over the files of this workspace (Neuroscope over your own text)';
    build.addEventListener('click', () => void model.buildIndex());
    this.index = new JobSection(model, 'index', 'Neuron index', build);
    this.index.extra.append(this.indexList);
    const run = el('button', 'ls-action ls-compare-run', 'Compare over the workspace');
    run.title = 'Both models over every file of the workspace: tokens ranked by lp(A) - max(lp(B), clamp)';
    run.addEventListener('click', () => void model.compareCorpus());
    this.compare = new JobSection(model, 'compare', 'Model comparison over files', run);
    this.node.append(this.index.node, this.compare.node);
    model.jobs.changed.connect((_, view) => {
      const section = view.job.kind === 'index' ? this.index : this.compare;
      if (model.jobs.latest(view.job.kind) !== view) {
        return; // an older job of that kind
      }
      section.show(view);
      if (view.job.state === 'done' && view.job.kind === 'index') {
        void this.refreshIndexes();
      }
      if (view.job.state === 'done' && view.job.kind === 'compare') {
        const open = el('button', 'ls-action ls-open-comparison', 'open the comparison');
        open.addEventListener('click', () => void commands.execute(CommandIDs.openComparison, { job: view.job.id }));
        section.extra.replaceChildren(open);
        void commands.execute(CommandIDs.openComparison, { job: view.job.id });
      } else if (view.job.kind === 'compare') {
        section.extra.replaceChildren();
      }
    });
    void this.refreshIndexes();
  }

  async refreshIndexes(): Promise<void> {
    try {
      this.showIndexes((await this.model.client.indexes()).indexes);
    } catch {
      // the index list is informative only
    }
  }

  private showIndexes(indexes: IndexEntry[]): void {
    this.indexList.textContent = indexes.length
      ? 'Indexes: ' +
        indexes
          .map(i =>
            i.state === 'broken'
              ? `${i.name} (broken: ${i.problem ?? 'unreadable'})`
              : `${i.name} (${i.model}${i.sae ? `, features of ${i.sae}` : ''}, ${(i.tokens ?? 0).toLocaleString()} tokens${i.shipped ? ', shipped' : ''})`
          )
          .join(' · ')
      : 'Indexes: none yet';
  }
}
