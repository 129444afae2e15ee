/**
 * The document viewer's memory of views: per file path, the last view (scene,
 * plane, centre, zoom, channels, labels) kept in JupyterLab's state database,
 * which the lab saves in the workspace, so a view survives closing the tab and
 * reloading the page.
 *
 * A record is `{image, view}`: `image` is a fingerprint of the image the view
 * was taken on (scene count, level-0 shape, channels, T, Z, dtype).  A record
 * is restored only if the image still has that fingerprint and every value
 * fits it (`restorableView`); otherwise the file opens at its default view.
 */
import { IStateDB } from '@jupyterlab/statedb';
import { ReadonlyPartialJSONValue } from '@lumino/coreutils';
import { jsonEqual } from './viewer/format';
import { ImageInfo, TileSource, ViewState } from './viewer/types';
import { mergeView } from './viewer/viewer';

/** Key prefix in the state database (`bioimnb-view:<path>`). */
export const NAMESPACE = 'bioimnb-view';

interface ViewRecord {
  image: string;
  view: ViewState;
}

/** What identifies an image for a saved view: a changed file gives another fingerprint. */
export function imageFingerprint(info: ImageInfo): string {
  const [h, w] = info.levels[0]?.shape ?? [0, 0];
  return [
    Math.max(1, info.scenes?.length ?? 1),
    `${w}x${h}`,
    info.channels.length,
    info.size_t,
    info.size_z,
    info.dtype,
    info.rgb ? 'rgb' : ''
  ].join('|');
}

const isInt = (v: unknown, lo: number, hi: number): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * The saved view, if it is a view of this image (`info`, of the saved scene)
 * with every value in range; null (open at the default view) otherwise.
 */
export function restorableView(info: ImageInfo, saved: unknown): ViewState | null {
  if (!saved || typeof saved !== 'object') {
    return null;
  }
  const { image, view } = saved as Partial<ViewRecord>;
  if (image !== imageFingerprint(info) || !view || typeof view !== 'object') {
    return null;
  }
  const [h0, w0] = info.levels[0].shape;
  const v = view as Partial<ViewState>;
  const centre = (c: unknown, size: number): boolean => c === null || (isNum(c) && c >= 0 && c <= size);
  const channels = Array.isArray(v.channels) ? v.channels : [];
  const ok =
    v.scene === info.scene &&
    isInt(v.t, 0, Math.max(0, info.size_t - 1)) &&
    isInt(v.z, 0, Math.max(0, info.size_z - 1)) &&
    centre(v.center_x, w0) &&
    centre(v.center_y, h0) &&
    (v.zoom === null || (isNum(v.zoom) && v.zoom > 0)) &&
    (v.zoom === null) === (v.center_x === null && v.center_y === null) &&
    channels.length === info.channels.length &&
    channels.every(
      (c, i) =>
        c &&
        c.index === i &&
        typeof c.visible === 'boolean' &&
        typeof c.color === 'string' &&
        /^[0-9a-f]{6}$/i.test(c.color) &&
        isNum(c.min) &&
        isNum(c.max)
    ) &&
    Array.isArray(v.labels) &&
    v.labels.every(l => info.labels.includes(l));
  if (!ok) {
    return null;
  }
  return {
    scene: v.scene as number,
    t: v.t as number,
    z: v.z as number,
    center_x: v.center_x as number | null,
    center_y: v.center_y as number | null,
    zoom: v.zoom as number | null,
    channels: channels.map(c => ({ ...c })),
    labels: [...(v.labels as string[])]
  };
}

/** Whether `view` is what the file shows when opened with nothing remembered. */
export function isDefaultView(info: ImageInfo, view: ViewState): boolean {
  return view.scene === 0 && info.scene === 0 && jsonEqual(view, mergeView(info, {}));
}

/** One path's remembered view, read and written through the state database. */
export class ViewMemory {
  /** The view the database holds for the path (as far as this object knows). */
  private stored: ViewState | null = null;
  private timer = 0;
  private pending: { info: ImageInfo; view: ViewState } | null = null;
  /** Called after each write to the database (a test hook). */
  saved: (() => void) | null = null;

  constructor(
    private readonly db: IStateDB,
    readonly path: string,
    /** Debounce of saves: the database is written this long after the last change. */
    private readonly delay = 500
  ) {}

  get key(): string {
    return `${NAMESPACE}:${this.path}`;
  }

  /**
   * The remembered view if it still fits the image, asking `source` for the
   * image info it is checked against (the viewer reuses it).  Never throws:
   * anything unreadable or stale gives null, and the default view.
   */
  async recall(source: TileSource): Promise<ViewState | null> {
    try {
      const saved = (await this.db.fetch(this.key)) as Partial<ViewRecord> | undefined;
      const scene = saved?.view?.scene;
      if (!saved || !isInt(scene, 0, 1e6)) {
        return null;
      }
      const first = await source.info(0);
      const info =
        scene < Math.max(1, first.scenes?.length ?? 1)
          ? scene === 0
            ? first
            : await source.info(scene)
          : null;
      const view = info ? restorableView(info, saved) : null;
      if (!view) {
        // Stale (the file changed) or unreadable: forgotten, the default view shows.
        await this.db.remove(this.key);
      }
      this.stored = view;
      return view;
    } catch (error) {
      console.warn(`bioimnb: the remembered view of ${this.path} is not used.`, error);
      return null;
    }
  }

  /** Remember `view` (of the image `info`) after the debounce delay. */
  saveSoon(info: ImageInfo, view: ViewState): void {
    this.pending = { info, view };
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(() => void this.flush(), this.delay);
  }

  /** Write what is pending now (closing the tab does not lose a recent change). */
  async flush(): Promise<boolean> {
    window.clearTimeout(this.timer);
    const pending = this.pending;
    this.pending = null;
    if (!pending) {
      return false;
    }
    const { info, view } = pending;
    try {
      if (isDefaultView(info, view)) {
        // Back at the default: nothing to remember (and auto contrast stays automatic).
        if (this.stored === null) {
          return false;
        }
        this.stored = null;
        await this.db.remove(this.key);
        this.saved?.();
        return true;
      }
      if (jsonEqual(view, this.stored)) {
        return false;
      }
      this.stored = view;
      const record: ViewRecord = { image: imageFingerprint(info), view };
      await this.db.save(this.key, record as unknown as ReadonlyPartialJSONValue);
      this.saved?.();
      return true;
    } catch (error) {
      console.warn(`bioimnb: the view of ${this.path} could not be remembered.`, error);
      return false;
    }
  }

  dispose(): void {
    window.clearTimeout(this.timer);
  }
}
