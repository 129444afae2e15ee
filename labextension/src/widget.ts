/**
 * The notebook widget's front end: an anywidget ES module (bundled by esbuild
 * into bioimnb/static/viewer.js) that runs the shared BioViewer with a tile
 * source speaking to the kernel through custom comm messages.
 *
 * Requests:  {type: "tile"|"info"|"values"|"histogram", id, ...}
 * Replies:   {type, id, ...} (+ pixels as buffers for tiles) or
 *            {type: "error", id, message}.
 * Tiles of multichannel images are asked for with fmt "channels" (one buffer
 * of raw pixels per channel; the viewer composites them, so contrast, colour
 * and visibility changes need no message); RGB images and label overlays with
 * fmt "raw" (composited RGBA bytes).
 * Aborted tile requests are announced with {type: "cancel", ids: [...]}, so
 * the kernel skips renders nobody waits for any more.
 * The kernel sends {type: "refresh"} (no id) when the image changed under the
 * same view (`v.update(obj)`, `v.add_labels`, `v.remove_labels`): the viewer
 * forgets its tiles and draws the current view again from the new `info`.
 */
import type { AnyModel, AnyWidget, RenderProps } from '@anywidget/types';
import { BioViewer } from './viewer/viewer';
import { jsonEqual } from './viewer/format';
import {
  ChannelData,
  ChannelDtype,
  ChannelTile,
  ChannelTileRequest,
  Histogram,
  ImageInfo,
  TileRequest,
  TileSource,
  ValuesRequest,
  ValuesResult,
  ViewState,
  abortError
} from './viewer/types';

/** The traits of `bioimnb.widgets.viewer.ViewerWidget` this module reads and writes. */
interface ViewerTraits {
  info: ImageInfo | null;
  view: Partial<ViewState> | null;
  height: number;
}

type Model = AnyModel<ViewerTraits>;

interface Reply {
  content: Record<string, unknown>;
  buffers: DataView[];
}

interface Pending {
  resolve: (reply: Reply) => void;
  reject: (error: Error) => void;
  timer: number;
}

/** No answer at all from the kernel for this long: it is gone (or busy). */
const FIRST_CONTACT_MS = 30000;
const REPLY_MS = 300000;

export class CommTileSource implements TileSource {
  /** The kernel blends label overlays at the requested opacity. */
  readonly labelOpacity = true;
  private readonly pending = new Map<string, Pending>();
  private readonly prefix = Math.random().toString(36).slice(2, 10);
  private seq = 0;
  private heard = false;
  private cancelled: string[] = [];
  private readonly onMessage: (msg: unknown, buffers: DataView[]) => void;

  constructor(private readonly model: Model) {
    this.onMessage = (msg: unknown, buffers: DataView[]) => {
      this.receive(msg as Record<string, unknown>, buffers ?? []);
    };
    model.on('msg:custom', this.onMessage);
  }

  info(scene: number): Promise<ImageInfo> {
    const info = this.model.get('info');
    if (info && info.levels && info.scene === scene) {
      return Promise.resolve(info);
    }
    return this.request({ type: 'info', scene }).then(r => r.content.info as ImageInfo);
  }

  async tile(req: TileRequest): Promise<Blob | ImageBitmap> {
    const { signal, ...rest } = req;
    // Raw RGBA from the kernel: no PNG decode in the browser (the slow step of a repaint).
    const reply = await this.request({ type: 'tile', fmt: 'raw', ...rest }, signal);
    const buffer = reply.buffers[0];
    if (!buffer) {
      throw new Error('the kernel sent a tile without pixels');
    }
    if (reply.content.mime === 'raw') {
      const w = Number(reply.content.w);
      const h = Number(reply.content.h);
      const pixels = new Uint8ClampedArray(buffer.buffer as ArrayBuffer, buffer.byteOffset, buffer.byteLength);
      return createImageBitmap(new ImageData(pixels, w, h));
    }
    const bytes = new Uint8Array(buffer.buffer as ArrayBuffer, buffer.byteOffset, buffer.byteLength);
    return new Blob([bytes], { type: String(reply.content.mime ?? 'image/png') });
  }

  /** Raw single-channel tiles (`TileRenderer.raw_tile`), composited by the viewer. */
  async channelTiles(req: ChannelTileRequest): Promise<ChannelTile[]> {
    const { signal, ...rest } = req;
    const reply = await this.request({ type: 'tile', fmt: 'channels', ...rest }, signal);
    const content = reply.content;
    const dtype = String(content.dtype) as ChannelDtype;
    const w = Number(content.w);
    const h = Number(content.h);
    const channels = (content.channels as number[] | undefined) ?? [];
    if (reply.buffers.length < channels.length) {
      throw new Error('the kernel sent a tile without pixels');
    }
    return channels.map((channel, i) => ({
      channel,
      w,
      h,
      dtype,
      data: channelData(dtype, reply.buffers[i], w * h)
    }));
  }

  values(req: ValuesRequest): Promise<ValuesResult> {
    const { signal, ...rest } = req;
    return this.request({ type: 'values', ...rest }, signal).then(
      r => r.content.result as ValuesResult
    );
  }

  histogram(scene: number, channel: number): Promise<Histogram> {
    return this.request({ type: 'histogram', scene, channel }).then(
      r => r.content.result as Histogram
    );
  }

  dispose(): void {
    this.model.off('msg:custom', this.onMessage);
    for (const p of this.pending.values()) {
      window.clearTimeout(p.timer);
      p.reject(abortError());
    }
    this.pending.clear();
  }

  private request(content: Record<string, unknown>, signal?: AbortSignal): Promise<Reply> {
    if (signal?.aborted) {
      return Promise.reject(abortError());
    }
    const id = `${this.prefix}-${++this.seq}`;
    return new Promise<Reply>((resolve, reject) => {
      const timeout = this.heard ? REPLY_MS : FIRST_CONTACT_MS;
      const timer = window.setTimeout(() => {
        this.pending.delete(id);
        reject(
          new Error(
            this.heard
              ? 'the Python kernel did not answer in time'
              : 'no answer from the Python kernel. Run the cell that created this viewer ' +
                  '(the view is kept in its `view` attribute); tiles are read by the kernel, ' +
                  'and it waits while another cell is running.'
          )
        );
      }, timeout);
      this.pending.set(id, { resolve, reject, timer });
      signal?.addEventListener('abort', () => {
        const p = this.pending.get(id);
        if (p) {
          window.clearTimeout(p.timer);
          this.pending.delete(id);
          this.cancel(id);
          p.reject(abortError());
        }
      });
      this.model.send({ ...content, id });
    });
  }

  /** Batch cancellations into one message per task. */
  private cancel(id: string): void {
    this.cancelled.push(id);
    if (this.cancelled.length === 1) {
      queueMicrotask(() => {
        const ids = this.cancelled;
        this.cancelled = [];
        this.model.send({ type: 'cancel', ids });
      });
    }
  }

  private receive(content: Record<string, unknown>, buffers: DataView[]): void {
    if (!content || typeof content !== 'object') {
      return;
    }
    this.heard = true;
    const id = content.id as string | undefined;
    const pending = id !== undefined ? this.pending.get(id) : undefined;
    if (!pending || id === undefined) {
      return; // stale (cancelled) or for another view of the same model
    }
    this.pending.delete(id);
    window.clearTimeout(pending.timer);
    if (content.type === 'error') {
      pending.reject(new Error(String(content.message ?? 'the kernel reported an error')));
    } else {
      pending.resolve({ content, buffers });
    }
  }
}

/** A typed view of one channel buffer (copied only when misaligned). */
function channelData(dtype: ChannelDtype, view: DataView, n: number): ChannelData {
  const Ctor =
    dtype === 'uint8' ? Uint8Array : dtype === 'uint16' ? Uint16Array : dtype === 'float32' ? Float32Array : null;
  if (!Ctor) {
    throw new Error(`the kernel sent channel pixels of an unknown type (${dtype})`);
  }
  const bytes = n * Ctor.BYTES_PER_ELEMENT;
  if (view.byteLength < bytes) {
    throw new Error('the kernel sent a truncated tile');
  }
  let buffer = view.buffer as ArrayBuffer;
  let offset = view.byteOffset;
  if (offset % Ctor.BYTES_PER_ELEMENT !== 0) {
    buffer = buffer.slice(offset, offset + bytes);
    offset = 0;
  }
  return new Ctor(buffer, offset, n);
}

function render({ model, el }: RenderProps<ViewerTraits>): () => void {
  const source = new CommTileSource(model);
  const info = model.get('info');
  const height = Number(model.get('height')) || 520;
  const viewer = new BioViewer(el, source, {
    view: model.get('view') ?? {},
    height: `${height}px`,
    title: info?.source,
    cacheTiles: 160,
    onViewChange: view => {
      if (!jsonEqual(view, model.get('view'))) {
        model.set('view', view);
        model.save_changes();
      }
    }
  });
  const onView = (): void => {
    const view = model.get('view');
    if (view && typeof view === 'object') {
      viewer.setView(view as Partial<ViewState>);
    }
  };
  const onHeight = (): void => {
    viewer.node.style.height = `${Number(model.get('height')) || 520}px`;
  };
  const onRefresh = (msg: unknown): void => {
    const content = msg as { type?: string; view?: Partial<ViewState> } | null;
    if (content && content.type === 'refresh') {
      viewer.refresh(content.view ?? null);
    }
  };
  model.on('change:view', onView);
  model.on('change:height', onHeight);
  model.on('msg:custom', onRefresh);
  return () => {
    model.off('change:view', onView);
    model.off('change:height', onHeight);
    model.off('msg:custom', onRefresh);
    viewer.dispose();
    source.dispose();
  };
}

const widget: AnyWidget<ViewerTraits> = { render };

export default widget;
