/**
 * The data shapes the viewer exchanges with a tile source.  They mirror
 * `bioimnb.core.tiles` (ViewState, ChannelView, TileRenderer.info/values/
 * histogram), whether the source talks to a kernel (notebook widget) or to
 * the server extension's REST API (document viewer).
 */

/** One channel's display settings; `color` is "RRGGBB" (no '#'). */
export interface ChannelView {
  index: number;
  visible: boolean;
  color: string;
  min: number;
  max: number;
}

/**
 * Where the viewer looks and how it shows it.  Coordinates are level-0
 * pixels; `zoom` is screen (CSS) pixels per level-0 pixel; `null` zoom means
 * "fit the image to the viewer", `null` centre means "the image centre".
 */
export interface ViewState {
  scene: number;
  t: number;
  z: number;
  center_x: number | null;
  center_y: number | null;
  zoom: number | null;
  channels: ChannelView[];
  labels: string[];
}

export interface LevelInfo {
  /** [Y, X] of the level. */
  shape: [number, number];
  downsample: number;
}

export interface PhysicalSize {
  X?: number | null;
  Y?: number | null;
  Z?: number | null;
}

export interface ChannelInfo {
  name: string;
  color: string;
}

/** `TileRenderer.info(scene)`. */
export interface ImageInfo {
  source: string;
  format: string;
  scenes: Array<string | { name?: string }>;
  scene: number;
  axes: string;
  dtype: string;
  rgb: boolean;
  tile_size: number;
  levels: LevelInfo[];
  size_t: number;
  size_z: number;
  physical_size_um: PhysicalSize;
  channels: ChannelInfo[];
  labels: string[];
  default_view: ViewState;
}

export interface TileRequest {
  scene: number;
  level: number;
  t: number;
  z: number;
  tx: number;
  ty: number;
  /** Channels to composite (only visible ones are sent). */
  channels: ChannelView[];
  labels: string[];
  /** Aborted when the tile is no longer wanted (view moved on). */
  signal?: AbortSignal;
}

export interface ValuesRequest {
  scene: number;
  t: number;
  z: number;
  x: number;
  y: number;
  signal?: AbortSignal;
}

export interface ValuesResult {
  x: number;
  y: number;
  values: Array<number | number[] | null>;
  labels: Record<string, number | null>;
}

export interface Histogram {
  edges: number[];
  counts: number[];
}

/**
 * What the viewer needs from its host: the notebook widget implements it with
 * comm messages, the document viewer with authenticated REST calls.
 */
export interface TileSource {
  info(scene: number): Promise<ImageInfo>;
  tile(req: TileRequest): Promise<ImageBitmap | Blob>;
  values(req: ValuesRequest): Promise<ValuesResult>;
  histogram(scene: number, channel: number): Promise<Histogram>;
}

/** True for errors raised because a request was aborted on purpose. */
export function isAbort(error: unknown): boolean {
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as { name?: string }).name === 'AbortError'
  );
}

export function abortError(): Error {
  const error = new Error('aborted');
  error.name = 'AbortError';
  return error;
}
