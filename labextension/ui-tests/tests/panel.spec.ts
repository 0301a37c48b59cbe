/**
 * The Deploy panel end to end, in a real JupyterLab with a real kernel, Ray and BentoML:
 * train in a notebook, deploy from the panel, watch the live figures, scale, deploy a
 * second version, roll back, delete; then the cluster goes away and comes back.
 */
import { expect, test } from '@jupyterlab/galata';
import * as path from 'path';

// A deploy takes ~5 s warm and ~25-60 s cold (the first one starts the cluster).
const DEPLOY_TIMEOUT = 5 * 60 * 1000;
const ACTION_TIMEOUT = 2 * 60 * 1000;

const TRAIN = `from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
X, y = load_iris(return_X_y=True, as_frame=True)
X.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
clf = LogisticRegression(max_iter=300).fit(X, y)`;

const TRAFFIC = `import jupyter_deploy
dep = jupyter_deploy.get("uiiris")
for _ in range(30):
    dep.predict(X.head(2))`;

test.use({ autoGoto: true });

test('deploy, watch, scale, roll back and delete from the panel', async ({
  page
}) => {
  test.setTimeout(15 * 60 * 1000);

  await page.notebook.createNew('deploy.ipynb');
  await page.notebook.setCell(0, 'code', TRAIN);
  await page.notebook.runCell(0);

  // Open the panel from the command palette's command.
  await page.evaluate(() =>
    window.jupyterapp.commands.execute('jupyter-deploy:open')
  );
  const panel = page.locator('#jupyter-deploy-panel');
  await expect(panel).toBeVisible();

  // The kernel's model is offered; the embedded cluster is not running yet.
  const model = panel.locator('select.jp-deploy-model');
  await expect(model.locator('option')).toHaveText([
    'clf (LogisticRegression)'
  ]);
  await expect(panel.locator('.jp-deploy-cluster')).toContainText(
    'No cluster is running'
  );

  // Deploy v1 with a name, a replica range and a sample.
  await panel.locator('input.jp-deploy-name-input').fill('uiiris');
  await panel.locator('select.jp-deploy-sample').selectOption('X');
  await panel.locator('button.jp-deploy-submit').click();
  await expect(panel.locator('.jp-deploy-progress')).toContainText(
    'Deployed uiiris v1',
    {
      timeout: DEPLOY_TIMEOUT
    }
  );
  const row = panel.locator('li.jp-deploy-row[data-name="uiiris"]');
  await expect(row).toBeVisible({ timeout: ACTION_TIMEOUT });
  await expect(row.locator('.jp-deploy-version')).toHaveText('v1');
  await expect(row.locator('.jp-deploy-status')).toHaveText('RUNNING', {
    timeout: ACTION_TIMEOUT
  });
  await expect(row.locator('.jp-deploy-url')).toContainText('/uiiris');
  await expect(panel.locator('.jp-deploy-cluster')).toContainText('Connected');

  // Live figures: traffic from the notebook shows up as a rate and a p95 latency.
  await page.notebook.addCell('code', TRAFFIC);
  await page.notebook.runCell((await page.notebook.getCellCount()) - 1);
  const rate = row.locator('.jp-deploy-rate');
  await expect
    .poll(async () => Number(await rate.getAttribute('data-total')), {
      timeout: ACTION_TIMEOUT
    })
    .toBeGreaterThanOrEqual(30);
  await expect(rate).toHaveText(/^[\d.]+ req\/s$/);
  await expect(rate).not.toHaveText('0 req/s');
  await expect(row.locator('.jp-deploy-p95')).toHaveText(/^p95 [\d.]+ ms$/);

  // Scale to 1-3 replicas.
  await row.locator('button.jp-deploy-scale').click();
  await row.locator('input.jp-deploy-scale-min').fill('1');
  await row.locator('input.jp-deploy-scale-max').fill('3');
  await row.locator('button.jp-deploy-scale-apply').click();
  await expect(row.locator('.jp-deploy-replicas')).toHaveText(/ \/ 1–3$/, {
    timeout: ACTION_TIMEOUT
  });

  await expect(row.locator('.jp-deploy-scale-editor')).toBeHidden();
  await expect(row.locator('.jp-deploy-status')).toHaveText('RUNNING', {
    timeout: ACTION_TIMEOUT
  });
  if (process.env.JD_UI_SCREENSHOTS) {
    const docs = path.resolve(__dirname, '../../../docs');
    await page.screenshot({ path: path.join(docs, 'panel.png') });
    await page.theme.setDarkTheme();
    await page.screenshot({ path: path.join(docs, 'panel-dark.png') });
    await page.theme.setLightTheme();
  }

  // A second version from the panel, then roll back to the first.
  await expect(row.locator('button.jp-deploy-rollback')).toBeDisabled();
  await panel.locator('button.jp-deploy-submit').click();
  await expect(panel.locator('.jp-deploy-progress')).toContainText(
    'Deployed uiiris v2',
    {
      timeout: DEPLOY_TIMEOUT
    }
  );
  await expect(row.locator('.jp-deploy-version')).toHaveText('v2', {
    timeout: ACTION_TIMEOUT
  });
  await row.locator('button.jp-deploy-rollback').click();
  await expect(row.locator('.jp-deploy-version')).toHaveText('v1', {
    timeout: ACTION_TIMEOUT
  });
  await expect(panel.locator('.jp-deploy-error')).toBeHidden();
  await expect(row.locator('button.jp-deploy-rollback')).toBeDisabled();

  // v2 is newer than the live v1: Promote gives it all the traffic again.
  await expect(row.locator('button.jp-deploy-promote')).toBeEnabled();
  await row.locator('button.jp-deploy-promote').click();
  await expect(row.locator('.jp-deploy-version')).toHaveText('v2', {
    timeout: ACTION_TIMEOUT
  });
  await expect(row.locator('button.jp-deploy-promote')).toBeDisabled();

  // A mistake is shown in plain words in the panel, and nothing is deployed.
  await panel.locator('input.jp-deploy-name-input').fill('Bad Name!');
  await panel.locator('button.jp-deploy-submit').click();
  await expect(panel.locator('.jp-deploy-error')).toHaveText(
    /^Invalid deployment name 'Bad Name!': use 1-63 lowercase letters/,
    { timeout: ACTION_TIMEOUT }
  );
  await expect(panel.locator('li.jp-deploy-row')).toHaveCount(1);

  // The live monitor opens in the notebook.
  await row.locator('button.jp-deploy-monitor').click();
  await expect(page.locator('.jp-Notebook .jp-Cell').last()).toContainText(
    'jupyter_deploy.get("uiiris").monitor()'
  );

  // Delete, after confirming.
  await row.locator('button.jp-deploy-delete').click();
  await page.locator('.jp-Dialog button.jp-mod-warn').click();
  await expect(row).toHaveCount(0, { timeout: ACTION_TIMEOUT });
  await expect(panel.locator('.jp-deploy-empty')).toBeVisible();

  // The cluster goes away while the panel is open: the panel says so, and starts it again.
  await page.notebook.addCell('code', 'jupyter_deploy.stop_cluster()');
  await page.notebook.runCell((await page.notebook.getCellCount()) - 1);
  const cluster = panel.locator('.jp-deploy-cluster');
  await expect(cluster).toContainText('No cluster is running', {
    timeout: ACTION_TIMEOUT
  });
  await panel.locator('button.jp-deploy-start').click();
  await expect(cluster).toContainText('Connected to the embedded cluster', {
    timeout: DEPLOY_TIMEOUT
  });
  await expect(panel.locator('.jp-deploy-empty')).toBeVisible();
});
