import { DeployClient, DeployError, deploymentPath } from '../src/client';
import { ApiServer } from './server';

describe('DeployClient', () => {
  let server: ApiServer;
  let client: DeployClient;

  beforeEach(async () => {
    server = new ApiServer();
    await server.listen();
    client = new DeployClient(server.transport());
  });

  afterEach(() => server.close());

  it('lists deployments with the cluster state', async () => {
    const list = await client.list();
    expect(list.cluster.running).toBe(true);
    expect(list.deployments.map(d => d.name)).toEqual(['iris']);
  });

  it('sends each action to its route with a JSON body', async () => {
    await client.scale('iris', 1, 4);
    await client.rollback('iris');
    await client.promote('iris');
    await client.remove('iris');
    await client.startCluster();
    expect(server.requests.map(r => `${r.method} ${r.path}`)).toEqual([
      'POST deployments/iris/scale',
      'POST deployments/iris/rollback',
      'POST deployments/iris/promote',
      'DELETE deployments/iris',
      'POST cluster'
    ]);
    expect(JSON.parse(server.requests[0].body)).toEqual({
      min_replicas: 1,
      max_replicas: 4
    });
  });

  it("turns a JSON error into a DeployError with the server's words and status", async () => {
    server.failNext = {
      status: 409,
      body: '{"error": "no version before v1"}'
    };
    const failure = client.rollback('iris');
    await expect(failure).rejects.toBeInstanceOf(DeployError);
    await expect(failure).rejects.toMatchObject({
      message: 'no version before v1',
      status: 409
    });
  });

  it('explains a non-JSON error by its status', async () => {
    server.failNext = { status: 502, body: '<html>bad gateway</html>' };
    await expect(client.list()).rejects.toMatchObject({
      message: 'GET deployments failed with HTTP 502.',
      status: 502
    });
  });

  it('reports an unreachable server as status 0', async () => {
    await server.close();
    const error = await client.cluster().catch(e => e);
    expect(error).toBeInstanceOf(DeployError);
    expect(error.unreachable).toBe(true);
    expect(error.message).toMatch(/unreachable/);
    server = new ApiServer();
    await server.listen();
  });

  it('encodes names in paths', () => {
    expect(deploymentPath('a b/c')).toBe('deployments/a%20b%2Fc');
  });
});
