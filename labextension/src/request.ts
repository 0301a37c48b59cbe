/**
 * The panel's transport: JupyterLab's ServerConnection (token, XSRF, base URL).
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { DeployClient, Transport } from './client';

/** Namespace of the server extension's routes. */
export const API_NAMESPACE = 'jupyter-deploy/api';

export function serverTransport(
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Transport {
  return (path: string, init: RequestInit) => {
    const url = URLExt.join(settings.baseUrl, API_NAMESPACE, path);
    return ServerConnection.makeRequest(url, init, settings);
  };
}

export function serverClient(): DeployClient {
  return new DeployClient(serverTransport());
}
