/**
 * The viewer's drawing: a frame paints, from the coarsest level down to the
 * level the camera targets, the tiles it has for the visible area, so coarse
 * tiles show at once and finer ones cover them as they arrive; once every
 * visible tile of the target level can be drawn, only that level is.
 *
 * Tiles of a local layer are composited here (`composite.ts`, the kernel's
 * arithmetic) from the loader's raw channel tiles into per-tile canvases,
 * kept in an LRU with the settings they show; a contrast, colour or
 * visibility change recomposites them at the next frame.
 */
import { Camera } from './camera';
import { CompositeLayer, compositeTile } from './composite';
import { Layer, TileLoader, rawKey, sameLayer, tileKey } from './loader';
import { LruCache } from './lru';
import { ChannelView } from './types';

const BACKGROUND = '#1b1b1b';
const IMAGE_BACKGROUND = '#000';

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

/** The visible channels' settings (what a composited tile depends on besides its pixels). */
export function settingsKey(channels: ChannelView[]): string {
  return channels
    .filter(c => c.visible)
    .map(c => `${c.index}:${c.color}:${c.min}:${c.max}`)
    .join(',');
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

export class Painter {
  private readonly composites: LruCache<Composite>;

  /** `channels()` gives the current channel settings. */
  constructor(
    private readonly camera: Camera,
    private readonly loader: TileLoader,
    private readonly channels: () => ChannelView[],
    cacheTiles: number
  ) {
    // Evicted canvases give their pixels back at once (they are drawn right after compositing).
    this.composites = new LruCache<Composite>(cacheTiles, () => 1, c => {
      c.canvas.width = 0;
      c.canvas.height = 0;
    });
  }

  clear(): void {
    this.composites.clear();
  }

  private visible(): ChannelView[] {
    return this.channels().filter(c => c.visible);
  }

  /** Whether tile `key` of a local layer is composited with the current settings. */
  isComposited(key: string): boolean {
    const done = this.composites.peek(key);
    return done !== undefined && done.complete && done.settings === settingsKey(this.channels());
  }

  /**
   * Paint a frame: background, image area, then the tiles of `layer` (over
   * those of `prev`, the layer shown before a settings change, while `layer`
   * is incomplete).  Returns the target level and whether it is complete.
   */
  drawFrame(ctx: CanvasRenderingContext2D, layer: Layer, prev: Layer | null): { target: number; done: boolean } {
    const cam = this.camera;
    const x0 = cam.snap(cam.toScreenX(0));
    const y0 = cam.snap(cam.toScreenY(0));
    ctx.fillStyle = IMAGE_BACKGROUND;
    ctx.fillRect(x0, y0, cam.snap(cam.toScreenX(cam.width0)) - x0, cam.snap(cam.toScreenY(cam.height0)) - y0);

    const target = cam.targetLevel();
    const coarsest = cam.levels.length - 1;
    const anyVisible = this.visible().length > 0;
    const done = anyVisible ? this.levelComplete(layer, target) : true;
    if (anyVisible) {
      if (done) {
        this.drawLevel(ctx, layer, target, target);
      } else {
        if (prev && !sameLayer(prev, layer)) {
          for (let level = coarsest; level >= target; level--) {
            this.drawLevel(ctx, prev, level, target);
          }
        }
        for (let level = coarsest; level >= target; level--) {
          this.drawLevel(ctx, layer, level, target);
        }
      }
    }
    return { target, done };
  }

  /** Clear the whole stage to the background colour. */
  static clearStage(ctx: CanvasRenderingContext2D, camera: Camera): void {
    ctx.setTransform(camera.pixelRatio, 0, 0, camera.pixelRatio, 0, 0);
    ctx.fillStyle = BACKGROUND;
    ctx.fillRect(0, 0, camera.width, camera.height);
  }

  /** Whether every tile of `level` in the viewport can be drawn with the current settings. */
  levelComplete(layer: Layer, level: number): boolean {
    const range = this.camera.tileRange(level);
    if (!range) {
      return true;
    }
    const channels = layer.local ? this.visible() : [];
    for (let ty = range.ty0; ty <= range.ty1; ty++) {
      for (let tx = range.tx0; tx <= range.tx1; tx++) {
        const key = tileKey(layer.key, level, tx, ty);
        if (!layer.local) {
          if (!this.loader.tiles.has(key)) {
            return false;
          }
          continue;
        }
        if (this.isComposited(key)) {
          continue;
        }
        if (!channels.every(c => this.loader.raw.has(rawKey(key, c.index)))) {
          return false;
        }
      }
    }
    return true;
  }

  /** Whether some tile of `layer` is on screen (it can stand in while another layer loads). */
  hasVisibleTiles(layer: Layer): boolean {
    const store: { has(key: string): boolean } = layer.local ? this.composites : this.loader.tiles;
    for (let level = 0; level < this.camera.levels.length; level++) {
      const range = this.camera.tileRange(level);
      if (range && store.has(tileKey(layer.key, level, range.tx0, range.ty0))) {
        return true;
      }
    }
    return false;
  }

  /** The image of one tile of `layer`, composited now if needed (undefined: none yet). */
  private tileImage(layer: Layer, level: number, tx: number, ty: number): CanvasImageSource | undefined {
    const key = tileKey(layer.key, level, tx, ty);
    if (!layer.local) {
      return this.loader.tiles.get(key);
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
    const settings = settingsKey(this.channels());
    let entry = this.composites.get(key);
    if (entry && entry.complete && entry.settings === settings) {
      return entry;
    }
    const layers: CompositeLayer[] = [];
    const visible = this.visible();
    for (const view of visible) {
      const tile = this.loader.raw.get(rawKey(key, view.index));
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

  private drawLevel(ctx: CanvasRenderingContext2D, layer: Layer, level: number, target: number): void {
    const cam = this.camera;
    const range = cam.tileRange(level);
    if (!range) {
      return;
    }
    const g = cam.levels[level];
    // Magnified pixels stay crisp at the target level; coarse stand-ins are smoothed.
    ctx.imageSmoothingEnabled = level !== target || cam.zoom * g.sx < 2;
    ctx.imageSmoothingQuality = 'medium';
    for (let ty = range.ty0; ty <= range.ty1; ty++) {
      for (let tx = range.tx0; tx <= range.tx1; tx++) {
        const image = this.tileImage(layer, level, tx, ty);
        if (!image) {
          continue;
        }
        const { width, height } = image as { width: number; height: number };
        const [left, top, right, bottom] = cam.tileScreenRect(level, tx, ty);
        ctx.drawImage(image, 0, 0, width, height, left, top, right - left, bottom - top);
      }
    }
  }

  /**
   * The overview: every tile of the coarsest level held for `layers`, in a
   * `w` x `h` (CSS px) canvas, and the viewport as a rectangle.
   */
  drawOverview(ctx: CanvasRenderingContext2D, w: number, h: number, layers: Layer[]): void {
    const cam = this.camera;
    ctx.setTransform(cam.pixelRatio, 0, 0, cam.pixelRatio, 0, 0);
    ctx.fillStyle = IMAGE_BACKGROUND;
    ctx.fillRect(0, 0, w, h);
    const level = cam.levels.length - 1;
    const g = cam.levels[level];
    const ts = cam.tileSize;
    const kx = w / cam.width0;
    const ky = h / cam.height0;
    ctx.imageSmoothingEnabled = true;
    if (this.visible().length) {
      for (const layer of layers) {
        for (let ty = 0; ty < g.ny; ty++) {
          for (let tx = 0; tx < g.nx; tx++) {
            const key = tileKey(layer.key, level, tx, ty);
            const image = layer.local ? this.composited(key)?.canvas : this.loader.tiles.peek(key);
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
    const [vx0, vy0, vx1, vy1] = cam.viewRect();
    ctx.strokeStyle = '#ffd400';
    ctx.lineWidth = 1.5;
    const clampTo = (v: number, hi: number): number => Math.min(hi, Math.max(0, v));
    const rx0 = clampTo(vx0 * kx, w);
    const ry0 = clampTo(vy0 * ky, h);
    const rx1 = clampTo(vx1 * kx, w);
    const ry1 = clampTo(vy1 * ky, h);
    ctx.strokeRect(rx0 + 0.75, ry0 + 0.75, Math.max(2, rx1 - rx0 - 1.5), Math.max(2, ry1 - ry0 - 1.5));
  }
}
