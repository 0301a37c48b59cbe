/**
 * One deployment in the panel's list: figures that refresh in place, and its actions.
 *
 * A row is kept across refreshes (keyed by name) so an open scale editor keeps its
 * values and focus while the live figures update around it.
 */
import { IDeploymentRow } from './client';
import { button, h, numberInput } from './dom';
import { formatLatency, formatRate, formatReplicas } from './model';
import { canaryLine, isSplit, shares } from './traffic';

export interface IRowActions {
  scale(name: string, minReplicas: number, maxReplicas: number): void;
  rollback(name: string): void;
  promote(name: string): void;
  remove(name: string): void;
  copy(text: string, what: string): void;
  monitor(name: string): void;
}

export class DeploymentRowView {
  readonly node: HTMLElement;

  constructor(
    row: IDeploymentRow,
    private readonly actions: IRowActions
  ) {
    this.name = row.name;
    this.status = h('span', { class: 'jp-deploy-status' });
    this.version = h('span', { class: 'jp-deploy-version' });
    this.replicas = h('span', {
      class: 'jp-deploy-replicas',
      title: 'running / min–max'
    });
    this.rate = h('span', { class: 'jp-deploy-rate' });
    this.p95 = h('span', { class: 'jp-deploy-p95' });
    this.url = h('a', {
      class: 'jp-deploy-url',
      target: '_blank',
      rel: 'noopener'
    });
    this.rollbackButton = button(
      'Roll back',
      () => actions.rollback(this.name),
      {
        class: 'jp-Button jp-deploy-button jp-deploy-rollback',
        title: 'Serve the previous version again'
      }
    );
    this.promoteButton = button('Promote', () => actions.promote(this.name), {
      class: 'jp-Button jp-deploy-button jp-deploy-promote',
      title: 'All traffic to the newest version'
    });
    this.shares = h('div', { class: 'jp-deploy-shares', hidden: true });
    this.canary = h('div', { class: 'jp-deploy-canary', hidden: true });
    this.editor = h('div', { class: 'jp-deploy-scale-editor', hidden: true });
    this.node = h(
      'li',
      { class: 'jp-deploy-row', 'data-name': row.name },
      h(
        'div',
        { class: 'jp-deploy-row-head' },
        h('span', { class: 'jp-deploy-name' }, row.name),
        this.version,
        this.status
      ),
      h(
        'div',
        { class: 'jp-deploy-figures' },
        h('span', {}, 'replicas ', this.replicas),
        this.rate,
        this.p95
      ),
      this.shares,
      this.canary,
      h('div', { class: 'jp-deploy-url-line' }, this.url),
      h(
        'div',
        { class: 'jp-deploy-actions' },
        button('Scale', () => this.toggleEditor(), {
          class: 'jp-Button jp-deploy-button jp-deploy-scale',
          title: 'Change the replica range'
        }),
        this.rollbackButton,
        this.promoteButton,
        button('Delete', () => actions.remove(this.name), {
          class: 'jp-Button jp-deploy-button jp-deploy-delete',
          title: 'Stop serving this deployment'
        }),
        button('Copy URL', () => actions.copy(this.current.url, 'URL'), {
          class: 'jp-Button jp-deploy-button jp-deploy-copy-url'
        }),
        button(
          'Copy curl',
          () => actions.copy(this.current.curl, 'curl line'),
          {
            class: 'jp-Button jp-deploy-button jp-deploy-copy-curl'
          }
        ),
        button('Monitor', () => actions.monitor(this.name), {
          class: 'jp-Button jp-deploy-button jp-deploy-monitor',
          title: 'Open the live monitor in the notebook'
        })
      ),
      this.editor
    );
    this.current = row;
    this.update(row);
  }

  /** Refresh the figures in place. */
  update(row: IDeploymentRow): void {
    this.current = row;
    this.status.textContent = row.status;
    this.status.dataset.status = row.status;
    this.status.title = row.message || row.status;
    this.version.textContent = `v${row.version}`;
    this.replicas.textContent = formatReplicas(row.replicas);
    this.rate.textContent = formatRate(row.rate_rps);
    this.rate.title = `${row.total_requests} requests since it was deployed`;
    this.rate.dataset.total = String(row.total_requests);
    this.p95.textContent = formatLatency(row.p95_ms);
    this.url.textContent = row.url;
    this.url.href = row.url;
    const split = isSplit(row.traffic);
    const earlier = split || row.versions.some(v => v < row.version);
    this.rollbackButton.disabled = !earlier;
    this.rollbackButton.title = split
      ? 'All traffic back to the live version'
      : earlier
        ? 'Serve the previous version again'
        : 'No earlier version to roll back to';
    const newest = Math.max(...row.versions);
    this.promoteButton.disabled = !split && newest === row.version;
    this.promoteButton.title = this.promoteButton.disabled
      ? 'The newest version already takes all traffic'
      : `All traffic to v${newest}`;
    this.updateTraffic(row);
  }

  /** The versions' shares as one bar, and the canary's state, when there is a split. */
  private updateTraffic(row: IDeploymentRow): void {
    const parts = shares(row.traffic);
    this.shares.hidden = parts.length < 2;
    this.shares.replaceChildren(
      ...parts.map(p =>
        h(
          'span',
          {
            class: `jp-deploy-share jp-deploy-share-${p.role}`,
            style: p.role === 'shadow' ? '' : `flex-grow: ${p.share}`,
            title: p.label,
            'data-version': String(p.version)
          },
          p.label
        )
      )
    );
    const line = canaryLine(row.traffic?.canary, Date.now() / 1000);
    this.canary.hidden = !line;
    this.canary.textContent = line;
    this.canary.dataset.state = row.traffic?.canary?.state ?? '';
  }

  private toggleEditor(): void {
    if (!this.editor.hidden) {
      this.editor.hidden = true;
      return;
    }
    const low = numberInput(this.current.replicas.min, 0, 'Minimum replicas');
    const high = numberInput(this.current.replicas.max, 1, 'Maximum replicas');
    low.classList.add('jp-deploy-scale-min');
    high.classList.add('jp-deploy-scale-max');
    this.editor.replaceChildren(
      h('label', {}, 'min ', low),
      h('label', {}, 'max ', high),
      button(
        'Apply',
        () => {
          this.editor.hidden = true;
          this.actions.scale(this.name, Number(low.value), Number(high.value));
        },
        {
          class:
            'jp-Button jp-mod-accept jp-deploy-button jp-deploy-scale-apply'
        }
      )
    );
    this.editor.hidden = false;
    low.focus();
  }

  private readonly name: string;
  private current: IDeploymentRow;
  private readonly status: HTMLElement;
  private readonly version: HTMLElement;
  private readonly replicas: HTMLElement;
  private readonly rate: HTMLElement;
  private readonly p95: HTMLElement;
  private readonly url: HTMLAnchorElement;
  private readonly rollbackButton: HTMLButtonElement;
  private readonly promoteButton: HTMLButtonElement;
  private readonly shares: HTMLElement;
  private readonly canary: HTMLElement;
  private readonly editor: HTMLElement;
}
