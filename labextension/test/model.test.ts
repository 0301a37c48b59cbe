import { DeployClient } from '../src/client';
import {
  DeploymentsModel,
  formatLatency,
  formatRate,
  formatReplicas
} from '../src/model';
import { ApiServer, until } from './server';

describe('DeploymentsModel', () => {
  let server: ApiServer;
  let model: DeploymentsModel;
  let visible: boolean;

  beforeEach(async () => {
    server = new ApiServer();
    await server.listen();
    visible = true;
    model = new DeploymentsModel(new DeployClient(server.transport()), {
      interval: 0.05,
      maxBackoff: 0.2,
      isVisible: () => visible
    });
  });

  afterEach(async () => {
    model.dispose();
    await server.close();
  });

  it('polls the list while visible', async () => {
    void model.start();
    await until(() => model.state.loaded);
    expect(model.state.cluster?.running).toBe(true);
    expect(model.state.deployments[0].name).toBe('iris');
    const before = server.requests.length;
    await until(() => server.requests.length >= before + 3);
  });

  it('stands by while hidden', async () => {
    visible = false;
    void model.start();
    await new Promise(resolve => setTimeout(resolve, 300));
    expect(server.requests.length).toBe(0);
    visible = true;
    await model.refresh();
    await until(() => model.state.loaded);
  });

  it('shows the cluster as gone and recovers when it is back', async () => {
    void model.start();
    await until(() => model.state.loaded);
    server.failNext = {
      status: 503,
      body: '{"error": "Cannot connect to the Ray cluster"}'
    };
    await until(() => model.state.unreachable);
    expect(model.state.error).toBe('Cannot connect to the Ray cluster');
    await until(() => !model.state.unreachable);
    expect(model.state.error).toBeNull();
    expect(model.state.deployments).toHaveLength(1);
  });

  it('says when no cluster runs, and starts one on request', async () => {
    server.running = false;
    void model.start();
    await until(() => model.state.loaded);
    expect(model.state.cluster?.running).toBe(false);
    expect(model.state.deployments).toEqual([]);
    expect(await model.startCluster()).toBe(true);
    await until(() => model.state.cluster?.running === true);
    expect(model.state.busy).toBeNull();
  });

  it('runs actions, refreshes, and shows their errors in plain words', async () => {
    void model.start();
    await until(() => model.state.loaded);
    const busy: (string | null)[] = [];
    model.changed.connect((_, state) => busy.push(state.busy));
    expect(await model.scale('iris', 1, 5)).toBe(true);
    expect(busy).toContain('Scaling iris to 1–5');
    await until(() => model.state.deployments[0].replicas.max === 5);

    server.failNext = {
      status: 409,
      body: '{"error": "\'iris\' has no version before v1."}'
    };
    expect(await model.rollback('iris')).toBe(false);
    expect(model.state.error).toBe("'iris' has no version before v1.");

    expect(await model.remove('iris')).toBe(true);
    await until(() => model.state.deployments.length === 0);
  });
});

describe('formatting', () => {
  it('formats the live figures', () => {
    expect(formatRate(0)).toBe('0 req/s');
    expect(formatRate(3.456)).toBe('3.5 req/s');
    expect(formatRate(123.4)).toBe('123 req/s');
    expect(formatLatency(null)).toBe('p95 –');
    expect(formatLatency(4.25)).toBe('p95 4.3 ms');
    expect(formatLatency(41.6)).toBe('p95 42 ms');
    expect(formatReplicas({ running: 1, min: 1, max: 4 })).toBe('1 / 1–4');
  });
});
