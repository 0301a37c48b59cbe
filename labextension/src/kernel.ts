/**
 * Talking to the notebook's kernel: list its deployable models, deploy one.
 *
 * The panel runs small snippets that call jupyter_deploy.server.kernel_bridge, which prints one
 * JSON answer framed by MARK; deployment itself is jupyter_deploy.deploy in the kernel,
 * exactly as %deploy runs it. Nothing here decides anything about deployments.
 */
import type { Kernel, KernelMessage } from '@jupyterlab/services';

/** Frames the JSON answer in the kernel's stdout (jupyter_deploy.server.kernel_bridge.MARK). */
export const MARK = '@@jupyter-deploy@@';

export interface IKernelModel {
  variable: string;
  type: string;
  has_proba: boolean;
}

export interface IKernelModels {
  models: IKernelModel[];
  samples: string[];
  /** The Python API's own defaults (the deployment spec's): the form starts from them. */
  defaults?: { min_replicas: number; max_replicas: number };
}

export interface IDeployRequest {
  variable: string;
  name?: string;
  sample?: string;
  min_replicas: number;
  max_replicas: number;
}

export interface IDeployResult {
  ok: boolean;
  name?: string;
  url?: string;
  version?: number;
  error?: string;
  kind?: string;
  status?: number;
}

/** Python that prints the kernel's deployable models and sample candidates. */
export function listCode(): string {
  return (
    'import jupyter_deploy.server.kernel_bridge as _jd_bridge\n' +
    '_jd_bridge.list_models(get_ipython().user_ns)\n' +
    'del _jd_bridge'
  );
}

/**
 * Python that deploys one kernel variable. The arguments travel as one JSON document,
 * which is also a valid Python string literal, so no user text is ever spliced into code.
 */
export function deployCode(request: IDeployRequest): string {
  const args: Record<string, unknown> = {
    variable: request.variable,
    min_replicas: request.min_replicas,
    max_replicas: request.max_replicas
  };
  if (request.name) {
    args.name = request.name;
  }
  if (request.sample) {
    args.sample = request.sample;
  }
  const literal = JSON.stringify(JSON.stringify(args));
  return (
    'import json as _jd_json, jupyter_deploy.server.kernel_bridge as _jd_bridge\n' +
    `_jd_bridge.deploy(get_ipython().user_ns, **_jd_json.loads(${literal}))\n` +
    'del _jd_json, _jd_bridge'
  );
}

/** The framed JSON answer in a kernel's stdout text, or null if it is not (yet) there. */
export function parseFramed<T>(text: string): T | null {
  const start = text.indexOf(MARK);
  if (start < 0) {
    return null;
  }
  const end = text.indexOf(MARK, start + MARK.length);
  if (end < 0) {
    return null;
  }
  return JSON.parse(text.slice(start + MARK.length, end)) as T;
}

/** The visible text of an HTML progress line (the kernel's deploy progress display). */
export function progressText(html: string): string {
  return html
    .replace(/<[^>]*>/g, '')
    .replace(/&nbsp;/g, ' ')
    .replace(/&amp;/g, '&')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/\s+/g, ' ')
    .trim();
}

/**
 * Run ``code`` silently in ``kernel`` and return its framed JSON answer. ``onProgress``
 * receives the text of every display the code shows or updates (deploy progress).
 */
export async function runFramed<T>(
  kernel: Kernel.IKernelConnection,
  code: string,
  onProgress?: (line: string) => void
): Promise<T> {
  let stdout = '';
  let failure: string | null = null;
  const future = kernel.requestExecute({
    code,
    silent: false,
    store_history: false,
    stop_on_error: true
  });
  future.onIOPub = (msg: KernelMessage.IIOPubMessage) => {
    const type = msg.header.msg_type;
    const content = msg.content as any;
    if (type === 'stream' && content.name === 'stdout') {
      stdout += content.text;
    } else if (type === 'error') {
      failure = `${content.ename}: ${content.evalue}`;
    } else if (
      (type === 'display_data' || type === 'update_display_data') &&
      onProgress
    ) {
      const data = content.data ?? {};
      const text = data['text/html']
        ? progressText(String(data['text/html']))
        : String(data['text/plain'] ?? '');
      if (text) {
        onProgress(text);
      }
    }
  };
  await future.done;
  const answer = parseFramed<T>(stdout);
  if (answer === null) {
    throw new Error(
      failure ??
        'The kernel gave no answer. Is jupyter_deploy installed in this kernel?'
    );
  }
  return answer;
}
