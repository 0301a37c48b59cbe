/**
 * The "Deploy from this notebook" form: the kernel's models, a name, a replica range and a
 * sample variable. Deploying runs jupyter_deploy.deploy in that kernel (kernel.ts).
 */
import type { Kernel } from '@jupyterlab/services';

import { button, h, numberInput } from './dom';
import {
  IDeployResult,
  IKernelModels,
  deployCode,
  listCode,
  runFramed
} from './kernel';

/** Where the form finds the active notebook's kernel. */
export interface IKernelSource {
  /** The active notebook's kernel, or null. */
  kernel(): Kernel.IKernelConnection | null;
  /** The active notebook's name, for the form's heading. */
  label(): string;
}

export interface IFormHooks {
  busy(label: string | null): void;
  error(message: string | null): void;
  /** Called after a successful deploy, so the list refreshes. */
  deployed(result: IDeployResult): void;
}

/** Replica range the form starts from; null: the Python API's default (from the kernel). */
export interface IReplicaDefaults {
  minReplicas: number | null;
  maxReplicas: number | null;
}

export class DeployForm {
  readonly node: HTMLElement;

  constructor(
    private readonly source: IKernelSource,
    private readonly hooks: IFormHooks,
    private readonly defaults: IReplicaDefaults
  ) {
    this.heading = h('div', { class: 'jp-deploy-form-heading' });
    this.model = h('select', {
      class: 'jp-mod-styled jp-deploy-model',
      'aria-label': 'Model'
    });
    this.sample = h('select', {
      class: 'jp-mod-styled jp-deploy-sample',
      'aria-label': 'Sample variable'
    });
    this.name = h('input', {
      type: 'text',
      class: 'jp-mod-styled jp-deploy-name-input',
      placeholder: 'name (default: the variable)',
      'aria-label': 'Deployment name'
    });
    this.minReplicas = numberInput(defaults.minReplicas, 0, 'Minimum replicas');
    this.maxReplicas = numberInput(defaults.maxReplicas, 1, 'Maximum replicas');
    for (const input of [this.minReplicas, this.maxReplicas]) {
      input.addEventListener('input', () => (input.dataset.touched = '1'));
    }
    this.minReplicas.classList.add('jp-deploy-form-min');
    this.maxReplicas.classList.add('jp-deploy-form-max');
    this.progress = h('div', {
      class: 'jp-deploy-progress',
      'aria-live': 'polite'
    });
    this.deployButton = button('Deploy', () => void this.deploy(), {
      class: 'jp-Button jp-mod-accept jp-deploy-button jp-deploy-submit'
    });
    this.node = h(
      'section',
      { class: 'jp-deploy-form' },
      h(
        'div',
        { class: 'jp-deploy-section-title' },
        'Deploy from the notebook',
        button('↻', () => void this.refresh(), {
          class: 'jp-Button jp-deploy-button jp-deploy-models-refresh',
          title: 'Look for models in the kernel again'
        })
      ),
      this.heading,
      h('label', { class: 'jp-deploy-field' }, 'Model ', this.model),
      h('label', { class: 'jp-deploy-field' }, 'Name ', this.name),
      h(
        'div',
        { class: 'jp-deploy-field' },
        'Replicas ',
        h('label', {}, 'min ', this.minReplicas),
        h('label', {}, 'max ', this.maxReplicas)
      ),
      h('label', { class: 'jp-deploy-field' }, 'Sample ', this.sample),
      this.deployButton,
      this.progress
    );
    this.render(null);
  }

  /** Ask the active kernel which models it holds. */
  async refresh(): Promise<void> {
    const kernel = this.source.kernel();
    this.heading.textContent = kernel
      ? `Models in ${this.source.label()}`
      : 'Open a notebook with a running kernel to deploy its models.';
    if (!kernel) {
      this.render(null);
      return;
    }
    try {
      this.render(await runFramed<IKernelModels>(kernel, listCode()));
    } catch (reason) {
      this.render(null);
      this.hooks.error(`Could not list the kernel's models: ${String(reason)}`);
    }
  }

  private render(found: IKernelModels | null): void {
    const models = found?.models ?? [];
    const previous = this.model.value;
    this.model.replaceChildren(
      ...models.map(m =>
        h('option', { value: m.variable }, `${m.variable} (${m.type})`)
      )
    );
    if (models.some(m => m.variable === previous)) {
      this.model.value = previous;
    }
    const sample = this.sample.value;
    this.sample.replaceChildren(
      h('option', { value: '' }, '(none)'),
      ...(found?.samples ?? []).map(s => h('option', { value: s }, s))
    );
    if ((found?.samples ?? []).includes(sample)) {
      this.sample.value = sample;
    }
    // Unless the user typed a range: their setting, else the Python API's default.
    const fill = (
      input: HTMLInputElement,
      value: number | null | undefined
    ) => {
      if (!input.dataset.touched && value !== null && value !== undefined) {
        input.value = String(value);
      }
    };
    fill(
      this.minReplicas,
      this.defaults.minReplicas ?? found?.defaults?.min_replicas
    );
    fill(
      this.maxReplicas,
      this.defaults.maxReplicas ?? found?.defaults?.max_replicas
    );
    if (found && !models.length) {
      this.heading.textContent = `No deployable models in ${this.source.label()} (objects with predict).`;
    }
    this.deployButton.disabled = this.deploying || !models.length;
  }

  private async deploy(): Promise<void> {
    const kernel = this.source.kernel();
    const variable = this.model.value;
    const low = Number(this.minReplicas.value);
    const high = Number(this.maxReplicas.value);
    if (!kernel || !variable) {
      this.hooks.error('Pick a model in a notebook with a running kernel.');
      return;
    }
    const label = `Deploying ${this.name.value.trim() || variable}`;
    this.deploying = true;
    this.deployButton.disabled = true;
    this.hooks.error(null);
    this.hooks.busy(label);
    this.progress.textContent = `${label}…`;
    try {
      const result = await runFramed<IDeployResult>(
        kernel,
        deployCode({
          variable,
          name: this.name.value.trim() || undefined,
          sample: this.sample.value || undefined,
          min_replicas: low,
          max_replicas: high
        }),
        line => (this.progress.textContent = line)
      );
      if (result.ok) {
        this.progress.textContent = `Deployed ${result.name} v${result.version} at ${result.url}`;
        this.hooks.deployed(result);
      } else {
        this.progress.textContent = '';
        this.hooks.error(result.error ?? 'The deploy failed.');
      }
    } catch (reason) {
      this.progress.textContent = '';
      this.hooks.error(`The deploy failed: ${String(reason)}`);
    } finally {
      this.deploying = false;
      this.deployButton.disabled = !this.model.value;
      this.hooks.busy(null);
    }
  }

  private deploying = false;
  private readonly heading: HTMLElement;
  private readonly model: HTMLSelectElement;
  private readonly sample: HTMLSelectElement;
  private readonly name: HTMLInputElement;
  private readonly minReplicas: HTMLInputElement;
  private readonly maxReplicas: HTMLInputElement;
  private readonly progress: HTMLElement;
  private readonly deployButton: HTMLButtonElement;
}
