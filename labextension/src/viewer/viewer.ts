/**
 * BioViewer: a framework-free multiresolution image viewer (DOM + canvas).
 *
 * It knows nothing about kernels or servers: tiles, image info, pixel values
 * and histograms come from a TileSource.  The notebook widget and the
 * JupyterLab document viewer differ only in the source they pass in.
 *
 * Drawing: every frame paints, from the coarsest level down to the level that
 * matches the zoom, the decoded tiles it has for the visible area, so coarse
 * tiles show at once and finer ones cover them as they arrive.  Only tiles
 * intersecting the viewport are requested (plus the coarsest level, which
 * also feeds the overview); requests that stop being wanted are aborted.
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
import { ControlsPanel, el } from './controls';
import {
  formatLength,
  formatValue,
  jsonEqual,
  normColor,
  scaleBar
} from './format';
import { CompositeLayer, compositeTile, tileBytes } from './composite';
import { LruCache, TileCache } from './lru';
import { ensureStyles } from './style';
import {
  ChannelTile,
  ChannelView,
  ImageInfo,
  TileSource,
  ValuesResult,
  ViewState,
  isAbort
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

interface LevelGeometry {
  w: number;
  h: number;
  /** level-0 pixels per level pixel, in X and Y. */
  sx: number;
  sy: number;
  nx: number;
  ny: number;
}

interface TileRange {
  tx0: number;
  tx1: number;
  ty0: number;
  ty1: number;
}

interface Wanted {
  key: string;
  level: number;
  tx: number;
  ty: number;
}

/**
 * What a frame draws tiles from: composited tiles of one render key (`local`
 * false), or tiles composited here from the raw channel tiles of one plane
 * (`local` true, `key` = scene|t|z, whatever the channel settings).
 */
interface Layer {
  local: boolean;
  key: string;
}

/** A tile composited here: its canvas and the settings it shows. */
interface Composite {
  canvas: OffscreenCanvas | HTMLCanvasElement;
  ctx: OffscreenCanvasRenderingContext2D | CanvasRenderingContext2D;
  /** The channel settings it was composited with. */
  settings: string;
  /** Whether every visible channel was in it (else: the channels composited). */
  complete: boolean;
  have: string;
}

/** One request to the source; it may bring several cache entries (channels). */
interface Flight {
  ctrl: AbortController;
  keys: string[];
}

const BACKGROUND = '#1b1b1b';
const IMAGE_BACKGROUND = '#000';

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
  private readonly cache: TileCache;
  private readonly raw: LruCache<ChannelTile>;
  private readonly composites: LruCache<Composite>;
  private readonly resizeObserver: ResizeObserver;

  private info: ImageInfo | null = null;
  private levels: LevelGeometry[] = [];
  private state: ViewState;
  private pendingView: Partial<ViewState>;
  private cx = 0;
  private cy = 0;
  private zoom = 1;
  private fitMode = true;
  private cssW = 0;
  private cssH = 0;
  private dpr = 1;

  private renderKey = '';
  /** Drawn from now; `prev` is drawn under it until it is complete. */
  private layer: Layer | null = null;
  private prev: Layer | null = null;
  private readonly inflight = new Map<string, Flight>();
  private readonly flights = new Set<Flight>();
  private readonly failed = new Set<string>();
  private readonly levelsRequested = new Set<number>();
  private requested = 0;
  private received = 0;
  private failures = 0;
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
    this.cache = new TileCache(options.cacheTiles ?? 256);
    this.raw = new LruCache<ChannelTile>(options.rawCacheBytes ?? 128 * 2 ** 20, tileBytes);
    // Evicted canvases give their pixels back at once (they are drawn right after compositing).
    this.composites = new LruCache<Composite>(options.cacheTiles ?? 256, () => 1, c => {
      c.canvas.width = 0;
      c.canvas.height = 0;
    });
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
    return {
      scene: this.state.scene,
      t: this.state.t,
      z: this.state.z,
      center_x: this.fitMode ? null : Math.round(this.cx * 100) / 100,
      center_y: this.fitMode ? null : Math.round(this.cy * 100) / 100,
      zoom: this.fitMode ? null : +this.zoom.toPrecision(6),
      channels: this.state.channels.map(c => ({ ...c })),
      labels: [...this.state.labels]
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
    this.state = next;
    if ('zoom' in partial) {
      if (partial.zoom === null || partial.zoom === undefined) {
        this.fitMode = true;
      } else {
        this.fitMode = false;
        this.zoom = clamp(partial.zoom, this.minZoom(), this.maxZoom());
      }
    }
    if (!this.fitMode) {
      if (partial.center_x !== undefined) {
        this.cx = partial.center_x ?? this.width0() / 2;
      }
      if (partial.center_y !== undefined) {
        this.cy = partial.center_y ?? this.height0() / 2;
      }
      this.clampCenter();
    }
    if (this.fitMode) {
      this.applyFit();
    }
    this.panel.update(this.state);
    this.renderChanged(true);
  }

  /** Fit the whole image into the viewer. */
  fit(): void {
    this.fitMode = true;
    this.applyFit();
    this.viewMoved();
  }

  /** Zoom by `factor` keeping the stage point (sx, sy) (default: centre) fixed. */
  zoomAt(factor: number, sx = this.cssW / 2, sy = this.cssH / 2): void {
    if (!this.info) {
      return;
    }
    const [ix, iy] = this.toImage(sx, sy);
    this.zoom = clamp(this.zoom * factor, this.minZoom(), this.maxZoom());
    this.cx = ix - (sx - this.cssW / 2) / this.zoom;
    this.cy = iy - (sy - this.cssH / 2) / this.zoom;
    this.fitMode = false;
    this.clampCenter();
    this.viewMoved();
  }

  dispose(): void {
    if (this.disposed) {
      return;
    }
    this.disposed = true;
    this.abortAll();
    this.valuesAbort?.abort();
    window.clearTimeout(this.emitTimer);
    window.clearTimeout(this.renderTimer);
    window.clearTimeout(this.valuesTimer);
    this.resizeObserver.disconnect();
    this.cache.clear();
    this.raw.clear();
    this.composites.clear();
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
    this.levels = info.levels.map(level => {
      const [h, w] = level.shape;
      const w0 = info.levels[0].shape[1];
      const h0 = info.levels[0].shape[0];
      const ts = info.tile_size;
      return { w, h, sx: w0 / w, sy: h0 / h, nx: Math.ceil(w / ts), ny: Math.ceil(h / ts) };
    });
    this.state = mergeView(info, this.pendingView);
    this.pendingView = {};
    this.prev = null;
    if (this.state.zoom === null) {
      this.fitMode = true;
      this.applyFit();
    } else {
      this.fitMode = false;
      this.zoom = clamp(this.state.zoom, this.minZoom(), this.maxZoom());
      this.cx = this.state.center_x ?? this.width0() / 2;
      this.cy = this.state.center_y ?? this.height0() / 2;
      this.clampCenter();
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
      } else if (old && !sameLayer(old, layer) && this.hasVisibleTiles(old)) {
        this.prev = old;
      }
      this.layer = layer;
      this.renderKey = key;
      this.keyChangedAt = performance.now();
      if (this.info && this.node.dataset.state === 'error') {
        // Tiles failed for the old settings: try again with the new ones.
        this.hideError();
        this.node.dataset.state = 'ready';
        this.failures = 0;
      }
      this.failed.clear();
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
    return `${s.scene}|${s.t}|${s.z}|${this.settingsKey()}|${s.labels.join(',')}`;
  }

  /** The visible channels' settings (what a composited tile depends on besides its pixels). */
  private settingsKey(): string {
    return this.state.channels
      .filter(c => c.visible)
      .map(c => `${c.index}:${c.color}:${c.min}:${c.max}`)
      .join(',');
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

  // -- geometry -------------------------------------------------------------------------

  private width0(): number {
    return this.info?.levels[0].shape[1] ?? 1;
  }

  private height0(): number {
    return this.info?.levels[0].shape[0] ?? 1;
  }

  private fitZoom(): number {
    if (this.cssW <= 0 || this.cssH <= 0) {
      return 1;
    }
    return Math.min(this.cssW / this.width0(), this.cssH / this.height0());
  }

  /** Zoom limits; unbounded below while the viewer has no size yet (not laid out). */
  private minZoom(): number {
    return this.cssW > 0 && this.cssH > 0 ? this.fitZoom() / 4 : 1e-9;
  }

  private maxZoom(): number {
    return Math.max(64, this.fitZoom() * 2);
  }

  private applyFit(): void {
    this.zoom = this.fitZoom();
    this.cx = this.width0() / 2;
    this.cy = this.height0() / 2;
  }

  private clampCenter(): void {
    this.cx = clamp(this.cx, 0, this.width0());
    this.cy = clamp(this.cy, 0, this.height0());
  }

  /** Stage (CSS px) -> level-0 image coordinates. */
  private toImage(sx: number, sy: number): [number, number] {
    return [this.cx + (sx - this.cssW / 2) / this.zoom, this.cy + (sy - this.cssH / 2) / this.zoom];
  }

  private toScreenX(x: number): number {
    return (x - this.cx) * this.zoom + this.cssW / 2;
  }

  private toScreenY(y: number): number {
    return (y - this.cy) * this.zoom + this.cssH / 2;
  }

  /**
   * The level to draw: the coarsest whose pixels are at most 1.1 device pixels
   * on screen (the rule of `TileRenderer.level_for_zoom`).
   */
  private targetLevel(): number {
    const scale = this.zoom * Math.min(this.dpr, 2);
    let best = 0;
    let bestSx = 0;
    this.levels.forEach((level, i) => {
      if (level.sx * scale <= 1.1 && level.sx > bestSx) {
        best = i;
        bestSx = level.sx;
      }
    });
    return best;
  }

  private tileRange(level: number): TileRange | null {
    const g = this.levels[level];
    const ts = this.info?.tile_size ?? 256;
    const [x0, y0] = this.toImage(0, 0);
    const [x1, y1] = this.toImage(this.cssW, this.cssH);
    const lx0 = Math.max(0, x0 / g.sx);
    const ly0 = Math.max(0, y0 / g.sy);
    const lx1 = Math.min(g.w, x1 / g.sx);
    const ly1 = Math.min(g.h, y1 / g.sy);
    if (lx1 <= lx0 || ly1 <= ly0) {
      return null;
    }
    return {
      tx0: Math.floor(lx0 / ts),
      tx1: Math.min(g.nx - 1, Math.ceil(lx1 / ts) - 1),
      ty0: Math.floor(ly0 / ts),
      ty1: Math.min(g.ny - 1, Math.ceil(ly1 / ts) - 1)
    };
  }

  private tileKey(key: string, level: number, tx: number, ty: number): string {
    return `${key}|${level}|${tx}|${ty}`;
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
    if (w === this.cssW && h === this.cssH && dpr === this.dpr) {
      return;
    }
    this.cssW = w;
    this.cssH = h;
    this.dpr = dpr;
    this.canvas.width = Math.round(w * dpr);
    this.canvas.height = Math.round(h * dpr);
    this.overview.style.display = w < 320 || h < 200 ? 'none' : '';
    if (this.info) {
      if (this.fitMode) {
        this.applyFit();
      }
      this.requestDraw();
    }
  }

  private draw(): void {
    const ctx = this.ctx;
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.fillStyle = BACKGROUND;
    ctx.fillRect(0, 0, this.cssW, this.cssH);
    if (!this.info || this.cssW === 0 || this.cssH === 0) {
      return;
    }
    const x0 = this.snap(this.toScreenX(0));
    const y0 = this.snap(this.toScreenY(0));
    ctx.fillStyle = IMAGE_BACKGROUND;
    ctx.fillRect(x0, y0, this.snap(this.toScreenX(this.width0())) - x0, this.snap(this.toScreenY(this.height0())) - y0);

    const target = this.targetLevel();
    const coarsest = this.levels.length - 1;
    const anyVisible = this.visibleChannels().length > 0;
    const layer = this.layer ?? this.currentLayer();
    const done = anyVisible ? this.levelComplete(layer, target) : true;
    if (anyVisible) {
      if (done) {
        this.drawLevel(layer, target, target);
      } else {
        if (this.prev && !sameLayer(this.prev, layer)) {
          for (let level = coarsest; level >= target; level--) {
            this.drawLevel(this.prev, level, target);
          }
        }
        for (let level = coarsest; level >= target; level--) {
          this.drawLevel(layer, level, target);
        }
      }
    }
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
    this.updateStatus();
    this.pump(target);
    this.setDebug(target);
  }

  private snap(v: number): number {
    return Math.round(v * this.dpr) / this.dpr;
  }

  /** Whether every tile of `level` in the viewport can be drawn with the current settings. */
  private levelComplete(layer: Layer, level: number): boolean {
    const range = this.tileRange(level);
    if (!range) {
      return true;
    }
    const settings = layer.local ? this.settingsKey() : '';
    const channels = layer.local ? this.visibleChannels() : [];
    for (let ty = range.ty0; ty <= range.ty1; ty++) {
      for (let tx = range.tx0; tx <= range.tx1; tx++) {
        const key = this.tileKey(layer.key, level, tx, ty);
        if (!layer.local) {
          if (!this.cache.has(key)) {
            return false;
          }
          continue;
        }
        const done = this.composites.peek(key);
        if (done && done.complete && done.settings === settings) {
          continue;
        }
        if (!channels.every(c => this.raw.has(rawKey(key, c.index)))) {
          return false;
        }
      }
    }
    return true;
  }

  private hasVisibleTiles(layer: Layer): boolean {
    const store: { has(key: string): boolean } = layer.local ? this.composites : this.cache;
    for (let level = 0; level < this.levels.length; level++) {
      const range = this.tileRange(level);
      if (range && store.has(this.tileKey(layer.key, level, range.tx0, range.ty0))) {
        return true;
      }
    }
    return false;
  }

  /** The image of one tile of `layer`, composited now if needed (undefined: none yet). */
  private tileImage(layer: Layer, level: number, tx: number, ty: number): CanvasImageSource | undefined {
    const key = this.tileKey(layer.key, level, tx, ty);
    if (!layer.local) {
      return this.cache.get(key);
    }
    return this.composited(key)?.canvas;
  }

  /**
   * The composite of tile `key` (layer|level|tx|ty) with the current channel
   * settings, made from the raw channel tiles held.  With some channels
   * missing it holds the others (they arrive later); with none, whatever
   * was composited before (other settings) stands in.
   */
  private composited(key: string): Composite | undefined {
    const settings = this.settingsKey();
    let entry = this.composites.get(key);
    if (entry && entry.complete && entry.settings === settings) {
      return entry;
    }
    const layers: CompositeLayer[] = [];
    const visible = this.visibleChannels();
    for (const view of visible) {
      const tile = this.raw.get(rawKey(key, view.index));
      if (tile) {
        layers.push({ tile, view });
      }
    }
    if (!layers.length) {
      return entry;
    }
    const complete = layers.length === visible.length;
    const have = layers.map(l => l.view.index).join(',');
    if (entry && entry.settings === settings && entry.have === have) {
      return entry;
    }
    const { w, h } = layers[0].tile;
    if (!entry || entry.canvas.width !== w || entry.canvas.height !== h) {
      const canvas = makeCanvas(w, h);
      const ctx = canvas.getContext('2d') as OffscreenCanvasRenderingContext2D | CanvasRenderingContext2D;
      entry = { canvas, ctx, settings, complete, have };
      this.composites.set(key, entry);
    }
    const image = scratchImage(w, h);
    compositeTile(layers, w, h, image.data);
    entry.ctx.putImageData(image, 0, 0);
    entry.settings = settings;
    entry.complete = complete;
    entry.have = have;
    return entry;
  }

  private drawLevel(layer: Layer, level: number, target: number): void {
    const range = this.tileRange(level);
    if (!range) {
      return;
    }
    const g = this.levels[level];
    const ts = this.info?.tile_size ?? 256;
    const ctx = this.ctx;
    // Magnified pixels stay crisp at the target level; coarse stand-ins are smoothed.
    ctx.imageSmoothingEnabled = level !== target || this.zoom * g.sx < 2;
    ctx.imageSmoothingQuality = 'medium';
    for (let ty = range.ty0; ty <= range.ty1; ty++) {
      for (let tx = range.tx0; tx <= range.tx1; tx++) {
        const image = this.tileImage(layer, level, tx, ty);
        if (!image) {
          continue;
        }
        const { width, height } = image as { width: number; height: number };
        const left = this.snap(this.toScreenX(tx * ts * g.sx));
        const top = this.snap(this.toScreenY(ty * ts * g.sy));
        const right = this.snap(this.toScreenX(Math.min((tx + 1) * ts, g.w) * g.sx));
        const bottom = this.snap(this.toScreenY(Math.min((ty + 1) * ts, g.h) * g.sy));
        ctx.drawImage(image, 0, 0, width, height, left, top, right - left, bottom - top);
      }
    }
  }

  private layoutOverview(): void {
    const side = 150;
    const w0 = this.width0();
    const h0 = this.height0();
    const scale = side / Math.max(w0, h0);
    const w = Math.max(8, Math.round(w0 * scale));
    const h = Math.max(8, Math.round(h0 * scale));
    this.overview.style.width = `${w}px`;
    this.overview.style.height = `${h}px`;
    this.overview.width = Math.round(w * this.dpr);
    this.overview.height = Math.round(h * this.dpr);
  }

  private drawOverview(): void {
    if (this.overview.style.display === 'none' || !this.info) {
      return;
    }
    const ctx = this.overviewCtx;
    const w = this.overview.width / this.dpr;
    const h = this.overview.height / this.dpr;
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.fillStyle = IMAGE_BACKGROUND;
    ctx.fillRect(0, 0, w, h);
    const level = this.levels.length - 1;
    const g = this.levels[level];
    const ts = this.info.tile_size;
    const kx = w / this.width0();
    const ky = h / this.height0();
    ctx.imageSmoothingEnabled = true;
    const current = this.layer ?? this.currentLayer();
    const layers = this.prev && !sameLayer(this.prev, current) ? [this.prev, current] : [current];
    if (this.visibleChannels().length) {
      for (const layer of layers) {
        for (let ty = 0; ty < g.ny; ty++) {
          for (let tx = 0; tx < g.nx; tx++) {
            const image = layer.local
              ? this.composited(this.tileKey(layer.key, level, tx, ty))?.canvas
              : this.cache.peek(this.tileKey(layer.key, level, tx, ty));
            if (image) {
              const x = tx * ts * g.sx * kx;
              const y = ty * ts * g.sy * ky;
              const x1 = Math.min((tx + 1) * ts, g.w) * g.sx * kx;
              const y1 = Math.min((ty + 1) * ts, g.h) * g.sy * ky;
              ctx.drawImage(image, x, y, x1 - x, y1 - y);
            }
          }
        }
      }
    }
    const [vx0, vy0] = this.toImage(0, 0);
    const [vx1, vy1] = this.toImage(this.cssW, this.cssH);
    ctx.strokeStyle = '#ffd400';
    ctx.lineWidth = 1.5;
    const rx0 = clamp(vx0 * kx, 0, w);
    const ry0 = clamp(vy0 * ky, 0, h);
    const rx1 = clamp(vx1 * kx, 0, w);
    const ry1 = clamp(vy1 * ky, 0, h);
    ctx.strokeRect(rx0 + 0.75, ry0 + 0.75, Math.max(2, rx1 - rx0 - 1.5), Math.max(2, ry1 - ry0 - 1.5));
  }

  private updateScaleBar(): void {
    const um = this.info?.physical_size_um?.X;
    if (!um || !(um > 0)) {
      this.scaleNode.hidden = true;
      return;
    }
    const [length, px] = scaleBar(um / this.zoom, 100);
    this.scaleNode.hidden = false;
    this.scaleText.textContent = formatLength(length);
    this.scaleBarNode.style.width = `${Math.round(px)}px`;
  }

  private updateStatus(): void {
    const level = this.targetLevel();
    const parts = [`L${level} · ${formatValue(+(this.zoom * 100).toPrecision(3))}%`];
    if (this.hover) {
      parts.push(`x ${this.hover.x}  y ${this.hover.y}`);
      if (this.valuesText) {
        parts.push(this.valuesText);
      }
    }
    this.statusNode.textContent = parts.join('  │  ');
    const n = this.flights.size;
    this.loadingNode.textContent = n ? `loading ${n} tile${n === 1 ? '' : 's'}…` : '';
  }

  private setDebug(target?: number): void {
    const d = this.node.dataset;
    d.tilesRequested = String(this.requested);
    d.tilesReceived = String(this.received);
    d.tilesFailed = String(this.failures);
    d.levelsRequested = [...this.levelsRequested].sort((a, b) => a - b).join(',');
    d.levelCount = String(this.levels.length);
    d.complete = String(this.complete);
    if (target !== undefined) {
      d.targetLevel = String(target);
    }
    if (this.info) {
      d.zoom = String(this.zoom);
      d.centerX = String(this.cx);
      d.centerY = String(this.cy);
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
    const tiles: Wanted[] = [];
    const channels = this.visibleChannels();
    if (channels.length && this.cssW > 0 && this.cssH > 0) {
      const coarsest = this.levels.length - 1;
      const g = this.levels[coarsest];
      const coarseRange: TileRange | null =
        g.nx * g.ny <= 16 ? { tx0: 0, tx1: g.nx - 1, ty0: 0, ty1: g.ny - 1 } : this.tileRange(coarsest);
      const add = (level: number, range: TileRange | null, sort: boolean): void => {
        if (!range) {
          return;
        }
        const items: Array<Wanted & { d: number }> = [];
        const gl = this.levels[level];
        const ts = this.info?.tile_size ?? 256;
        for (let ty = range.ty0; ty <= range.ty1; ty++) {
          for (let tx = range.tx0; tx <= range.tx1; tx++) {
            const mx = (tx + 0.5) * ts * gl.sx - this.cx;
            const my = (ty + 0.5) * ts * gl.sy - this.cy;
            items.push({ key: this.tileKey(layer.key, level, tx, ty), level, tx, ty, d: mx * mx + my * my });
          }
        }
        if (sort) {
          items.sort((a, b) => a.d - b.d);
        }
        tiles.push(...items);
      };
      add(coarsest, coarseRange, false);
      if (target !== coarsest) {
        add(target, this.tileRange(target), true);
      }
    }
    // The cache entries wanted: tiles, or (local) one raw tile per visible channel.
    const keysOf = (item: Wanted): string[] =>
      layer.local ? channels.map(c => rawKey(item.key, c.index)) : [item.key];
    const wanted = new Set<string>();
    for (const item of tiles) {
      for (const key of keysOf(item)) {
        wanted.add(key);
      }
    }
    for (const flight of [...this.flights]) {
      if (!flight.keys.some(key => wanted.has(key))) {
        flight.ctrl.abort();
        this.endFlight(flight);
      }
    }
    const limit = this.options.maxInFlight ?? 20;
    const settings = this.settingsKey();
    for (const item of tiles) {
      if (this.flights.size >= limit) {
        break;
      }
      if (!layer.local) {
        if (!this.cache.has(item.key) && !this.inflight.has(item.key) && !this.failed.has(item.key)) {
          this.fetchTile(item, channels);
        }
        continue;
      }
      const done = this.composites.peek(item.key);
      if (done && done.complete && done.settings === settings) {
        continue;
      }
      const missing = channels.filter(c => {
        const key = rawKey(item.key, c.index);
        return !this.raw.has(key) && !this.inflight.has(key) && !this.failed.has(key);
      });
      if (missing.length) {
        this.fetchChannels(item, missing.map(c => c.index));
      }
    }
  }

  private startFlight(keys: string[], level: number): Flight {
    const flight: Flight = { ctrl: new AbortController(), keys };
    this.flights.add(flight);
    for (const key of keys) {
      this.inflight.set(key, flight);
    }
    this.requested++;
    this.levelsRequested.add(level);
    return flight;
  }

  private endFlight(flight: Flight): void {
    this.flights.delete(flight);
    for (const key of flight.keys) {
      if (this.inflight.get(key) === flight) {
        this.inflight.delete(key);
      }
    }
  }

  private abortAll(): void {
    for (const flight of this.flights) {
      flight.ctrl.abort();
    }
    this.flights.clear();
    this.inflight.clear();
  }

  /** A composited tile from the source (RGB images, label overlays, sources without channelTiles). */
  private fetchTile(item: Wanted, channels: ChannelView[]): void {
    const flight = this.startFlight([item.key], item.level);
    const s = this.state;
    this.source
      .tile({
        scene: s.scene,
        level: item.level,
        t: s.t,
        z: s.z,
        tx: item.tx,
        ty: item.ty,
        channels: channels.map(c => ({ ...c })),
        labels: [...s.labels],
        signal: flight.ctrl.signal
      })
      .then(async result => {
        const bitmap = result instanceof Blob ? await createImageBitmap(result) : result;
        if (this.disposed) {
          bitmap.close();
          return;
        }
        this.endFlight(flight);
        this.cache.set(item.key, bitmap);
        this.received++;
        this.requestDraw();
      })
      .catch((error: unknown) => this.fetchFailed(flight, error));
  }

  /** Raw tiles of `channels` of one tile, kept for compositing here. */
  private fetchChannels(item: Wanted, channels: number[]): void {
    const fetch = this.source.channelTiles?.bind(this.source);
    if (!fetch) {
      return;
    }
    const flight = this.startFlight(
      channels.map(c => rawKey(item.key, c)),
      item.level
    );
    const s = this.state;
    fetch({
      scene: s.scene,
      level: item.level,
      t: s.t,
      z: s.z,
      tx: item.tx,
      ty: item.ty,
      channels,
      signal: flight.ctrl.signal
    })
      .then(tiles => {
        if (this.disposed) {
          return;
        }
        this.endFlight(flight);
        for (const tile of tiles) {
          this.raw.set(rawKey(item.key, tile.channel), tile);
        }
        this.received++;
        this.requestDraw();
      })
      .catch((error: unknown) => this.fetchFailed(flight, error));
  }

  private fetchFailed(flight: Flight, error: unknown): void {
    this.endFlight(flight);
    if (this.disposed || isAbort(error) || flight.ctrl.signal.aborted) {
      return;
    }
    this.failures++;
    for (const key of flight.keys) {
      this.failed.add(key);
    }
    const text = message(error);
    if (this.received === 0 && this.failures >= 2) {
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
    this.abortAll();
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
      this.drag = { x: e.clientX, y: e.clientY, cx: this.cx, cy: this.cy, id: e.pointerId };
      this.canvas.setPointerCapture(e.pointerId);
      stage.classList.add('bioimnb-dragging');
    });
    this.canvas.addEventListener('pointermove', e => {
      if (this.drag && e.pointerId === this.drag.id) {
        const dx = e.clientX - this.drag.x;
        const dy = e.clientY - this.drag.y;
        if (dx || dy) {
          this.fitMode = false;
          this.cx = this.drag.cx - dx / this.zoom;
          this.cy = this.drag.cy - dy / this.zoom;
          this.clampCenter();
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
      this.cx = ((e.clientX - rect.left) / rect.width) * this.width0();
      this.cy = ((e.clientY - rect.top) / rect.height) * this.height0();
      this.fitMode = false;
      this.clampCenter();
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
    const [ix, iy] = this.toImage(sx, sy);
    const x = Math.floor(ix);
    const y = Math.floor(iy);
    if (x < 0 || y < 0 || x >= this.width0() || y >= this.height0()) {
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

function sameLayer(a: Layer, b: Layer): boolean {
  return a.local === b.local && a.key === b.key;
}

/** The raw-cache key of channel `channel` of the tile `tileKey` (layer|level|tx|ty). */
function rawKey(tileKey: string, channel: number): string {
  return `${tileKey}|c${channel}`;
}

function makeCanvas(w: number, h: number): OffscreenCanvas | HTMLCanvasElement {
  if (typeof OffscreenCanvas !== 'undefined') {
    return new OffscreenCanvas(w, h);
  }
  const canvas = document.createElement('canvas');
  canvas.width = w;
  canvas.height = h;
  return canvas;
}

// ImageData buffers to composite into (putImageData copies them): one per tile size.
const scratchImages = new Map<string, ImageData>();

function scratchImage(w: number, h: number): ImageData {
  const key = `${w}x${h}`;
  let image = scratchImages.get(key);
  if (!image) {
    image = new ImageData(w, h);
    if (scratchImages.size >= 8) {
      scratchImages.delete(scratchImages.keys().next().value as string);
    }
    scratchImages.set(key, image);
  }
  return image;
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
    labels
  };
}
