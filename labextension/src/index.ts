/**
 * jupyter-deploy: the Deploy panel in JupyterLab's left sidebar.
 *
 * Plugin `jupyter-deploy:plugin` adds the panel (layout restored on reload), its
 * commands (in the command palette) and its settings (schema/plugin.json).
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  Clipboard,
  Dialog,
  ICommandPalette,
  Notification,
  showDialog
} from '@jupyterlab/apputils';
import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { LabIcon } from '@jupyterlab/ui-components';

import { IReplicaDefaults } from './deployForm';
import { DeploymentsModel } from './model';
import { DeployPanel } from './panel';
import { serverClient } from './request';

const PLUGIN_ID = 'jupyter-deploy:plugin';

export namespace CommandIDs {
  export const open = 'jupyter-deploy:open';
  export const refresh = 'jupyter-deploy:refresh';
  export const startCluster = 'jupyter-deploy:start-cluster';
}

const ROCKET_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">' +
  '<path class="jp-icon3" fill="#616161" d="M12 2c3.5 2 5.5 5.6 5.5 9.6 0 1.3-.2 2.5-.6 ' +
  '3.6l2.6 2.6-2.3 2.2-2.3-1.6H9.1L6.8 20 4.5 17.8l2.6-2.6c-.4-1.1-.6-2.3-.6-3.6C6.5 7.6 ' +
  '8.5 4 12 2zm0 6.2a2 2 0 1 0 0 4 2 2 0 0 0 0-4zM10 19h4l-2 3z"/></svg>';

export const rocketIcon = new LabIcon({
  name: 'jupyter-deploy:rocket',
  svgstr: ROCKET_SVG
});

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'Deploy, watch, scale and roll back models from a sidebar panel.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ILayoutRestorer, ICommandPalette, ISettingRegistry],
  activate: async (
    app: JupyterFrontEnd,
    notebooks: INotebookTracker,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null
  ) => {
    let interval = 2;
    const defaults: IReplicaDefaults = { minReplicas: null, maxReplicas: null };
    const model = new DeploymentsModel(serverClient(), {
      interval,
      isVisible: () => panel.isVisible
    });

    const panel: DeployPanel = new DeployPanel({
      model,
      defaults,
      kernels: {
        kernel: () =>
          notebooks.currentWidget?.sessionContext.session?.kernel ?? null,
        label: () => notebooks.currentWidget?.title.label ?? 'no notebook'
      },
      actions: {
        copy: (text, what) => {
          Clipboard.copyToSystem(text);
          Notification.info(`Copied the ${what}.`, { autoClose: 2000 });
        },
        monitor: name => void openMonitor(notebooks, name),
        confirmDelete: async name => {
          const result = await showDialog({
            title: `Delete ${name}?`,
            body: `Stop serving '${name}' and forget its versions. Clients of its URL will get errors.`,
            buttons: [
              Dialog.cancelButton(),
              Dialog.warnButton({ label: 'Delete' })
            ]
          });
          return result.button.accept;
        }
      }
    });
    panel.title.icon = rocketIcon;
    app.shell.add(panel, 'left', { rank: 600 });
    notebooks.currentChanged.connect(() => panel.kernelChanged());

    if (restorer) {
      restorer.add(panel, 'jupyter-deploy-panel');
    }

    app.commands.addCommand(CommandIDs.open, {
      label: 'Deploy: Show the Deploy Panel',
      icon: rocketIcon,
      execute: () => app.shell.activateById(panel.id)
    });
    app.commands.addCommand(CommandIDs.refresh, {
      label: 'Deploy: Refresh Deployments',
      execute: () => model.refresh()
    });
    app.commands.addCommand(CommandIDs.startCluster, {
      label: 'Deploy: Start the Embedded Cluster',
      execute: () => model.startCluster()
    });
    if (palette) {
      for (const command of Object.values(CommandIDs)) {
        palette.addItem({ command, category: 'Deploy' });
      }
    }

    if (settingRegistry) {
      try {
        const settings = await settingRegistry.load(PLUGIN_ID);
        const apply = () => {
          interval = settings.get('refreshInterval').composite as number;
          defaults.minReplicas = settings.get('defaultMinReplicas')
            .composite as number | null;
          defaults.maxReplicas = settings.get('defaultMaxReplicas')
            .composite as number | null;
          model.setInterval(interval);
        };
        apply();
        settings.changed.connect(apply);
      } catch (reason) {
        console.warn('jupyter-deploy: settings not loaded', reason);
      }
    }
    void model.start();
  }
};

/** Add a cell running the live monitor of ``name`` below the active cell, and run it. */
async function openMonitor(
  notebooks: INotebookTracker,
  name: string
): Promise<void> {
  const current = notebooks.currentWidget;
  if (!current) {
    Notification.warning('Open a notebook to show the monitor in.');
    return;
  }
  const notebook = current.content;
  NotebookActions.insertBelow(notebook);
  const cell = notebook.activeCell;
  if (!cell) {
    return;
  }
  cell.model.sharedModel.setSource(
    `import jupyter_deploy\njupyter_deploy.get(${JSON.stringify(name)}).monitor()`
  );
  await NotebookActions.run(notebook, current.sessionContext);
}

export default plugin;
