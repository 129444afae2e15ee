/**
 * BioViewer: a framework-free multiresolution image viewer (DOM + canvas).
 *
 * It knows nothing about kernels or servers: tiles, image info, pixel values
 * and histograms come from a TileSource.  The notebook widget and the
 * JupyterLab document viewer differ only in the source they pass in.
 *
 * It is put together from three parts, each in its own module:
 * - `camera.ts`: centre, zoom, screen, the level to draw (the Python core's
 *   rule, tested against it with `node --test`) and the visible tiles;
 * - `loader.ts`: tile requests to the source, the caches of composited and
 *   raw channel tiles, aborting what the view no longer needs;
 * - `draw.ts`: painting a frame (coarse tiles first, finer ones over them),
 *   compositing raw channel tiles here (`composite.ts`), the overview.
 * This module holds the DOM, the events and the view state.
 *
 * Local compositing: when the source has `channelTiles` (the notebook widget),
 * the image is not RGB and no label overlay is shown, the viewer fetches raw
 * single-channel tiles, keeps them (LRU bounded in bytes, keyed by scene,
 * plane, level, tile and channel: not by contrast or colour) and composites
 * them itself (`composite.ts`, the same arithmetic as the kernel's
 * `composite_channels`) into per-tile canvases.  A contrast, colour or
 * visibility change then repaints from memory in the next frame; only a
 * channel that becomes visible and is not cached is fetched.  Otherwise tiles
 * come composited from the source (`tile`), one request per setting.
 *
 * Debug/test hooks are data attributes on the root node: data-state
 * (loading|ready|error), data-complete, data-tiles-requested,
 * data-tiles-received, data-levels-requested, data-target-level,
 * data-first-paint-ms, data-repaint-ms (key change -> every viewport tile
 * drawn with the new settings, whether composited here or fetched); each
 * channel block of the panel gets data-histogram="loaded" with its histogram.
 */
import { Camera } from './camera';
import { ControlsPanel, el } from './controls';
import { Painter, settingsKey } from './draw';
import {
  formatLength,
  formatValue,
  jsonEqual,
  normColor,
  scaleBar
} from './format';
import { Layer, TileLoader, sameLayer, tileKey } from './loader';
import { ensureStyles } from './style';
import {
  ChannelView,
  ImageInfo,
  TileSource,
  ValuesResult,
  ViewState
} from './types';

export interface ViewerOptions {
  /** Initial view (merged into the image's default view). */
  view?: Partial<ViewState> | null;
  /** Called (debounced) whenever the view changes, by the user or setView. */
  onViewChange?: (view: ViewState) => void;
  /** CSS height of the viewer (default: fill the host). */
  height?: string;
  /** Name shown in error messages before the image info is known. */
  title?: string;
  viewChangeDelay?: number;
  maxInFlight?: number;
  /** Composited tiles kept (decoded RGBA tiles, or canvases composited here). */
  cacheTiles?: number;
  /** Bytes of raw channel tiles kept for local compositing (default 128 MiB). */
  rawCacheBytes?: number;
}

function message(error: unknown): string {
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}

export class BioViewer {
  readonly node: HTMLDivElement;
  private readonly stage: HTMLDivElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly ctx: CanvasRenderingContext2D;
  private readonly overview: HTMLCanvasElement;
  private readonly overviewCtx: CanvasRenderingContext2D;
  private readonly scaleNode: HTMLDivElement;
  private readonly scaleText: HTMLSpanElement;
  private readonly scaleBarNode: HTMLDivElement;
  private readonly statusNode: HTMLDivElement;
  private readonly loadingNode: HTMLDivElement;
  private readonly errorNode: HTMLDivElement;
  private readonly bannerNode: HTMLDivElement;
  private readonly panel: ControlsPanel;
  private readonly camera = new Camera();
  private readonly loader: TileLoader;
  private readonly painter: Painter;
  private readonly resizeObserver: ResizeObserver;

  private info: ImageInfo | null = null;
  private state: ViewState;
  private pendingView: Partial<ViewState>;

  private renderKey = '';
  /** Drawn from now; `prev` is drawn under it until it is complete. */
  private layer: Layer | null = null;
  private prev: Layer | null = null;
  private complete = false;
  private readonly created = performance.now();
  private keyChangedAt = performance.now();
  private firstPaintMs: number | null = null;

  private drawScheduled = false;
  private disposed = false;
  private infoSeq = 0;
  private valuesSeq = 0;
  private valuesAbort: AbortController | null = null;
  private emitTimer = 0;
  private renderTimer = 0;
  private valuesTimer = 0;
  private lastEmitted: ViewState | null = null;
  private drag: { x: number; y: number; cx: number; cy: number; id: number } | null = null;
  private hover: { x: number; y: number } | null = null;
  private valuesText = '';

  constructor(
    host: HTMLElement,
    private readonly source: TileSource,
    private readonly options: ViewerOptions = {}
  ) {
    ensureStyles(host.ownerDocument);
    this.loader = new TileLoader(
      source,
      {
        maxInFlight: options.maxInFlight,
        cacheTiles: options.cacheTiles,
        rawCacheBytes: options.rawCacheBytes
      },
      () => this.requestDraw(),
      error => this.tileFailed(error)
    );
    this.painter = new Painter(this.camera, this.loader, () => this.state.channels, options.cacheTiles ?? 256);
    this.pendingView = { ...(options.view ?? {}) };
    this.state = {
      scene: this.pendingView.scene ?? 0,
      t: 0,
      z: 0,
      center_x: null,
      center_y: null,
      zoom: null,
      channels: [],
      labels: []
    };

    this.canvas = el('canvas', { class: 'bioimnb-canvas' });
    this.ctx = this.canvas.getContext('2d') as CanvasRenderingContext2D;
    this.overview = el('canvas', { class: 'bioimnb-overview', title: 'Overview: click to move there' });
    this.overviewCtx = this.overview.getContext('2d') as CanvasRenderingContext2D;
    this.scaleText = el('span');
    this.scaleBarNode = el('div', { class: 'bioimnb-scalebar-bar' });
    this.scaleNode = el('div', { class: 'bioimnb-scalebar' }, this.scaleText, this.scaleBarNode);
    this.scaleNode.hidden = true;
    this.statusNode = el('div', { class: 'bioimnb-status' });
    this.loadingNode = el('div', { class: 'bioimnb-loading' });
    this.errorNode = el('div', { class: 'bioimnb-error', role: 'alert' });
    this.errorNode.hidden = true;
    this.bannerNode = el('div', { class: 'bioimnb-banner', role: 'status' });
    this.bannerNode.hidden = true;

    const button = (label: string, title: string, onClick: () => void): HTMLButtonElement => {
      const b = el('button', { type: 'button', title, 'aria-label': title }, label);
      b.addEventListener('click', onClick);
      b.addEventListener('pointerdown', e => e.stopPropagation());
      b.addEventListener('dblclick', e => e.stopPropagation());
      return b;
    };
    const toolbar = el(
      'div',
      { class: 'bioimnb-toolbar' },
      button('+', 'Zoom in', () => this.zoomAt(1.5)),
      button('−', 'Zoom out', () => this.zoomAt(1 / 1.5)),
      button('Fit', 'Fit to view', () => this.fit()),
      button('☰', 'Show or hide the controls', () => {
        this.panel.node.classList.toggle('bioimnb-collapsed');
      })
    );

    this.stage = el(
      'div',
      { class: 'bioimnb-stage' },
      this.canvas,
      toolbar,
      this.overview,
      this.scaleNode,
      this.loadingNode,
      this.statusNode,
      this.bannerNode,
      this.errorNode
    );

    this.panel = new ControlsPanel({
      scene: index => this.setView({ scene: index }),
      t: value => this.setPlane({ t: value }),
      z: value => this.setPlane({ z: value }),
      channel: (index, patch, final) => this.setChannel(index, patch, final),
      label: (name, on) => {
        const labels = this.state.labels.filter(l => l !== name);
        if (on) {
          labels.push(name);
        }
        this.state = { ...this.state, labels };
        this.renderChanged(true);
      },
      ...(source.labelOpacity
        ? {
            labelOpacity: (value: number) => {
              this.state = { ...this.state, label_opacity: clamp(value, 0, 1) };
              this.renderChanged(true);
            }
          }
        : {}),
      histogram: channel => this.source.histogram(this.state.scene, channel)
    });

    this.node = el('div', { class: 'bioimnb-viewer', 'data-state': 'loading' }, this.stage, this.panel.node);
    this.node.style.height = options.height ?? '100%';
    host.appendChild(this.node);

    this.bindEvents();
    this.resizeObserver = new ResizeObserver(() => this.resize());
    this.resizeObserver.observe(this.stage);
    this.resize();
    this.setDebug();
    void this.loadInfo(this.state.scene);
  }

  // -- public API ---------------------------------------------------------------------

  /** The current view; centre and zoom are null while the viewer fits the image. */
  get view(): ViewState {
    const cam = this.camera;
    return {
      scene: this.state.scene,
      t: this.state.t,
      z: this.state.z,
      center_x: cam.fitMode ? null : Math.round(cam.cx * 100) / 100,
      center_y: cam.fitMode ? null : Math.round(cam.cy * 100) / 100,
      zoom: cam.fitMode ? null : +cam.zoom.toPrecision(6),
      channels: this.state.channels.map(c => ({ ...c })),
      labels: [...this.state.labels],
      ...(this.state.label_opacity !== undefined ? { label_opacity: this.state.label_opacity } : {})
    };
  }

  /** The image info of the current scene (null until loaded). */
  get imageInfo(): ImageInfo | null {
    return this.info;
  }

  /**
   * Move/reconfigure the viewer.  Missing keys keep their current value;
   * channels are merged by index; `zoom: null` fits the image.
   */
  setView(partial: Partial<ViewState>): void {
    if (this.disposed || !partial) {
      return;
    }
    const sceneChange = partial.scene !== undefined && partial.scene !== this.state.scene;
    if (!this.info || sceneChange) {
      this.pendingView = sceneChange ? { ...partial } : { ...this.pendingView, ...partial };
      if (sceneChange) {
        void this.loadInfo(partial.scene as number);
      }
      return;
    }
    if (jsonEqual(partial, this.view)) {
      return;
    }
    const info = this.info;
    const cam = this.camera;
    const next: ViewState = { ...this.state };
    if (partial.t !== undefined) {
      next.t = clamp(Math.round(partial.t), 0, Math.max(0, info.size_t - 1));
    }
    if (partial.z !== undefined) {
      next.z = clamp(Math.round(partial.z), 0, Math.max(0, info.size_z - 1));
    }
    if (partial.channels) {
      next.channels = this.state.channels.map(c => {
        const given = partial.channels?.find(g => g.index === c.index);
        return given ? normalizeChannel({ ...c, ...given, index: c.index }) : c;
      });
    }
    if (partial.labels) {
      next.labels = partial.labels.filter(l => info.labels.includes(l));
    }
    if (typeof partial.label_opacity === 'number' && Number.isFinite(partial.label_opacity)) {
      next.label_opacity = clamp(partial.label_opacity, 0, 1);
    }
    this.state = next;
    if ('zoom' in partial) {
      if (partial.zoom === null || partial.zoom === undefined) {
        cam.fitMode = true;
      } else {
        cam.fitMode = false;
        cam.zoom = cam.clampZoom(partial.zoom);
      }
    }
    if (!cam.fitMode) {
      if (partial.center_x !== undefined) {
        cam.cx = partial.center_x ?? cam.width0 / 2;
      }
      if (partial.center_y !== undefined) {
        cam.cy = partial.center_y ?? cam.height0 / 2;
      }
      cam.clampCenter();
    }
    if (cam.fitMode) {
      cam.applyFit();
    }
    this.panel.update(this.state);
    this.renderChanged(true);
  }

  /**
   * The image changed under the same view (new pixels, labels added or
   * removed): forget every tile, ask for the image info again and draw the
   * current view (scene, plane, position, zoom, channels) with it.
   */
  refresh(view?: Partial<ViewState> | null): void {
    if (this.disposed) {
      return;
    }
    const keep = this.info ? this.view : { ...this.pendingView };
    this.loader.clear();
    this.painter.clear();
    this.layer = null;
    this.prev = null;
    this.renderKey = '';
    this.pendingView = { ...keep, ...(view ?? {}) };
    void this.loadInfo(this.pendingView.scene ?? this.state.scene);
  }

  /** Fit the whole image into the viewer. */
  fit(): void {
    this.camera.fit();
    this.viewMoved();
  }

  /** Zoom by `factor` keeping the stage point (sx, sy) (default: centre) fixed. */
  zoomAt(factor: number, sx = this.camera.width / 2, sy = this.camera.height / 2): void {
    if (!this.info) {
      return;
    }
    this.camera.zoomAt(factor, sx, sy);
    this.viewMoved();
  }

  dispose(): void {
    if (this.disposed) {
      return;
    }
    this.disposed = true;
    this.loader.dispose();
    this.valuesAbort?.abort();
    window.clearTimeout(this.emitTimer);
    window.clearTimeout(this.renderTimer);
    window.clearTimeout(this.valuesTimer);
    this.resizeObserver.disconnect();
    this.painter.clear();
    this.node.remove();
  }

  // -- image info ---------------------------------------------------------------------

  private async loadInfo(scene: number): Promise<void> {
    const seq = ++this.infoSeq;
    this.node.dataset.state = 'loading';
    this.loadingNode.textContent = 'Loading image information…';
    let info: ImageInfo;
    try {
      info = await this.source.info(scene);
    } catch (error) {
      if (seq === this.infoSeq && !this.disposed) {
        const name = this.info?.source ?? this.options.title ?? 'this image';
        this.showError(`Cannot display ${name}`, message(error));
      }
      return;
    }
    if (seq !== this.infoSeq || this.disposed) {
      return;
    }
    if (!info || !Array.isArray(info.levels) || info.levels.length === 0) {
      this.showError(`Cannot display ${this.options.title ?? 'this image'}`, 'the server sent no pyramid levels');
      return;
    }
    this.info = info;
    const cam = this.camera;
    cam.setImage(
      info.levels.map(level => level.shape),
      info.tile_size
    );
    this.state = mergeView(info, this.pendingView);
    this.pendingView = {};
    this.prev = null;
    if (this.state.zoom === null) {
      cam.fit();
    } else {
      cam.lookAt(this.state.zoom, this.state.center_x, this.state.center_y);
    }
    this.hideError();
    this.node.dataset.state = 'ready';
    this.loadingNode.textContent = '';
    this.panel.build(info, this.state);
    this.layoutOverview();
    this.renderChanged(true);
  }

  // -- state changes ----------------------------------------------------------------------

  private setPlane(patch: { t?: number; z?: number }): void {
    this.state = { ...this.state, ...patch };
    this.renderChanged(true);
  }

  private setChannel(index: number, patch: Partial<ChannelView>, final: boolean): void {
    this.state = {
      ...this.state,
      channels: this.state.channels.map(c =>
        c.index === index ? normalizeChannel({ ...c, ...patch, index }) : c
      )
    };
    this.panel.update(this.state);
    if (final || this.isLocal()) {
      // Composited here: every change is drawn at the next frame.
      this.renderChanged(true);
    } else {
      // While a slider is dragged, re-render at most every 80 ms.
      window.clearTimeout(this.renderTimer);
      this.renderTimer = window.setTimeout(() => this.renderChanged(true), 80);
    }
  }

  /** Something that changes tile content (plane, channels, labels) changed. */
  private renderChanged(emit: boolean): void {
    window.clearTimeout(this.renderTimer);
    const key = this.computeRenderKey();
    if (key !== this.renderKey) {
      const sameScene = this.renderKey.split('|')[0] === key.split('|')[0];
      const old = this.layer;
      const layer = this.currentLayer();
      if (!sameScene) {
        this.prev = null;
      } else if (old && !sameLayer(old, layer) && this.painter.hasVisibleTiles(old)) {
        this.prev = old;
      }
      this.layer = layer;
      this.renderKey = key;
      this.keyChangedAt = performance.now();
      if (this.info && this.node.dataset.state === 'error') {
        // Tiles failed for the old settings: try again with the new ones.
        this.hideError();
        this.node.dataset.state = 'ready';
        this.loader.failures = 0;
      }
      this.loader.retry();
      this.bannerNode.hidden = true;
      this.complete = false;
      this.node.dataset.complete = 'false';
    }
    this.requestDraw();
    if (emit) {
      this.emitSoon();
    }
  }

  private viewMoved(): void {
    this.requestDraw();
    this.emitSoon();
  }

  private emitSoon(): void {
    if (!this.options.onViewChange || !this.info) {
      return;
    }
    window.clearTimeout(this.emitTimer);
    this.emitTimer = window.setTimeout(() => {
      const view = this.view;
      if (!this.disposed && !jsonEqual(view, this.lastEmitted)) {
        this.lastEmitted = view;
        this.options.onViewChange?.(view);
      }
    }, this.options.viewChangeDelay ?? 250);
  }

  private computeRenderKey(): string {
    const s = this.state;
    const opacity = s.labels.length ? `|${s.label_opacity ?? 0.5}` : '';
    return `${s.scene}|${s.t}|${s.z}|${settingsKey(s.channels)}|${s.labels.join(',')}${opacity}`;
  }

  /** Whether tiles are composited here from raw channel tiles (see the module doc). */
  private isLocal(): boolean {
    return (
      this.source.channelTiles !== undefined &&
      this.info !== null &&
      !this.info.rgb &&
      this.state.labels.length === 0
    );
  }

  private currentLayer(): Layer {
    const s = this.state;
    return this.isLocal()
      ? { local: true, key: `${s.scene}|${s.t}|${s.z}` }
      : { local: false, key: this.computeRenderKey() };
  }

  private visibleChannels(): ChannelView[] {
    return this.state.channels.filter(c => c.visible);
  }

  // -- drawing --------------------------------------------------------------------------

  private requestDraw(): void {
    if (this.drawScheduled || this.disposed) {
      return;
    }
    this.drawScheduled = true;
    requestAnimationFrame(() => {
      this.drawScheduled = false;
      if (!this.disposed) {
        this.draw();
      }
    });
  }

  private resize(): void {
    const rect = this.stage.getBoundingClientRect();
    const w = Math.max(0, Math.round(rect.width));
    const h = Math.max(0, Math.round(rect.height));
    const dpr = window.devicePixelRatio || 1;
    if (!this.camera.resize(w, h, dpr)) {
      return;
    }
    this.canvas.width = Math.round(w * dpr);
    this.canvas.height = Math.round(h * dpr);
    this.overview.style.display = w < 320 || h < 200 ? 'none' : '';
    if (this.info) {
      this.requestDraw();
    }
  }

  private draw(): void {
    const cam = this.camera;
    Painter.clearStage(this.ctx, cam);
    if (!this.info || !cam.hasSize) {
      return;
    }
    const layer = this.layer ?? this.currentLayer();
    const { target, done } = this.painter.drawFrame(this.ctx, layer, this.prev);
    if (done) {
      this.prev = null;
      if (!this.complete) {
        this.complete = true;
        const now = performance.now();
        if (this.firstPaintMs === null) {
          this.firstPaintMs = now - this.created;
        }
        this.node.dataset.repaintMs = String(Math.round(now - this.keyChangedAt));
      }
    } else {
      this.complete = false;
    }
    this.drawOverview();
    this.updateScaleBar();
    this.updateStatus(target);
    this.pump(target);
    this.setDebug(target);
  }

  private layoutOverview(): void {
    const side = 150;
    const w0 = this.camera.width0;
    const h0 = this.camera.height0;
    const scale = side / Math.max(w0, h0);
    const w = Math.max(8, Math.round(w0 * scale));
    const h = Math.max(8, Math.round(h0 * scale));
    const dpr = this.camera.pixelRatio;
    this.overview.style.width = `${w}px`;
    this.overview.style.height = `${h}px`;
    this.overview.width = Math.round(w * dpr);
    this.overview.height = Math.round(h * dpr);
  }

  private drawOverview(): void {
    if (this.overview.style.display === 'none' || !this.info) {
      return;
    }
    const dpr = this.camera.pixelRatio;
    const current = this.layer ?? this.currentLayer();
    const layers = this.prev && !sameLayer(this.prev, current) ? [this.prev, current] : [current];
    this.painter.drawOverview(this.overviewCtx, this.overview.width / dpr, this.overview.height / dpr, layers);
  }

  private updateScaleBar(): void {
    const um = this.info?.physical_size_um?.X;
    if (!um || !(um > 0)) {
      this.scaleNode.hidden = true;
      return;
    }
    const [length, px] = scaleBar(um / this.camera.zoom, 100);
    this.scaleNode.hidden = false;
    this.scaleText.textContent = formatLength(length);
    this.scaleBarNode.style.width = `${Math.round(px)}px`;
  }

  private updateStatus(level: number): void {
    const parts = [`L${level} · ${formatValue(+(this.camera.zoom * 100).toPrecision(3))}%`];
    if (this.hover) {
      parts.push(`x ${this.hover.x}  y ${this.hover.y}`);
      if (this.valuesText) {
        parts.push(this.valuesText);
      }
    }
    this.statusNode.textContent = parts.join('  │  ');
    const n = this.loader.inFlight;
    this.loadingNode.textContent = n ? `loading ${n} tile${n === 1 ? '' : 's'}…` : '';
  }

  private setDebug(target?: number): void {
    const d = this.node.dataset;
    const loader = this.loader;
    d.tilesRequested = String(loader.requested);
    d.tilesReceived = String(loader.received);
    d.tilesFailed = String(loader.failures);
    d.levelsRequested = [...loader.levelsRequested].sort((a, b) => a - b).join(',');
    d.levelCount = String(this.camera.levels.length);
    d.complete = String(this.complete);
    if (target !== undefined) {
      d.targetLevel = String(target);
    }
    if (this.info) {
      d.zoom = String(this.camera.zoom);
      d.centerX = String(this.camera.cx);
      d.centerY = String(this.camera.cy);
    }
    if (this.firstPaintMs !== null) {
      d.firstPaintMs = String(Math.round(this.firstPaintMs));
    }
  }

  // -- fetching -----------------------------------------------------------------------

  /** Request what the current view needs; abort what it no longer needs. */
  private pump(target: number): void {
    if (!this.info || this.node.dataset.state === 'error') {
      return;
    }
    const layer = this.layer ?? this.currentLayer();
    const channels = this.visibleChannels();
    const coarseFirst = !this.info.lazy;
    const positions = channels.length && this.camera.hasSize ? this.camera.wanted(target, coarseFirst) : [];
    const wanted = positions.map(p => ({
      key: tileKey(layer.key, p.level, p.tx, p.ty),
      level: p.level,
      tx: p.tx,
      ty: p.ty
    }));
    const s = this.state;
    this.loader.pump(
      wanted,
      { layer, scene: s.scene, t: s.t, z: s.z, channels, labels: s.labels, labelOpacity: s.label_opacity },
      item => this.painter.isComposited(item.key)
    );
  }

  private tileFailed(error: unknown): void {
    const text = message(error);
    if (this.loader.received === 0 && this.loader.failures >= 2) {
      this.showError(`Cannot display ${this.info?.source ?? 'this image'}`, `tile request failed: ${text}`);
    } else {
      this.bannerNode.textContent = `Some tiles could not be loaded: ${text}`;
      this.bannerNode.title = text;
      this.bannerNode.hidden = false;
    }
    this.requestDraw();
  }

  // -- errors ---------------------------------------------------------------------------

  private showError(title: string, detail: string): void {
    this.errorNode.textContent = '';
    this.errorNode.append(el('strong', {}, title), detail);
    this.errorNode.hidden = false;
    this.node.dataset.state = 'error';
    this.node.dataset.error = detail;
    this.loadingNode.textContent = '';
    this.loader.abortAll();
    this.requestDraw();
  }

  private hideError(): void {
    this.errorNode.hidden = true;
    delete this.node.dataset.error;
  }

  // -- interaction ----------------------------------------------------------------------

  private bindEvents(): void {
    const stage = this.stage;
    const local = (e: MouseEvent): [number, number] => {
      const rect = stage.getBoundingClientRect();
      return [e.clientX - rect.left, e.clientY - rect.top];
    };
    this.canvas.addEventListener('pointerdown', e => {
      if (e.button !== 0 || !this.info) {
        return;
      }
      this.drag = { x: e.clientX, y: e.clientY, cx: this.camera.cx, cy: this.camera.cy, id: e.pointerId };
      this.canvas.setPointerCapture(e.pointerId);
      stage.classList.add('bioimnb-dragging');
    });
    this.canvas.addEventListener('pointermove', e => {
      if (this.drag && e.pointerId === this.drag.id) {
        const dx = e.clientX - this.drag.x;
        const dy = e.clientY - this.drag.y;
        if (dx || dy) {
          const cam = this.camera;
          cam.moveTo(this.drag.cx - dx / cam.zoom, this.drag.cy - dy / cam.zoom);
          this.viewMoved();
        }
      }
      const [sx, sy] = local(e);
      this.onHover(sx, sy);
    });
    const endDrag = (e: PointerEvent): void => {
      if (this.drag && e.pointerId === this.drag.id) {
        this.drag = null;
        stage.classList.remove('bioimnb-dragging');
      }
    };
    this.canvas.addEventListener('pointerup', endDrag);
    this.canvas.addEventListener('pointercancel', endDrag);
    this.canvas.addEventListener('pointerleave', () => {
      if (!this.drag) {
        this.hover = null;
        this.valuesText = '';
        this.requestDraw();
      }
    });
    this.canvas.addEventListener(
      'wheel',
      e => {
        if (!this.info) {
          return;
        }
        e.preventDefault();
        const unit = e.deltaMode === 1 ? 0.05 : e.deltaMode === 2 ? 1 : 0.0015;
        const factor = Math.exp(-clamp(e.deltaY * unit, -1, 1));
        const [sx, sy] = local(e);
        this.zoomAt(factor, sx, sy);
      },
      { passive: false }
    );
    this.canvas.addEventListener('dblclick', e => {
      const [sx, sy] = local(e);
      this.zoomAt(e.shiftKey ? 0.5 : 2, sx, sy);
    });

    const overviewTo = (e: PointerEvent): void => {
      const rect = this.overview.getBoundingClientRect();
      const cam = this.camera;
      cam.moveTo(((e.clientX - rect.left) / rect.width) * cam.width0, ((e.clientY - rect.top) / rect.height) * cam.height0);
      this.viewMoved();
    };
    this.overview.addEventListener('pointerdown', e => {
      e.stopPropagation();
      if (!this.info) {
        return;
      }
      this.overview.setPointerCapture(e.pointerId);
      overviewTo(e);
    });
    this.overview.addEventListener('pointermove', e => {
      if (this.overview.hasPointerCapture(e.pointerId)) {
        overviewTo(e);
      }
    });
    this.overview.addEventListener('wheel', e => e.preventDefault(), { passive: false });
  }

  private onHover(sx: number, sy: number): void {
    if (!this.info) {
      return;
    }
    const [ix, iy] = this.camera.toImage(sx, sy);
    const x = Math.floor(ix);
    const y = Math.floor(iy);
    if (x < 0 || y < 0 || x >= this.camera.width0 || y >= this.camera.height0) {
      this.hover = null;
      this.valuesText = '';
      this.requestDraw();
      return;
    }
    if (this.hover && this.hover.x === x && this.hover.y === y) {
      return;
    }
    this.hover = { x, y };
    this.valuesText = '';
    this.requestDraw();
    window.clearTimeout(this.valuesTimer);
    this.valuesTimer = window.setTimeout(() => this.fetchValues(x, y), 120);
  }

  private fetchValues(x: number, y: number): void {
    const seq = ++this.valuesSeq;
    this.valuesAbort?.abort();
    const ctrl = new AbortController();
    this.valuesAbort = ctrl;
    const s = this.state;
    this.source
      .values({ scene: s.scene, t: s.t, z: s.z, x, y, signal: ctrl.signal })
      .then(result => {
        if (seq !== this.valuesSeq || this.disposed) {
          return;
        }
        this.valuesText = this.formatValues(result);
        this.requestDraw();
      })
      .catch(() => {
        /* values are best effort: the coordinates are still shown */
      });
  }

  private formatValues(result: ValuesResult): string {
    const names = this.info?.channels.map((c, i) => c.name || `ch${i}`) ?? [];
    const parts = (result.values ?? []).map((v, i) => {
      const text = Array.isArray(v) ? v.map(formatValue).join('/') : formatValue(v);
      return `${names[i] ?? `ch${i}`} ${text}`;
    });
    for (const [name, value] of Object.entries(result.labels ?? {})) {
      parts.push(`${name} #${value ?? 0}`);
    }
    return parts.join('  ');
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}

function normalizeChannel(c: ChannelView): ChannelView {
  const min = Number(c.min);
  const max = Number(c.max);
  return {
    index: c.index,
    visible: c.visible !== false,
    color: normColor(c.color),
    min: Number.isFinite(min) ? min : 0,
    max: Number.isFinite(max) ? max : 1
  };
}

/** The image's default view with whatever the host asked for laid over it. */
export function mergeView(info: ImageInfo, given: Partial<ViewState>): ViewState {
  const d = info.default_view ?? ({} as Partial<ViewState>);
  const channels = info.channels.map((meta, index) => {
    const base: ChannelView = d.channels?.find(c => c.index === index) ?? {
      index,
      visible: true,
      color: meta.color,
      min: 0,
      max: 65535
    };
    const over = given.channels?.find(c => c.index === index);
    return normalizeChannel({ ...base, ...(over ?? {}), index });
  });
  const labels = (given.labels ?? d.labels ?? []).filter(l => info.labels.includes(l));
  const pick = <K extends keyof ViewState>(key: K): ViewState[K] | undefined =>
    key in given ? given[key] : d[key];
  const t = clamp(Math.round(Number(pick('t') ?? 0)), 0, Math.max(0, info.size_t - 1));
  const z = clamp(Math.round(Number(pick('z') ?? 0)), 0, Math.max(0, info.size_z - 1));
  return {
    scene: info.scene ?? given.scene ?? 0,
    t,
    z,
    center_x: pick('center_x') ?? null,
    center_y: pick('center_y') ?? null,
    zoom: pick('zoom') ?? null,
    channels,
    labels,
    ...(typeof given.label_opacity === 'number' ? { label_opacity: clamp(given.label_opacity, 0, 1) } : {})
  };
}
