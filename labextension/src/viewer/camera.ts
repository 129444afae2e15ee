/**
 * The viewer's camera: where it looks (centre, zoom), how big the screen is,
 * which pyramid level it draws and which tiles of a level are visible.  Pure
 * maths, no DOM: `node --test` runs it (tests/core/test_tiles_camera.py).
 *
 * The level rule and the tile ranges are the Python core's
 * (`bioimnb.core.tiles.view.level_for_zoom`, `viewport_rect`,
 * `bioimnb.core.tiles.grid.tile_range`), repeated here operation for
 * operation in the same IEEE double order; the test checks both on a table
 * of cases computed by the Python functions.  Keep them in sync.
 *
 * Coordinates are level-0 pixels; `zoom` is screen (CSS) pixels per level-0
 * pixel; the screen is `width` x `height` CSS pixels of `pixelRatio` device
 * pixels each.
 */

/** A level is drawn while its pixels are at most this many device pixels wide. */
export const LEVEL_TOLERANCE = 1.1;
/** Device pixels per CSS pixel are counted up to this. */
export const MAX_PIXEL_RATIO = 2;

export interface LevelGeometry {
  w: number;
  h: number;
  /** level-0 pixels per level pixel, in X and Y. */
  sx: number;
  sy: number;
  /** Tiles in X and Y. */
  nx: number;
  ny: number;
}

/** Inclusive tile index ranges. */
export interface TileRange {
  tx0: number;
  tx1: number;
  ty0: number;
  ty1: number;
}

/** One tile of one level, with its squared distance to the view centre. */
export interface TilePos {
  level: number;
  tx: number;
  ty: number;
  d: number;
}

/** Geometry of each level from the levels' [Y, X] shapes (level 0 first). */
export function levelGeometry(shapes: Array<[number, number]>, tileSize: number): LevelGeometry[] {
  const [h0, w0] = shapes[0];
  return shapes.map(([h, w]) => ({
    w,
    h,
    sx: w0 / Math.max(1, w),
    sy: h0 / Math.max(1, h),
    nx: Math.ceil(w / tileSize),
    ny: Math.ceil(h / tileSize)
  }));
}

/**
 * The level to draw: the coarsest whose pixels are at most LEVEL_TOLERANCE
 * device pixels wide, i.e. the largest downsample `d` with
 * `d * scale <= 1.1`, `scale = zoom * min(pixelRatio, 2)`; ties go to the
 * first.  `zoom` and `pixelRatio` are positive (the camera clamps them).
 */
export function levelForZoom(downsamples: number[], zoom: number, pixelRatio: number): number {
  const scale = zoom * Math.min(pixelRatio, MAX_PIXEL_RATIO);
  let best = 0;
  let bestD = 0;
  downsamples.forEach((d, i) => {
    if (d * scale <= LEVEL_TOLERANCE && d > bestD) {
      best = i;
      bestD = d;
    }
  });
  return best;
}

/** [x0, y0, x1, y1]: the level-0 rectangle the screen shows. */
export function viewportRect(
  cx: number,
  cy: number,
  zoom: number,
  width: number,
  height: number
): [number, number, number, number] {
  return [
    cx + (0 - width / 2) / zoom,
    cy + (0 - height / 2) / zoom,
    cx + (width - width / 2) / zoom,
    cy + (height - height / 2) / zoom
  ];
}

/** The tiles of level `g` overlapping the level-0 rectangle `rect` (null: none). */
export function tileRange(
  g: LevelGeometry,
  tileSize: number,
  rect: [number, number, number, number]
): TileRange | null {
  const [x0, y0, x1, y1] = rect;
  const lx0 = Math.max(0, x0 / g.sx);
  const ly0 = Math.max(0, y0 / g.sy);
  const lx1 = Math.min(g.w, x1 / g.sx);
  const ly1 = Math.min(g.h, y1 / g.sy);
  if (lx1 <= lx0 || ly1 <= ly0) {
    return null;
  }
  return {
    tx0: Math.floor(lx0 / tileSize),
    tx1: Math.ceil(lx1 / tileSize) - 1,
    ty0: Math.floor(ly0 / tileSize),
    ty1: Math.ceil(ly1 / tileSize) - 1
  };
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}

/**
 * Centre, zoom and screen of one viewer over one image.  `fitMode` keeps the
 * whole image in view through resizes until the user zooms or pans.
 */
export class Camera {
  cx = 0;
  cy = 0;
  zoom = 1;
  fitMode = true;
  /** Screen size in CSS pixels, and device pixels per CSS pixel. */
  width = 0;
  height = 0;
  pixelRatio = 1;
  levels: LevelGeometry[] = [];
  tileSize = 256;

  /** Level-0 width and height of the image (1 before one is set). */
  get width0(): number {
    return this.levels.length ? this.levels[0].w : 1;
  }

  get height0(): number {
    return this.levels.length ? this.levels[0].h : 1;
  }

  /** A new image (its levels' [Y, X] shapes); the view is not changed. */
  setImage(shapes: Array<[number, number]>, tileSize: number): void {
    this.tileSize = tileSize;
    this.levels = levelGeometry(shapes, tileSize);
  }

  /** A new screen size; returns whether anything changed (a fitted view is refitted). */
  resize(width: number, height: number, pixelRatio: number): boolean {
    if (width === this.width && height === this.height && pixelRatio === this.pixelRatio) {
      return false;
    }
    this.width = width;
    this.height = height;
    this.pixelRatio = pixelRatio;
    if (this.fitMode && this.levels.length) {
      this.applyFit();
    }
    return true;
  }

  get hasSize(): boolean {
    return this.width > 0 && this.height > 0;
  }

  fitZoom(): number {
    if (!this.hasSize) {
      return 1;
    }
    return Math.min(this.width / this.width0, this.height / this.height0);
  }

  /** Zoom limits; unbounded below while the viewer has no size yet (not laid out). */
  minZoom(): number {
    return this.hasSize ? this.fitZoom() / 4 : 1e-9;
  }

  maxZoom(): number {
    return Math.max(64, this.fitZoom() * 2);
  }

  clampZoom(zoom: number): number {
    return clamp(zoom, this.minZoom(), this.maxZoom());
  }

  applyFit(): void {
    this.zoom = this.fitZoom();
    this.cx = this.width0 / 2;
    this.cy = this.height0 / 2;
  }

  /** Fit the image and stay fitted. */
  fit(): void {
    this.fitMode = true;
    this.applyFit();
  }

  clampCenter(): void {
    this.cx = clamp(this.cx, 0, this.width0);
    this.cy = clamp(this.cy, 0, this.height0);
  }

  /** Look at (cx, cy) (default: the image centre) at `zoom` (clamped). */
  lookAt(zoom: number, cx: number | null, cy: number | null): void {
    this.fitMode = false;
    this.zoom = this.clampZoom(zoom);
    this.cx = cx ?? this.width0 / 2;
    this.cy = cy ?? this.height0 / 2;
    this.clampCenter();
  }

  /** Move the centre to (cx, cy) (clamped to the image); leaves fit mode. */
  moveTo(cx: number, cy: number): void {
    this.fitMode = false;
    this.cx = cx;
    this.cy = cy;
    this.clampCenter();
  }

  /** Zoom by `factor` keeping the screen point (sx, sy) fixed; leaves fit mode. */
  zoomAt(factor: number, sx: number, sy: number): void {
    const [ix, iy] = this.toImage(sx, sy);
    this.zoom = this.clampZoom(this.zoom * factor);
    this.cx = ix - (sx - this.width / 2) / this.zoom;
    this.cy = iy - (sy - this.height / 2) / this.zoom;
    this.fitMode = false;
    this.clampCenter();
  }

  /** Screen (CSS px) -> level-0 image coordinates. */
  toImage(sx: number, sy: number): [number, number] {
    return [this.cx + (sx - this.width / 2) / this.zoom, this.cy + (sy - this.height / 2) / this.zoom];
  }

  toScreenX(x: number): number {
    return (x - this.cx) * this.zoom + this.width / 2;
  }

  toScreenY(y: number): number {
    return (y - this.cy) * this.zoom + this.height / 2;
  }

  /** Round to the device pixel grid. */
  snap(v: number): number {
    return Math.round(v * this.pixelRatio) / this.pixelRatio;
  }

  /** The level-0 rectangle on screen. */
  viewRect(): [number, number, number, number] {
    return viewportRect(this.cx, this.cy, this.zoom, this.width, this.height);
  }

  /** The level to draw now (`levelForZoom`). */
  targetLevel(): number {
    return levelForZoom(
      this.levels.map(g => g.sx),
      this.zoom,
      this.pixelRatio
    );
  }

  /** The visible tiles of `level` (null: none). */
  tileRange(level: number): TileRange | null {
    return tileRange(this.levels[level], this.tileSize, this.viewRect());
  }

  /** Every tile of `level` (the overview and small coarsest levels use all of them). */
  allTiles(level: number): TileRange {
    const g = this.levels[level];
    return { tx0: 0, tx1: g.nx - 1, ty0: 0, ty1: g.ny - 1 };
  }

  /** The tiles of `range` at `level`, nearest to the view centre first when `sort`. */
  tiles(level: number, range: TileRange | null, sort: boolean): TilePos[] {
    if (!range) {
      return [];
    }
    const g = this.levels[level];
    const ts = this.tileSize;
    const out: TilePos[] = [];
    for (let ty = range.ty0; ty <= range.ty1; ty++) {
      for (let tx = range.tx0; tx <= range.tx1; tx++) {
        const mx = (tx + 0.5) * ts * g.sx - this.cx;
        const my = (ty + 0.5) * ts * g.sy - this.cy;
        out.push({ level, tx, ty, d: mx * mx + my * my });
      }
    }
    if (sort) {
      out.sort((a, b) => a.d - b.d);
    }
    return out;
  }

  /**
   * What a frame wants loaded, in order: the coarsest level (every tile when it
   * has at most 16, else the visible ones), then the visible tiles of `target`
   * nearest to the centre first.
   */
  wanted(target: number, coarseFirst = true): TilePos[] {
    const coarsest = this.levels.length - 1;
    const g = this.levels[coarsest];
    if (!coarseFirst && target !== coarsest) {
      // A source whose coarse tiles are expensive (a lazy array: one coarse tile computes
      // every chunk beneath it): only the target level's visible tiles.
      return this.tiles(target, this.tileRange(target), true);
    }
    const coarse = g.nx * g.ny <= 16 ? this.allTiles(coarsest) : this.tileRange(coarsest);
    const out = this.tiles(coarsest, coarse, false);
    if (target !== coarsest) {
      out.push(...this.tiles(target, this.tileRange(target), true));
    }
    return out;
  }

  /** Screen rectangle [left, top, right, bottom] of tile (tx, ty) of `level`, snapped. */
  tileScreenRect(level: number, tx: number, ty: number): [number, number, number, number] {
    const g = this.levels[level];
    const ts = this.tileSize;
    return [
      this.snap(this.toScreenX(tx * ts * g.sx)),
      this.snap(this.toScreenY(ty * ts * g.sy)),
      this.snap(this.toScreenX(Math.min((tx + 1) * ts, g.w) * g.sx)),
      this.snap(this.toScreenY(Math.min((ty + 1) * ts, g.h) * g.sy))
    ];
  }
}
