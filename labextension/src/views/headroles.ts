/**
 * Heads by their role, in the panel's attention section: every head's previous-token, duplicate,
 * induction and BOS scores on the repeated-random-token probe (`GET heads/{model}/scores`, once
 * per model) or on the analyzed text (`POST head_scores_text`), sortable by each score (a click
 * on its header) and filtered by role. A head's name opens its card and points the attention
 * section (and attention mode) at it; ◉ turns attention mode on for it. "Run the induction probe"
 * shows the probe's in-context gain and top induction heads and opens the probe's tab.
 */
import type { CommandRegistry } from '@lumino/commands';

import type { HeadScores } from '../api/client';
import { describe } from '../errors';
import { el } from '../format';
import { headRows, probeScores, ROLE_LABELS, ROLES, RoleOrDiffuse, sortAndFilter, SortKey } from '../headroles';
import type { LenscopeModel } from '../model';
import { CommandIDs } from '../tokens';

export const OPEN_PROBE = 'lenscope:open-induction-probe';

type Source = 'probe' | 'text';

const score = (v: number | null): string => (v === null ? '–' : v.toFixed(2));

/** Column headers short enough for the panel (the title says what each is). */
const SHORT: Record<SortKey, [string, string]> = {
  head: ['head', 'layer and head'],
  previous_token: ['prev', 'previous-token score: attention on the token just before'],
  duplicate_token: ['dup', 'duplicate-token score: attention on earlier copies of the current token'],
  induction: ['ind', 'induction score: attention on the token after an earlier copy of the current token'],
  bos: ['BOS', 'BOS score: attention on the BOS (an attention sink)']
};

export class HeadRolesSection {
  readonly node = el('div', 'ls-head-roles');
  private readonly sourceSelect = el('select', 'ls-head-roles-source');
  private readonly roleSelect = el('select', 'ls-head-roles-filter');
  private readonly status = el('p', 'ls-head-roles-status ls-muted');
  private readonly table = el('table', 'ls-head-roles-table');
  private readonly scroller = el('div', 'ls-head-roles-scroll');
  private readonly probeButton = el('button', 'ls-button ls-probe-run', 'Run the induction probe');
  private readonly probeResult = el('p', 'ls-probe-result');
  private sortKey: SortKey = 'head';
  private scores: { key: string; data: HeadScores | null; error: string | null } | null = null;
  private loadingKey = '';

  constructor(
    private readonly model: LenscopeModel,
    private readonly commands: CommandRegistry
  ) {
    const title = el('h4', 'ls-head-roles-title', 'Heads by role');
    this.sourceSelect.setAttribute('aria-label', 'scores on');
    this.sourceSelect.append(new Option('repeated random tokens (the probe)', 'probe'), new Option('the analyzed text', 'text'));
    this.roleSelect.setAttribute('aria-label', 'role');
    this.roleSelect.append(new Option('all', 'all'), ...(['previous_token', 'duplicate_token', 'induction', 'bos', 'diffuse'] as RoleOrDiffuse[]).map(r => new Option(ROLE_LABELS[r], r)));
    this.roleSelect.title = 'A head has a role when at least 0.3 of its attention goes where the role says (a token role before the BOS); else it is diffuse';
    this.sourceSelect.addEventListener('change', () => this.render());
    this.roleSelect.addEventListener('change', () => this.render());
    const bar = el('div', 'ls-head-roles-bar');
    bar.append(el('span', 'ls-muted', 'scores on'), this.sourceSelect, el('span', 'ls-muted', 'role'), this.roleSelect);
    this.probeButton.title = 'BOS, 50 random frequent tokens, the same 50 again: the loss on the second copy, each head’s induction score; opens the sequence in a tab with attention mode on the top induction head';
    this.probeButton.addEventListener('click', () => void this.runProbe());
    this.table.setAttribute('aria-label', 'heads by role');
    this.scroller.append(this.table);
    this.node.append(title, bar, this.status, this.scroller, this.probeButton, this.probeResult);
    model.runChanged.connect(() => this.render());
    model.attentionChanged.connect(() => this.render());
  }

  private get modelName(): string {
    return this.model.run?.analysis.model ?? this.model.model;
  }

  private get source(): Source {
    return this.sourceSelect.value as Source;
  }

  /** The scores to show: the probe's (cached per model), or the current run's text's. */
  private want(): { key: string; fetch: () => Promise<HeadScores> } | null {
    const name = this.modelName;
    if (!name) {
      return null;
    }
    if (this.source === 'probe') {
      return { key: `probe:${name}`, fetch: () => probeScores(this.model.client, name) };
    }
    const run = this.model.run;
    if (!run) {
      return null;
    }
    return {
      key: `text:${run.analysis.model}:${run.target.path}:${run.target.context.length}:${run.target.text}`,
      fetch: () => this.model.client.headScoresOnText({ model: run.analysis.model, text: run.target.text, context: run.target.context })
    };
  }

  render(): void {
    if (!this.model.attention.open) {
      return;
    }
    const want = this.want();
    if (!want) {
      this.status.textContent = this.source === 'text' ? 'Analyze some text first.' : '';
      this.table.replaceChildren();
      return;
    }
    if (this.scores?.key !== want.key) {
      if (this.loadingKey !== want.key) {
        this.loadingKey = want.key;
        this.status.textContent = 'Scoring the heads…';
        this.status.classList.remove('ls-error');
        want.fetch().then(
          data => this.loaded(want.key, data, null),
          err => this.loaded(want.key, null, describe(err))
        );
      }
      return;
    }
    const { data, error } = this.scores;
    this.status.classList.toggle('ls-error', !!error);
    if (!data) {
      this.status.textContent = error ?? '';
      this.table.replaceChildren();
      return;
    }
    this.status.textContent =
      data.on === 'probe'
        ? `${data.model}, on ${data.sequences} sequences of BOS + ${data.length} random tokens twice. A click on a score’s header sorts by it.`
        : `${data.model}, on the analyzed text (its own repeats; – : no such target in it).`;
    this.renderTable(data);
  }

  private loaded(key: string, data: HeadScores | null, error: string | null): void {
    if (this.loadingKey === key) {
      this.loadingKey = '';
    }
    this.scores = { key, data, error };
    this.render();
  }

  private renderTable(data: HeadScores): void {
    const role = this.roleSelect.value as RoleOrDiffuse | 'all';
    const rows = sortAndFilter(headRows(data), this.sortKey, role);
    const head = el('tr');
    for (const key of ['head', ...ROLES] as SortKey[]) {
      const th = el('th');
      const button = el('button', 'ls-head-roles-sort', SHORT[key][0]);
      button.dataset.sort = key;
      button.title = `${SHORT[key][1]}; a click sorts by it`;
      th.setAttribute('aria-sort', this.sortKey === key ? (key === 'head' ? 'ascending' : 'descending') : 'none');
      button.addEventListener('click', () => {
        this.sortKey = key;
        this.render();
      });
      th.append(button);
      head.append(th);
    }
    head.append(el('th', '', 'role'));
    const body = el('tbody');
    const a = this.model.attention;
    for (const row of rows) {
      const tr = el('tr', 'ls-head-roles-row');
      tr.dataset.layer = String(row.layer);
      tr.dataset.head = String(row.head);
      tr.dataset.role = row.role;
      const chosen = a.layer === row.layer && a.heads.length === 1 && a.heads[0] === row.head;
      tr.classList.toggle('ls-selected', chosen);
      const name = el('button', 'ls-head-roles-open', `L${row.layer}.H${row.head}`);
      name.title = `Open L${row.layer}.H${row.head}’s card (and show its attention here)`;
      name.addEventListener('click', () => {
        this.model.updateAttention({ layer: row.layer, heads: [row.head] });
        void this.commands.execute(CommandIDs.openHead, { model: data.model, layer: row.layer, head: row.head });
      });
      const cells = [el('td', '', ''), ...ROLES.map(r => {
        const td = el('td', 'ls-head-roles-score', score(row.scores[r]));
        td.dataset.role = r;
        td.dataset.value = row.scores[r] === null ? '' : String(row.scores[r]);
        td.classList.toggle('ls-strong', (row.scores[r] ?? 0) >= 0.3);
        return td;
      })];
      cells[0].append(name, ' ');
      const attend = el('button', 'ls-head-roles-attend', '◉');
      attend.title = `Attention mode on L${row.layer}.H${row.head}: hover a token in the analyzed editor`;
      attend.setAttribute('aria-label', `attention mode on L${row.layer}.H${row.head}`);
      attend.addEventListener('click', () => this.model.updateAttention({ layer: row.layer, heads: [row.head], mode: true }));
      cells[0].append(attend);
      tr.append(...cells, el('td', `ls-head-roles-role ls-role-${row.role}`, ROLE_LABELS[row.role]));
      body.append(tr);
    }
    const thead = el('thead');
    thead.append(head);
    this.table.replaceChildren(thead, body);
    if (!rows.length) {
      this.status.textContent += ` No head is ${ROLE_LABELS[role as RoleOrDiffuse] ?? role} here.`;
    }
  }

  private async runProbe(): Promise<void> {
    const name = this.modelName;
    this.probeButton.disabled = true;
    this.probeResult.textContent = 'Running the probe…';
    this.probeResult.classList.remove('ls-error');
    try {
      const data = await probeScores(this.model.client, name);
      const top = (data.top.induction ?? []).slice(0, 3);
      this.probeResult.replaceChildren(
        el('span', '', 'In-context gain '),
        el('strong', 'ls-probe-gain', data.in_context_gain === null ? 'n/a' : `${data.in_context_gain.toFixed(2)} nats`),
        el('span', 'ls-muted', data.loss_first !== null && data.loss_second !== null ? ` (loss ${data.loss_first.toFixed(2)} → ${data.loss_second.toFixed(2)})` : ''),
        el('br'),
        el('span', '', 'Top induction heads: '),
        el('span', 'ls-probe-top', top.map(t => `L${t.layer}.H${t.head} ${t.score.toFixed(2)}`).join(', ') || 'none')
      );
      (this.probeResult.querySelector('.ls-probe-gain') as HTMLElement).dataset.value = String(data.in_context_gain);
      await this.commands.execute(OPEN_PROBE, { model: name });
    } catch (err) {
      this.probeResult.textContent = describe(err);
      this.probeResult.classList.add('ls-error');
    } finally {
      this.probeButton.disabled = false;
    }
  }
}
