import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { MainAreaWidget, WidgetTracker } from '@jupyterlab/apputils';
import { URLExt } from '@jupyterlab/coreutils';
import { IDocumentWidget } from '@jupyterlab/docregistry';
import { FileBrowser, IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { ServerConnection } from '@jupyterlab/services';
import { IStateDB } from '@jupyterlab/statedb';
import { imageIcon } from '@jupyterlab/ui-components';
import { BrowserFlags, IListingPage } from './browserflags';
import { BrowsePanel } from './sidepanel';
import FILE_TYPE_DATA from './filetypes.json';
import {
  FACTORY,
  MODEL,
  NoContentModelFactory,
  ViewerFactory,
  ViewerPanel
} from './document';

/**
 * GET a JSON document from the bioimnb server extension.
 *
 * Requests go through ServerConnection so that they carry the user's auth
 * (token / XSRF cookie) and honour the server's base URL (e.g. /user/<name>/
 * under JupyterHub).
 */
export async function requestAPI<T>(
  endPoint: string,
  init: RequestInit = {}
): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'bioimnb', endPoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  let data: unknown = text;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch (error) {
      console.error('bioimnb: not a JSON response body.', response);
    }
  }
  if (!response.ok) {
    // bioimnb answers {"error": "<one line>"}; Jupyter's own handlers {"message": ...}.
    const body = data as { error?: string; message?: string } | null;
    const detail = body?.error ?? body?.message ?? String(data);
    throw new ServerConnection.ResponseError(response, detail);
  }
  return data as T;
}

/** GET a binary route of the bioimnb server extension (thumbnails) as a Blob. */
export async function requestBlob(endPoint: string, init: RequestInit = {}): Promise<Blob> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'bioimnb', endPoint);
  const response = await ServerConnection.makeRequest(url, init, settings);
  if (!response.ok) {
    let detail = response.statusText;
    try {
      detail = ((await response.json()) as { error?: string }).error ?? detail;
    } catch {
      // not JSON
    }
    throw new ServerConnection.ResponseError(response, detail);
  }
  return response.blob();
}

/** A case-insensitive pattern matching any of `extensions` at the end of a name. */
function extensionPattern(extensions: string[]): string {
  const any = (ext: string): string =>
    ext
      .replace(/^\./, '')
      .split('')
      .map(c => (/[a-z]/i.test(c) ? `[${c.toLowerCase()}${c.toUpperCase()}]` : c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
      .join('');
  return `\\.(${extensions.map(any).join('|')})$`;
}

/**
 * The file types bioimnb opens by default, and those it is only offered for ("Open With").
 * Generated from the Python reader registry (`python -m bioimnb.core.registry >
 * src/filetypes.json`); a test keeps the two equal, so a new reader needs no edit here.
 */
/**
 * Types that JupyterLab also registers for the same extensions (its own `tiff`, shown by its
 * image viewer as a broken image because browsers cannot decode TIFF) get a name pattern: the
 * document registry matches patterns before extensions, so bioimnb's type, and with it the
 * bioimnb viewer as default, wins for every `.tif`/`.tiff`.
 */
const SHADOWS_LAB_TYPE = new Set(['bioimnb-tiff']);
const FILE_TYPES = FILE_TYPE_DATA.filter(ft => ft.default).map(ft => ({
  name: ft.name,
  displayName: ft.displayName,
  extensions: ft.extensions,
  mimeTypes: ['application/octet-stream'],
  ...(SHADOWS_LAB_TYPE.has(ft.name) ? { pattern: extensionPattern(ft.extensions) } : {})
}));
const DEFAULT_FOR = FILE_TYPES.map(ft => ft.name);
/** JupyterLab's own types for the plain formats (.tif/.tiff, .png, .jpg): offered there too. */
const ALSO_FOR = ['tiff', 'png', 'jpeg'];

const OPEN_COMMAND = 'bioimnb:open-viewer';
const ZARR = /\.zarr\/?$/i;

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'bioimnb:plugin',
  description: 'Bioimage data management inside JupyterLab: the multiresolution viewer.',
  autoStart: true,
  optional: [IFileBrowserFactory, ILayoutRestorer, IStateDB],
  activate: (
    app: JupyterFrontEnd,
    browsers: IFileBrowserFactory | null,
    restorer: ILayoutRestorer | null,
    state: IStateDB | null
  ) => {
    const { docRegistry, commands } = app;

    // -- files: a document widget factory that loads no file content -------------------
    docRegistry.addModelFactory(new NoContentModelFactory());
    for (const ft of FILE_TYPES) {
      docRegistry.addFileType({ ...ft, icon: imageIcon, contentType: 'file' });
    }
    // Views are remembered per path in the state database (saved with the workspace).
    const factory = new ViewerFactory(
      {
        name: FACTORY,
        label: 'bioimnb viewer',
        modelName: MODEL,
        fileTypes: [...DEFAULT_FOR, ...ALSO_FOR],
        defaultFor: DEFAULT_FOR,
        readOnly: true,
        canStartKernel: false,
        preferKernel: false
      },
      state
    );
    // Open viewer tabs are tracked, so that a reload (the workspace) reopens them.
    const documents = new WidgetTracker<IDocumentWidget<ViewerPanel>>({
      namespace: 'bioimnb-document'
    });
    factory.widgetCreated.connect((_, widget) => {
      widget.title.icon = imageIcon;
      widget.context.pathChanged.connect(() => void documents.save(widget));
      void documents.add(widget);
    });
    docRegistry.addWidgetFactory(factory);
    if (restorer) {
      void restorer.restore(documents, {
        command: 'docmanager:open',
        args: widget => ({ path: widget.context.path, factory: FACTORY }),
        name: widget => widget.context.path
      });
    }

    // -- folders (OME-Zarr): main-area widgets opened by command -----------------------
    const tracker = new WidgetTracker<MainAreaWidget<ViewerPanel>>({
      namespace: 'bioimnb-viewer'
    });
    const openFolder = (path: string): MainAreaWidget<ViewerPanel> => {
      const clean = path.replace(/\/+$/, '');
      const existing = tracker.find(w => w.content.path === clean);
      if (existing) {
        app.shell.activateById(existing.id);
        return existing;
      }
      const content = new ViewerPanel(clean, state);
      const widget = new MainAreaWidget({ content });
      widget.id = `bioimnb-viewer-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
      widget.title.label = clean.split('/').pop() || clean;
      widget.title.caption = clean;
      widget.title.icon = imageIcon;
      widget.title.closable = true;
      widget.addClass('bioimnb-document');
      void tracker.add(widget);
      app.shell.add(widget, 'main');
      app.shell.activateById(widget.id);
      return widget;
    };

    const selected = (): { path: string; type: string } | null => {
      const browser: FileBrowser | null | undefined = browsers?.tracker.currentWidget;
      const item = browser?.selectedItems().next();
      if (!item || item.done || !item.value) {
        return null;
      }
      return { path: item.value.path, type: item.value.type };
    };

    commands.addCommand(OPEN_COMMAND, {
      label: 'Open in bioimnb viewer',
      caption: 'Show this image (OME-Zarr folder or image file) in the bioimnb viewer',
      icon: imageIcon,
      execute: args => {
        const path = (args.path as string | undefined) ?? selected()?.path;
        if (!path) {
          return;
        }
        const type = (args.type as string | undefined) ?? selected()?.type ?? 'directory';
        if (type === 'directory') {
          return openFolder(path);
        }
        return commands.execute('docmanager:open', { path, factory: FACTORY });
      }
    });
    app.contextMenu.addItem({
      command: OPEN_COMMAND,
      selector: '.jp-DirListing-item[data-isdir="true"]',
      rank: 2
    });

    if (restorer) {
      void restorer.restore(tracker, {
        command: OPEN_COMMAND,
        args: widget => ({ path: widget.content.path, type: 'directory' }),
        name: widget => widget.content.path
      });
    }

    // The server's classification marks the browser's rows (image folders, incomplete
    // conversions, unreadable images).  Double-click on a folder that is an image (an OME-Zarr
    // by its metadata; by its *.zarr name until the server has answered) opens the viewer
    // instead of entering the folder (hold Shift to enter it as usual).  A capturing listener
    // on the browser runs before the listing's own double-click handler.
    const listFolder = (path: string): Promise<IListingPage> =>
      requestAPI<IListingPage>(
        `api/ls?${new URLSearchParams({ path, page_size: '1000' }).toString()}`
      );
    const hook = (browser: FileBrowser): void => {
      const flags = new BrowserFlags(browser, listFolder);
      browser.node.addEventListener(
        'dblclick',
        (event: MouseEvent) => {
          if (event.shiftKey) {
            return;
          }
          const item = browser.modelForClick(event);
          const known = item ? flags.entry(item.name) : undefined;
          const isImage = known ? known.kind === 'image' : Boolean(item && ZARR.test(item.name));
          if (item && item.type === 'directory' && isImage) {
            event.preventDefault();
            event.stopPropagation();
            openFolder(item.path);
          }
        },
        true
      );
    };
    if (browsers) {
      browsers.tracker.forEach(hook);
      browsers.tracker.widgetAdded.connect((_, browser) => hook(browser));
    }

    // -- the left-sidebar storage browser ------------------------------------------------
    const panel = new BrowsePanel({
      getJSON: <T>(endPoint: string) => requestAPI<T>(endPoint),
      getBlob: requestBlob,
      openViewer: (path, isFolder, location) => {
        if (location) {
          // An image of a configured storage location: a viewer tab of its own (not a
          // document of the server's contents).
          const content = new ViewerPanel(path, null, location);
          const widget = new MainAreaWidget({ content });
          widget.id = `bioimnb-viewer-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
          widget.title.label = path.split('/').pop() || path;
          widget.title.caption = path;
          widget.title.icon = imageIcon;
          widget.title.closable = true;
          widget.addClass('bioimnb-document');
          app.shell.add(widget, 'main');
          app.shell.activateById(widget.id);
        } else if (isFolder) {
          openFolder(path);
        } else {
          void commands.execute('docmanager:open', { path, factory: FACTORY });
        }
      }
    });
    panel.title.icon = imageIcon;
    app.shell.add(panel, 'left', { rank: 850 });
    if (restorer) {
      restorer.add(panel, 'bioimnb-storage-browser');
    }
    void app.restored.then(() => panel.start());

    requestAPI<{ version: string }>('version').catch(reason => {
      console.error('bioimnb: the bioimnb server extension did not answer.', reason);
    });
  }
};

export default plugin;
