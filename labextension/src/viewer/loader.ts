/**
 * The viewer's tile loader: what is fetched from the tile source, what is
 * kept, what is aborted.  No drawing and no DOM (beyond ImageBitmap).
 *
 * Two kinds of cache entries: composited tiles from the source (`tiles`,
 * keyed by layer|level|tx|ty, the layer key naming the render settings), and
 * raw single-channel tiles (`raw`, keyed by layer|level|tx|ty|c, the layer
 * key naming only scene, t and z) that the viewer composites itself.  A
 * frame calls `pump` with the tiles it wants, in priority order: requests
 * for entries no longer wanted are aborted, new ones start up to
 * `maxInFlight`, and failed entries are not asked again until `retry`.
 */
import { LruCache, TileCache } from './lru';
import { tileBytes } from './composite';
import { ChannelTile, ChannelView, TileSource, isAbort } from './types';

/**
 * What a frame draws tiles from: composited tiles of one render key (`local`
 * false), or tiles composited here from the raw channel tiles of one plane
 * (`local` true, `key` = scene|t|z, whatever the channel settings).
 */
export interface Layer {
  local: boolean;
  key: string;
}

export function sameLayer(a: Layer, b: Layer): boolean {
  return a.local === b.local && a.key === b.key;
}

/** The cache key of tile (tx, ty) of `level` in the layer keyed `key`. */
export function tileKey(key: string, level: number, tx: number, ty: number): string {
  return `${key}|${level}|${tx}|${ty}`;
}

/** The raw-cache key of channel `channel` of the tile `tileKey` (layer|level|tx|ty). */
export function rawKey(tileKey: string, channel: number): string {
  return `${tileKey}|c${channel}`;
}

/** One tile a frame wants. */
export interface Wanted {
  key: string;
  level: number;
  tx: number;
  ty: number;
}

/** The plane and settings the wanted tiles are for. */
export interface Request {
  layer: Layer;
  scene: number;
  t: number;
  z: number;
  /** Visible channels (composited tiles are asked with these settings). */
  channels: ChannelView[];
  labels: string[];
  labelOpacity?: number;
}

export interface LoaderOptions {
  maxInFlight?: number;
  /** Composited tiles kept. */
  cacheTiles?: number;
  /** Bytes of raw channel tiles kept. */
  rawCacheBytes?: number;
}

/** One request to the source; it may bring several cache entries (channels). */
interface Flight {
  ctrl: AbortController;
  keys: string[];
}

export class TileLoader {
  readonly tiles: TileCache;
  readonly raw: LruCache<ChannelTile>;
  readonly levelsRequested = new Set<number>();
  requested = 0;
  received = 0;
  failures = 0;
  private readonly inflight = new Map<string, Flight>();
  private readonly flights = new Set<Flight>();
  private readonly failed = new Set<string>();
  private disposed = false;

  /**
   * `loaded` is called when an entry arrives, `failed` when a request fails
   * (not when it is aborted).
   */
  constructor(
    private readonly source: TileSource,
    private readonly options: LoaderOptions,
    private readonly loaded: () => void,
    private readonly failedCallback: (error: unknown) => void
  ) {
    this.tiles = new TileCache(options.cacheTiles ?? 256);
    this.raw = new LruCache<ChannelTile>(options.rawCacheBytes ?? 128 * 2 ** 20, tileBytes);
  }

  /** Requests under way. */
  get inFlight(): number {
    return this.flights.size;
  }

  /** Forget failures: the settings changed, so failed tiles may be asked again. */
  retry(): void {
    this.failed.clear();
  }

  /**
   * Start what `wanted` needs (in order, up to maxInFlight requests), abort
   * requests nobody wants any more.  `done(item)` says a tile needs nothing
   * (e.g. it is composited already with the current settings).
   */
  pump(wanted: Wanted[], req: Request, done: (item: Wanted) => boolean): void {
    const local = req.layer.local;
    const channels = req.channels;
    const keysOf = (item: Wanted): string[] =>
      local ? channels.map(c => rawKey(item.key, c.index)) : [item.key];
    const wantedKeys = new Set<string>();
    for (const item of wanted) {
      for (const key of keysOf(item)) {
        wantedKeys.add(key);
      }
    }
    for (const flight of [...this.flights]) {
      if (!flight.keys.some(key => wantedKeys.has(key))) {
        flight.ctrl.abort();
        this.endFlight(flight);
      }
    }
    const limit = this.options.maxInFlight ?? 20;
    for (const item of wanted) {
      if (this.flights.size >= limit) {
        break;
      }
      if (!local) {
        if (!this.tiles.has(item.key) && !this.inflight.has(item.key) && !this.failed.has(item.key)) {
          this.fetchTile(item, req);
        }
        continue;
      }
      if (done(item)) {
        continue;
      }
      const missing = channels.filter(c => {
        const key = rawKey(item.key, c.index);
        return !this.raw.has(key) && !this.inflight.has(key) && !this.failed.has(key);
      });
      if (missing.length) {
        this.fetchChannels(
          item,
          req,
          missing.map(c => c.index)
        );
      }
    }
  }

  abortAll(): void {
    for (const flight of this.flights) {
      flight.ctrl.abort();
    }
    this.flights.clear();
    this.inflight.clear();
  }

  /** Forget every tile (kept or on its way): the image's pixels changed. */
  clear(): void {
    this.abortAll();
    this.tiles.clear();
    this.raw.clear();
    this.failed.clear();
  }

  dispose(): void {
    this.disposed = true;
    this.clear();
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

  /** A composited tile from the source (RGB images, label overlays, sources without channelTiles). */
  private fetchTile(item: Wanted, req: Request): void {
    const flight = this.startFlight([item.key], item.level);
    this.source
      .tile({
        scene: req.scene,
        level: item.level,
        t: req.t,
        z: req.z,
        tx: item.tx,
        ty: item.ty,
        channels: req.channels.map(c => ({ ...c })),
        labels: [...req.labels],
        ...(req.labelOpacity !== undefined && req.labels.length ? { label_opacity: req.labelOpacity } : {}),
        signal: flight.ctrl.signal
      })
      .then(async result => {
        const bitmap = result instanceof Blob ? await createImageBitmap(result) : result;
        if (this.disposed) {
          bitmap.close();
          return;
        }
        this.endFlight(flight);
        this.tiles.set(item.key, bitmap);
        this.received++;
        this.loaded();
      })
      .catch((error: unknown) => this.fetchFailed(flight, error));
  }

  /** Raw tiles of `channels` of one tile, kept for compositing here. */
  private fetchChannels(item: Wanted, req: Request, channels: number[]): void {
    const fetch = this.source.channelTiles?.bind(this.source);
    if (!fetch) {
      return;
    }
    const flight = this.startFlight(
      channels.map(c => rawKey(item.key, c)),
      item.level
    );
    fetch({
      scene: req.scene,
      level: item.level,
      t: req.t,
      z: req.z,
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
        this.loaded();
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
    this.failedCallback(error);
  }
}
