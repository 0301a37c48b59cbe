/**
 * The Deploy sidebar panel: cluster state, the deployments with live figures, and the
 * deploy form. It renders DeploymentsModel's state and forwards clicks; every decision
 * is taken by the Python API behind the server extension or in the kernel.
 */
import { Widget } from '@lumino/widgets';
import { Message } from '@lumino/messaging';

import { IDeploymentRow } from './client';
import {
  DeployForm,
  IReplicaDefaults,
  IFormHooks,
  IKernelSource
} from './deployForm';
import { button, h } from './dom';
import { DeploymentsModel, IModelState } from './model';
import { DeploymentRowView, IRowActions } from './rows';

export interface IPanelOptions {
  model: DeploymentsModel;
  kernels: IKernelSource;
  /** Row actions that need JupyterLab (dialogs, clipboard, notebook). */
  actions: Pick<IRowActions, 'copy' | 'monitor'> & {
    confirmDelete(name: string): Promise<boolean>;
  };
  defaults: IReplicaDefaults;
}

export class DeployPanel extends Widget {
  constructor(private readonly options: IPanelOptions) {
    super();
    this.addClass('jp-deploy-panel');
    this.id = 'jupyter-deploy-panel';
    this.title.caption = 'Deploy';
    const model = options.model;
    this.cluster = h('div', { class: 'jp-deploy-cluster' });
    this.busy = h('div', {
      class: 'jp-deploy-busy',
      hidden: true,
      'aria-live': 'polite'
    });
    this.error = h('div', {
      class: 'jp-deploy-error',
      hidden: true,
      role: 'alert'
    });
    this.list = h('ul', { class: 'jp-deploy-list' });
    this.empty = h(
      'div',
      { class: 'jp-deploy-empty', hidden: true },
      'No deployments yet.'
    );
    const hooks: IFormHooks = {
      busy: label => model.setBusy(label),
      error: message => model.setError(message),
      deployed: () => void model.refresh()
    };
    this.form = new DeployForm(options.kernels, hooks, options.defaults);
    this.node.append(
      h(
        'header',
        { class: 'jp-deploy-header' },
        h('span', { class: 'jp-deploy-title' }, 'Deployments'),
        button('↻', () => void model.refresh(), {
          class: 'jp-Button jp-deploy-button jp-deploy-refresh',
          title: 'Refresh now'
        })
      ),
      this.cluster,
      this.busy,
      this.error,
      this.list,
      this.empty,
      this.form.node
    );
    this.rowActions = {
      scale: (name, low, high) => void model.scale(name, low, high),
      rollback: name => void model.rollback(name),
      promote: name => void model.promote(name),
      remove: name => void this.remove(name),
      copy: options.actions.copy,
      monitor: options.actions.monitor
    };
    model.changed.connect((_, state) => this.render(state), this);
    this.render(model.state);
  }

  /** The active notebook changed: look for its models again. */
  kernelChanged(): void {
    if (this.isVisible) {
      void this.form.refresh();
    }
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.options.model.refresh();
    void this.form.refresh();
  }

  private async remove(name: string): Promise<void> {
    if (await this.options.actions.confirmDelete(name)) {
      await this.options.model.remove(name);
    }
  }

  private render(state: IModelState): void {
    this.renderCluster(state);
    this.busy.hidden = !state.busy;
    this.busy.textContent = state.busy ? `${state.busy}…` : '';
    this.error.hidden = !state.error;
    this.error.textContent = state.error ?? '';
    this.renderList(state.cluster?.running ? state.deployments : []);
    this.empty.hidden = !(state.cluster?.running && !state.deployments.length);
  }

  private renderCluster(state: IModelState): void {
    const c = state.cluster;
    let content: (Node | string)[];
    let mode: string;
    if (!state.loaded) {
      mode = 'loading';
      content = ['Looking for the cluster…'];
    } else if (state.unreachable) {
      mode = 'unreachable';
      content = ['The cluster cannot be reached; retrying.'];
    } else if (c && !c.running) {
      mode = 'stopped';
      content = [
        'No cluster is running. ',
        button(
          'Start the embedded cluster',
          () => void this.options.model.startCluster(),
          {
            class: 'jp-Button jp-mod-accept jp-deploy-button jp-deploy-start'
          }
        )
      ];
    } else {
      mode = 'running';
      const where = c?.embedded ? 'embedded cluster' : 'cluster';
      content = [`Connected to the ${where} at ${c?.address ?? '?'}`];
    }
    // Rebuild only on a change, so the start button is not replaced under the pointer.
    const key = `${mode} ${c?.address ?? ''}`;
    if (this.clusterKey !== key) {
      this.clusterKey = key;
      this.cluster.dataset.mode = mode;
      this.cluster.replaceChildren(...content);
    }
  }

  private renderList(rows: IDeploymentRow[]): void {
    const seen = new Set<string>();
    for (const row of rows) {
      seen.add(row.name);
      let view = this.rows.get(row.name);
      if (view) {
        view.update(row);
      } else {
        view = new DeploymentRowView(row, this.rowActions);
        this.rows.set(row.name, view);
      }
    }
    for (const [name, view] of this.rows) {
      if (!seen.has(name)) {
        view.node.remove();
        this.rows.delete(name);
      }
    }
    // Keep the list in the server's order (sorted by name) without rebuilding rows.
    rows.forEach((row, i) => {
      const node = this.rows.get(row.name)!.node;
      if (this.list.children[i] !== node) {
        this.list.insertBefore(node, this.list.children[i] ?? null);
      }
    });
  }

  private readonly cluster: HTMLElement;
  private clusterKey = '';
  private readonly busy: HTMLElement;
  private readonly error: HTMLElement;
  private readonly list: HTMLElement;
  private readonly empty: HTMLElement;
  private readonly form: DeployForm;
  private readonly rowActions: IRowActions;
  private readonly rows = new Map<string, DeploymentRowView>();
}
