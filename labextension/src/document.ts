/**
 * The JupyterLab document viewer: the shared BioViewer inside a Lumino widget,
 * fed by the REST tile source.  Files open through a widget factory whose
 * model factory loads no content (`fileFormat: null`), so opening a 20 GB slide
 * transfers only the tiles on screen; OME-Zarr folders open as main-area widgets.
 *
 * With JupyterLab's state database, each path's view is remembered
 * (`memory.ts`): saved 500 ms after the last change (and when the tab closes),
 * restored before the viewer asks for its first tile.  Test hooks on the
 * panel node: data-view-restored ("true"/"false") once the viewer is created,
 * data-view-saves (writes to the state database so far).
 */
import {
  ABCWidgetFactory,
  DocumentRegistry,
  DocumentWidget,
  IDocumentWidget,
  TextModelFactory
} from '@jupyterlab/docregistry';
import { Contents } from '@jupyterlab/services';
import { IStateDB } from '@jupyterlab/statedb';
import { Widget } from '@lumino/widgets';
import { ViewMemory } from './memory';
import { RestTileSource } from './rest';
import { ViewState } from './viewer/types';
import { BioViewer } from './viewer/viewer';

export const FACTORY = 'bioimnb viewer';
export const MODEL = 'bioimnb-no-content';

/** Debounce of view saves to the state database (ms after the last change). */
const SAVE_DELAY = 500;

/** Hosts one BioViewer for a server-relative path. */
export class ViewerPanel extends Widget {
  private viewer: BioViewer | null = null;
  private readonly memory: ViewMemory | null;
  private saves = 0;

  /** `state`: JupyterLab's state database, where the path's view is remembered (optional). */
  constructor(
    readonly path: string,
    state: IStateDB | null = null,
    /** A configured storage location (side panel); `path` is then relative to it. */
    readonly location: string | null = null
  ) {
    super();
    this.addClass('bioimnb-doc');
    this.node.style.height = '100%';
    this.node.style.overflow = 'hidden';
    this.node.dataset.path = path;
    const source = new RestTileSource(path, undefined, location ? { location } : {});
    state = location ? null : state;
    this.memory = state ? new ViewMemory(state, path, SAVE_DELAY) : null;
    if (!this.memory) {
      this.open(source, null);
      return;
    }
    this.memory.saved = () => {
      this.node.dataset.viewSaves = String(++this.saves);
    };
    // The remembered view is checked against the image info (which the viewer
    // then reuses) before the viewer exists, so its first tiles are the restored view's.
    this.node.dataset.viewRestored = 'pending';
    void this.memory.recall(source).then(view => this.open(source, view));
  }

  get bioViewer(): BioViewer | null {
    return this.viewer;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    if (this.memory) {
      const info = this.viewer?.imageInfo;
      if (this.viewer && info) {
        this.memory.saveSoon(info, this.viewer.view);
      }
      void this.memory.flush();
      this.memory.dispose();
    }
    this.viewer?.dispose();
    this.viewer = null;
    super.dispose();
  }

  private open(source: RestTileSource, view: ViewState | null): void {
    if (this.isDisposed) {
      return;
    }
    const memory = this.memory;
    this.viewer = new BioViewer(this.node, source, {
      view,
      height: '100%',
      title: this.path.split('/').pop() || this.path,
      maxInFlight: 6,
      // Saving is debounced by the memory (SAVE_DELAY), not twice.
      viewChangeDelay: memory ? 0 : undefined,
      onViewChange: memory
        ? next => {
            const info = this.viewer?.imageInfo;
            if (info) {
              memory.saveSoon(info, next);
            }
          }
        : undefined
    });
    this.node.dataset.viewRestored = String(view !== null);
  }
}

/** A document model factory that never downloads the file's bytes. */
export class NoContentModelFactory extends TextModelFactory {
  get name(): string {
    return MODEL;
  }

  get contentType(): Contents.ContentType {
    return 'file';
  }

  get fileFormat(): Contents.FileFormat {
    return null;
  }
}

export class ViewerFactory extends ABCWidgetFactory<IDocumentWidget<ViewerPanel>> {
  /** `state`: where views are remembered (JupyterLab's state database), if available. */
  constructor(
    options: DocumentRegistry.IWidgetFactoryOptions<IDocumentWidget<ViewerPanel>>,
    private readonly state: IStateDB | null = null
  ) {
    super(options);
  }

  protected createNewWidget(context: DocumentRegistry.Context): IDocumentWidget<ViewerPanel> {
    const content = new ViewerPanel(context.localPath, this.state);
    const widget = new DocumentWidget({ content, context });
    widget.addClass('bioimnb-document');
    return widget;
  }
}
