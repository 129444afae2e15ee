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
  /**
   * Opacity of the label overlays, 0..1 (absent: 0.5, the kernel's and server's blend).
   * Only sources with `labelOpacity` honour other values.
   */
  label_opacity?: number;
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
  /** Channels of the image; `channels` lists at most the first 1000 of them. */
  size_c?: number;
  physical_size_um: PhysicalSize;
  channels: ChannelInfo[];
  labels: string[];
  default_view: ViewState;
  /**
   * Pixels are computed on demand (an in-memory lazy array): the viewer fetches only the
   * visible tiles of the level it draws, not the coarsest level's as stand-ins first.
   */
  lazy?: boolean;
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
  /** Opacity of the label overlays (sources with `labelOpacity`); absent: 0.5. */
  label_opacity?: number;
  /** Aborted when the tile is no longer wanted (view moved on). */
  signal?: AbortSignal;
}

/** The dtype of a raw channel tile (`bioimnb.core.tiles.channel_dtype`). */
export type ChannelDtype = 'uint8' | 'uint16' | 'float32';

export type ChannelData = Uint8Array | Uint16Array | Float32Array;

export interface ChannelTileRequest {
  scene: number;
  level: number;
  t: number;
  z: number;
  tx: number;
  ty: number;
  /** Indices of the channels wanted. */
  channels: number[];
  signal?: AbortSignal;
}

/** The raw pixels of one channel of one tile (`TileRenderer.raw_tile`), row-major. */
export interface ChannelTile {
  channel: number;
  w: number;
  h: number;
  dtype: ChannelDtype;
  data: ChannelData;
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
  /** A composited tile (RGB images, label overlays, and sources without `channelTiles`). */
  tile(req: TileRequest): Promise<ImageBitmap | Blob>;
  /**
   * Optional capability: the raw single-channel tiles of a non-RGB image.  A
   * source that has it lets the viewer keep them and composite contrast,
   * colours and visibility itself (`composite.ts`), so changing those fetches
   * nothing.  The notebook widget has it; the REST document viewer does not
   * (it gets PNG tiles composited by the server).
   */
  channelTiles?(req: ChannelTileRequest): Promise<ChannelTile[]>;
  values(req: ValuesRequest): Promise<ValuesResult>;
  histogram(scene: number, channel: number): Promise<Histogram>;
  /** The source blends label overlays at the `label_opacity` of a tile request (the notebook
   * widget); without it overlays are blended at 50 % and the panel has no opacity slider. */
  readonly labelOpacity?: boolean;
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
