/**
 * A small HTTP server answering like the server extension's routes, for the client and
 * model tests (the code under test is the TypeScript client and model, not the server,
 * which the pytest suite covers against real Ray).
 */
import * as http from 'http';
import { AddressInfo } from 'net';

import { IDeploymentRow, Transport } from '../src/client';

export interface IRecorded {
  method: string;
  path: string;
  body: string;
}

export function row(name: string, version = 2): IDeploymentRow {
  return {
    name,
    status: 'RUNNING',
    message: '',
    version,
    versions: [1, 2],
    replicas: { running: 1, min: 1, max: 2 },
    url: `http://127.0.0.1:9/${name}`,
    curl: `curl -s -X POST http://127.0.0.1:9/${name}/predict`,
    rate_rps: 3.5,
    p95_ms: 4.25,
    error_rate: 0,
    total_requests: 10
  };
}

export class ApiServer {
  requests: IRecorded[] = [];
  running = true;
  rows: IDeploymentRow[] = [row('iris')];
  /** Status and body to answer the next request with, instead of the normal answer. */
  failNext: { status: number; body: string } | null = null;

  async listen(): Promise<void> {
    await new Promise<void>(resolve =>
      this.server.listen(0, '127.0.0.1', resolve)
    );
    this.port = (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>(resolve => this.server.close(() => resolve()));
  }

  transport(): Transport {
    return (path, init) =>
      fetch(`http://127.0.0.1:${this.port}/jupyter-deploy/api/${path}`, init);
  }

  private handle(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    body: string
  ): void {
    const path = (req.url ?? '').replace('/jupyter-deploy/api/', '');
    this.requests.push({ method: req.method ?? '', path, body });
    const send = (status: number, data: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(typeof data === 'string' ? data : JSON.stringify(data));
    };
    if (this.failNext) {
      const { status, body: text } = this.failNext;
      this.failNext = null;
      return send(status, text);
    }
    const cluster = {
      running: this.running,
      embedded: true,
      address: '127.0.0.1:1'
    };
    if (path === 'deployments') {
      return send(200, { cluster, deployments: this.running ? this.rows : [] });
    }
    if (path === 'cluster') {
      this.running = this.running || req.method === 'POST';
      return send(200, { ...cluster, running: this.running });
    }
    const match = /^deployments\/([^/]+)(?:\/(\w+))?$/.exec(path);
    const found =
      match && this.rows.find(r => r.name === decodeURIComponent(match[1]));
    if (!found) {
      return send(404, { error: 'No deployment named that.' });
    }
    if (match[2] === 'scale') {
      const { min_replicas, max_replicas } = JSON.parse(body);
      found.replicas = {
        ...found.replicas,
        min: min_replicas,
        max: max_replicas
      };
    } else if (match[2] === 'rollback') {
      found.version -= 1;
    } else if (match[2] === 'promote') {
      found.version = Math.max(...found.versions);
    } else if (req.method === 'DELETE') {
      this.rows = this.rows.filter(r => r !== found);
      return send(200, { deleted: found.name });
    }
    return send(200, found);
  }

  port = 0;
  private server = http.createServer((req, res) => {
    let body = '';
    req.on('data', chunk => (body += chunk));
    req.on('end', () => this.handle(req, res, body));
  });
}

/** Poll ``predicate`` until true, or fail after ``timeout`` ms. */
export async function until(
  predicate: () => boolean,
  timeout = 5000
): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!predicate()) {
    if (Date.now() > deadline) {
      throw new Error('timed out');
    }
    await new Promise(resolve => setTimeout(resolve, 20));
  }
}
