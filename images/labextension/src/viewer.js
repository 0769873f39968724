// Open cube files and LAMMPS dumps from the file browser in corehour's results viewer
// (voila_apps/viewer, served by the same notebook server at viewer/).  Double-click, or
// "Open With › 3D viewer", opens the viewer in a new browser tab: JupyterHub forbids framing
// a person's pages (frame-ancestors 'none', so another server on the portal cannot frame
// them), and the viewer keeps that rule.  A notification says where it went, with a button
// to open it again.  The file itself is never loaded into JupyterLab: the viewer's server
// reads it and sends only what the browser draws.

import { Notification } from '@jupyterlab/apputils';
import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import { ABCWidgetFactory, DocumentWidget, TextModelFactory } from '@jupyterlab/docregistry';
import { Widget } from '@lumino/widgets';

const FACTORY = '3D viewer';
const MODEL = 'corehour-viewer';
const FILE_TYPES = [
  {
    name: 'corehour-cube',
    displayName: 'Cube file (orbital or density)',
    extensions: ['.cube', '.cub'],
    mimeTypes: ['chemical/x-cube'],
    iconClass: 'ch-viewer-icon',
    fileFormat: null,
    contentType: 'file'
  },
  {
    name: 'corehour-lammps-dump',
    displayName: 'LAMMPS trajectory',
    extensions: ['.lammpstrj', '.dump'],
    mimeTypes: ['text/plain'],
    iconClass: 'ch-viewer-icon',
    fileFormat: null,
    contentType: 'file'
  }
];

// A model that asks the server for the file's name and dates only, never its content.
class NoContentModelFactory extends TextModelFactory {
  get name() {
    return MODEL;
  }
  get fileFormat() {
    return null;
  }
}

// The viewer page itself, in an iframe: a page of this same server, so same origin.
export function viewerUrl(baseUrl, path) {
  return `${URLExt.join(baseUrl, 'viewer/')}?${new URLSearchParams({ path })}`;
}

class ViewerFactory extends ABCWidgetFactory {
  createNewWidget(context) {
    const url = viewerUrl(PageConfig.getBaseUrl(), context.localPath);
    const name = context.localPath.split('/').pop();
    const widget = new DocumentWidget({ content: new Widget(), context });
    // JupyterLab keeps no tab of its own for the file: it closes at once.
    requestAnimationFrame(() => widget.close());
    // Only a person's double-click or menu choice opens the viewer, never JupyterLab
    // restoring a layout it saved while such a tab was open for a moment.
    const asked = !navigator.userActivation || navigator.userActivation.isActive;
    if (!asked) {
      return widget;
    }
    const tab = window.open(url, '_blank');
    if (tab) {
      tab.opener = null;
    }
    const again = { label: 'Open again', callback: () => window.open(url, '_blank') };
    if (tab) {
      Notification.success(`${name} opened in the 3D viewer, in a new browser tab.`, {
        autoClose: 6000,
        actions: [again]
      });
    } else {
      Notification.warning(`Your browser kept the 3D viewer from opening a tab for ${name}.`, {
        autoClose: false,
        actions: [{ ...again, label: 'Open the 3D viewer' }]
      });
    }
    return widget;
  }
}

export const viewerPlugin = {
  id: '@corehour/usage:viewer',
  description: 'Opens cube files and LAMMPS dumps in corehour\'s 3D results viewer.',
  autoStart: true,
  activate: app => {
    const registry = app.docRegistry;
    registry.addModelFactory(new NoContentModelFactory());
    for (const fileType of FILE_TYPES) {
      registry.addFileType(fileType);
    }
    const names = FILE_TYPES.map(t => t.name);
    registry.addWidgetFactory(
      new ViewerFactory({
        name: FACTORY,
        label: '3D viewer',
        modelName: MODEL,
        fileTypes: names,
        defaultFor: names,
        readOnly: true
      })
    );
  }
};
