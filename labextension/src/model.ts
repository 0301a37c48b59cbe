/**
 * The panel's state: the cluster's deployments with live figures, refreshed by a poll.
 *
 * The poll runs while the panel is visible (standby otherwise) and backs off while the
 * server or the cluster cannot be reached; the panel only renders this state and calls
 * the actions, which go to the server extension and so to the Python API.
 */
import { IPoll, Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import {
  DeployClient,
  DeployError,
  IClusterStatus,
  IDeploymentRow,
  errorText
} from './client';

export interface IModelOptions {
  /** Seconds between refreshes while visible. */
  interval: number;
  /** Whether the panel is on screen; the poll stands by otherwise. */
  isVisible: () => boolean;
  /** Upper bound of the backoff while unreachable, in seconds. */
  maxBackoff?: number;
}

export interface IModelState {
  /** Null until the first answer. */
  cluster: IClusterStatus | null;
  deployments: IDeploymentRow[];
  /** The last failure, in plain words; cleared by the next success. */
  error: string | null;
  /** The running action, e.g. "Rolling back iris", or null. */
  busy: string | null;
  /** True once the server has answered at least once. */
  loaded: boolean;
  /** True while the cluster is known to be unreachable (polling backs off). */
  unreachable: boolean;
}

export class DeploymentsModel {
  constructor(
    private readonly client: DeployClient,
    options: IModelOptions
  ) {
    this.poll = new Poll({
      auto: false,
      factory: () => this.fetch(),
      frequency: {
        interval: options.interval * 1000,
        backoff: true,
        max: (options.maxBackoff ?? 30) * 1000
      },
      name: 'jupyter-deploy:deployments',
      standby: () => (options.isVisible() ? 'when-hidden' : true)
    });
  }

  get state(): IModelState {
    return this._state;
  }

  /** Emitted after every change of state. */
  get changed(): ISignal<this, IModelState> {
    return this._changed;
  }

  /** Begin polling (the first fetch is immediate). */
  start(): Promise<void> {
    return this.poll.start();
  }

  /** New refresh interval, in seconds. */
  setInterval(seconds: number): void {
    const frequency = { ...this.poll.frequency, interval: seconds * 1000 };
    this.poll.frequency = frequency;
  }

  /** Fetch now (after an action, or the user's refresh). */
  refresh(): Promise<void> {
    return this.poll.refresh();
  }

  startCluster(): Promise<boolean> {
    return this.act('Starting the cluster (this can take half a minute)', () =>
      this.client.startCluster()
    );
  }

  /** New replica range; the Python API validates it (one rule, in one place). */
  scale(
    name: string,
    minReplicas: number,
    maxReplicas: number
  ): Promise<boolean> {
    return this.act(`Scaling ${name} to ${minReplicas}–${maxReplicas}`, () =>
      this.client.scale(name, minReplicas, maxReplicas)
    );
  }

  rollback(name: string): Promise<boolean> {
    return this.act(`Rolling back ${name}`, () => this.client.rollback(name));
  }

  promote(name: string): Promise<boolean> {
    return this.act(`Promoting ${name}'s newest version`, () =>
      this.client.promote(name)
    );
  }

  remove(name: string): Promise<boolean> {
    return this.act(`Deleting ${name}`, () => this.client.remove(name));
  }

  /** Show an error that happened outside the model (e.g. a deploy in the kernel). */
  setError(error: string | null): void {
    this.update({ error });
  }

  setBusy(busy: string | null): void {
    this.update({ busy });
  }

  dispose(): void {
    this.poll.dispose();
    Signal.clearData(this);
  }

  get isDisposed(): boolean {
    return this.poll.isDisposed;
  }

  /** The poll's factory: a rejection makes the poll back off. */
  private async fetch(): Promise<void> {
    try {
      const list = await this.client.list();
      this.update({
        cluster: list.cluster,
        deployments: list.deployments,
        loaded: true,
        unreachable: false,
        error: this._lastFetchFailed ? null : this._state.error
      });
      this._lastFetchFailed = false;
    } catch (reason) {
      this._lastFetchFailed = true;
      this.update({ error: describe(reason), unreachable: true, loaded: true });
      throw reason;
    }
  }

  private async act(
    label: string,
    action: () => Promise<unknown>
  ): Promise<boolean> {
    this.update({ busy: label, error: null });
    try {
      await action();
      return true;
    } catch (reason) {
      this.update({ error: describe(reason) });
      return false;
    } finally {
      this.update({ busy: null });
      await this.poll.refresh();
    }
  }

  private update(change: Partial<IModelState>): void {
    this._state = { ...this._state, ...change };
    this._changed.emit(this._state);
  }

  readonly poll: IPoll<void, unknown, 'standby'> & Poll;
  private _state: IModelState = {
    cluster: null,
    deployments: [],
    error: null,
    busy: null,
    loaded: false,
    unreachable: false
  };
  private _lastFetchFailed = false;
  private _changed = new Signal<this, IModelState>(this);
}

/** A failure in plain words for the panel. */
export function describe(reason: unknown): string {
  if (reason instanceof DeployError) {
    return reason.message;
  }
  return `Unexpected error: ${errorText(reason)}`;
}

/** "12.3 req/s", "0 req/s". */
export function formatRate(rps: number): string {
  if (rps === 0) {
    return '0 req/s';
  }
  return `${rps < 10 ? rps.toFixed(1) : Math.round(rps)} req/s`;
}

/** "p95 4.2 ms", or "p95 –" without traffic. */
export function formatLatency(ms: number | null): string {
  if (ms === null || ms === undefined) {
    return 'p95 –';
  }
  return `p95 ${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
}

/** "1 / 1–2" (running / min–max). */
export function formatReplicas(r: {
  running: number;
  min: number;
  max: number;
}): string {
  return `${r.running} / ${r.min}–${r.max}`;
}
