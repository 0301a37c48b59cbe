import { execFileSync } from 'child_process';
import * as path from 'path';

import {
  MARK,
  deployCode,
  listCode,
  parseFramed,
  progressText
} from '../src/kernel';

// The package's own Python (scripts/setup.sh makes it); the snippets run against the real
// jupyter_deploy.server.kernel_bridge there, with a plain dict as the kernel namespace.
const PYTHON = path.resolve(__dirname, '../../.venv/bin/python');

function runInPython(snippet: string, namespace: string): string {
  const program =
    `${namespace}\n` +
    'class _Shell:\n    user_ns = globals()\n' +
    'def get_ipython():\n    return _Shell\n' +
    snippet;
  return execFileSync(PYTHON, ['-c', program], {
    encoding: 'utf8',
    timeout: 60000
  });
}

describe('kernel snippets', () => {
  it('lists models through the Python bridge', () => {
    const out = runInPython(
      listCode(),
      'class M:\n    def predict(self, x): return x\nm = M()\nimport numpy as np\nX = np.zeros((2, 2))'
    );
    expect(parseFramed(out)).toEqual({
      models: [{ variable: 'm', type: 'M', has_proba: false }],
      samples: ['X'],
      defaults: { min_replicas: 1, max_replicas: 2 } // the deployment spec's
    });
  });

  it('passes any user text as data, never as code', () => {
    const nasty = 'a\'b"c\\d\nprint("pwned")';
    const out = runInPython(
      deployCode({
        variable: nasty,
        name: nasty,
        min_replicas: 1,
        max_replicas: 2
      }),
      ''
    );
    expect(out).not.toMatch(/^pwned$/m);
    const answer = parseFramed<any>(out);
    expect(answer.ok).toBe(false);
    expect(answer.status).toBe(404);
    expect(answer.error).toContain(
      'No variable named \'a\\\'b"c\\\\d\\nprint("pwned")\''
    );
  });

  it('finds the framed answer among other output', () => {
    expect(parseFramed(`noise\n${MARK}{"ok": true}${MARK}\nmore`)).toEqual({
      ok: true
    });
    expect(parseFramed('no answer')).toBeNull();
    expect(parseFramed(`${MARK}{"ok"`)).toBeNull();
  });

  it('reads the text of a progress display', () => {
    expect(
      progressText(
        '<div><b>deploy iris</b>: ✔ capture 0.1s &nbsp; ⏳ package…</div>'
      )
    ).toBe('deploy iris: ✔ capture 0.1s ⏳ package…');
  });
});
