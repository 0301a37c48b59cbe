/**
 * Typed calls to the server extension's REST routes (/jupyter-deploy/api/...).
 *
 * The transport is injected, so the same client runs on JupyterLab's authenticated
 * ServerConnection in the panel and on plain fetch in the unit tests.
 */

/** Sends one request to a path under /jupyter-deploy/api/ and returns the raw response. */
export type Transport = (path: string, init: RequestInit) => Promise<Response>;

export interface IClusterStatus {
  running: boolean;
  embedded: boolean;
  address: string | null;
  http?: string;
}

export interface IReplicas {
  running: number;
  min: number;
  max: number;
}

/** A canary rollout as the control plane keeps it (see ``Deployment.traffic()``). */
export interface ICanary {
  version: number;
  baseline: number;
  state: string; // running, promoted, rolled_back or stopped
  share: number;
  step: number;
  steps: number[];
  next_decision: number | null; // epoch seconds
  reason: string;
}

/** How requests are shared between a deployment's versions. */
export interface ITraffic {
  live: number;
  weights: Record<string, number>;
  shadow: { version: number; rate: number; agreement: number | null } | null;
  canary: ICanary | null;
}

export interface IDeploymentRow {
  name: string;
  status: string;
  message: string;
  version: number;
  versions: number[];
  replicas: IReplicas;
  url: string;
  curl: string;
  rate_rps: number;
  p95_ms: number | null;
  error_rate: number;
  total_requests: number;
  traffic?: ITraffic;
}

export interface IDeploymentList {
  cluster: IClusterStatus;
  deployments: IDeploymentRow[];
}

/** A failed call: the server's one-line message and HTTP status (0: unreachable). */
export class DeployError extends Error {
  constructor(
    message: string,
    readonly status: number
  ) {
    super(message);
    this.name = 'DeployError';
  }

  /** True when the Jupyter server itself could not be reached. */
  get unreachable(): boolean {
    return this.status === 0;
  }
}

export class DeployClient {
  constructor(private readonly transport: Transport) {}

  cluster(): Promise<IClusterStatus> {
    return this.call<IClusterStatus>('cluster', 'GET');
  }

  startCluster(): Promise<IClusterStatus> {
    return this.call<IClusterStatus>('cluster', 'POST');
  }

  list(): Promise<IDeploymentList> {
    return this.call<IDeploymentList>('deployments', 'GET');
  }

  get(name: string): Promise<IDeploymentRow> {
    return this.call<IDeploymentRow>(deploymentPath(name), 'GET');
  }

  scale(
    name: string,
    minReplicas: number,
    maxReplicas: number
  ): Promise<IDeploymentRow> {
    return this.call<IDeploymentRow>(`${deploymentPath(name)}/scale`, 'POST', {
      min_replicas: minReplicas,
      max_replicas: maxReplicas
    });
  }

  rollback(name: string): Promise<IDeploymentRow> {
    return this.call<IDeploymentRow>(
      `${deploymentPath(name)}/rollback`,
      'POST'
    );
  }

  promote(name: string): Promise<IDeploymentRow> {
    return this.call<IDeploymentRow>(`${deploymentPath(name)}/promote`, 'POST');
  }

  remove(name: string): Promise<{ deleted: string }> {
    return this.call<{ deleted: string }>(deploymentPath(name), 'DELETE');
  }

  private async call<T>(
    path: string,
    method: string,
    body?: unknown
  ): Promise<T> {
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
    }
    let response: Response;
    try {
      response = await this.transport(path, init);
    } catch (reason) {
      throw new DeployError(
        `The Jupyter server is unreachable: ${errorText(reason)}`,
        0
      );
    }
    const text = await response.text();
    let data: any = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) {
      const message =
        (data && (data.error || data.message)) ||
        `${method} ${path} failed with HTTP ${response.status}.`;
      throw new DeployError(String(message), response.status);
    }
    if (data === null) {
      throw new DeployError(
        `${method} ${path} answered no JSON.`,
        response.status
      );
    }
    return data as T;
  }
}

/** The route of one deployment; names are URL-safe already but encode anyway. */
export function deploymentPath(name: string): string {
  return `deployments/${encodeURIComponent(name)}`;
}

export function errorText(reason: unknown): string {
  if (reason instanceof Error) {
    return reason.message;
  }
  return String(reason);
}
