/**
 * Galata (Playwright) configuration of the Deploy panel's UI test: a real JupyterLab on
 * our own port, Debian's headless Chromium, no video.
 */
const os = require('os');
const path = require('path');
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');

const port = process.env.JD_UI_PORT || '8890';
// Set here once: the web server, the workers and the teardown all read it.
process.env.JD_UI_HOME =
  process.env.JD_UI_HOME || path.join(os.tmpdir(), `jd-ui-tests-${port}`);
process.env.JD_UI_PORT = port;

module.exports = {
  ...baseConfig,
  reporter: [['list']],
  timeout: 15 * 60 * 1000,
  expect: { timeout: 30 * 1000 },
  retries: 0,
  workers: 1,
  globalTeardown: require.resolve('./teardown.js'),
  use: {
    ...baseConfig.use,
    baseURL: `http://127.0.0.1:${port}`,
    headless: true,
    video: 'off',
    trace: 'off',
    viewport: { width: 1280, height: 800 },
    // No step may wait forever (e.g. clicking a button that stays disabled).
    actionTimeout: 60 * 1000,
    launchOptions: {
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync'
      ]
    }
  },
  webServer: {
    command: 'bash start-lab.sh',
    url: `http://127.0.0.1:${port}/lab`,
    timeout: 180 * 1000,
    reuseExistingServer: false,
    // SIGTERM lets Jupyter shut its kernels down (SIGKILL would orphan them).
    gracefulShutdown: { signal: 'SIGTERM', timeout: 20 * 1000 },
    stdout: 'ignore',
    stderr: 'pipe'
  }
};
