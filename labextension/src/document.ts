/**
 * The JupyterLab document viewer: the shared BioViewer inside a Lumino widget,
 * fed by the REST tile source.  Files open through a widget factory whose
 * model factory loads no content (`fileFormat: null`), so opening a 20 GB slide
 * transfers only the tiles on screen; OME-Zarr folders open as main-area widgets.
 */
import {
  ABCWidgetFactory,
  DocumentRegistry,
  DocumentWidget,
  IDocumentWidget,
  TextModelFactory
} from '@jupyterlab/docregistry';
import { Contents } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';
import { RestTileSource } from './rest';
import { BioViewer } from './viewer/viewer';

export const FACTORY = 'bioimnb viewer';
export const MODEL = 'bioimnb-no-content';

/** Hosts one BioViewer for a server-relative path. */
export class ViewerPanel extends Widget {
  private viewer: BioViewer | null = null;

  constructor(readonly path: string) {
    super();
    this.addClass('bioimnb-doc');
    this.node.style.height = '100%';
    this.node.style.overflow = 'hidden';
    this.node.dataset.path = path;
    this.viewer = new BioViewer(this.node, new RestTileSource(path), {
      height: '100%',
      title: path.split('/').pop() || path,
      maxInFlight: 6
    });
  }

  get bioViewer(): BioViewer | null {
    return this.viewer;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.viewer?.dispose();
    this.viewer = null;
    super.dispose();
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
  protected createNewWidget(context: DocumentRegistry.Context): IDocumentWidget<ViewerPanel> {
    const content = new ViewerPanel(context.localPath);
    const widget = new DocumentWidget({ content, context });
    widget.addClass('bioimnb-document');
    return widget;
  }
}
