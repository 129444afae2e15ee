/**
 * The image-aware listing shared by the notebook browser widget and the
 * JupyterLab side panel: a virtual list (only the visible rows exist in the
 * DOM; rows are fetched from a ListingSource in blocks as they scroll into
 * view), thumbnails per visible image row, multi-select (click, Ctrl/Cmd-click,
 * Shift-click) and open on double-click / Enter.
 *
 * The source decides where rows come from: comm messages to the kernel
 * (widget) or the server's REST routes (side panel).
 */

export interface Row {
  i: number;
  name: string;
  kind: 'folder' | 'image' | 'file';
  format: string | null;
  size: number | null;
  files: number | null;
  incomplete: boolean;
  error: string | null;
  dims?: string;
  levels?: number;
  channels?: number;
  dtype?: string;
  /** Metadata completeness in percent (the curation module's minimum), once known. */
  completeness?: number | null;
}

export interface Thumb {
  url?: string;
  summary?: {
    dims?: string;
    levels?: number;
    channels?: number;
    dtype?: string;
    completeness?: number | null;
    error?: string;
  };
}

export interface ListingSource {
  /** Rows start .. start + count of the current listing (fewer at its end). */
  rows(start: number, count: number): Promise<Row[]>;
  /** The thumbnail (an object URL) and summary of an image row. */
  thumb(row: Row): Promise<Thumb>;
  /** The row scrolled away before its thumbnail came: stop making it (optional). */
  cancelThumb?(row: Row): void;
}

export const ROW_HEIGHT = 44;
const BLOCK = 100;

export function formatSize(size: number | null | undefined): string {
  if (size === null || size === undefined) {
    return '';
  }
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = size;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return unit === 0 ? `${size} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export interface ListingOptions {
  onOpen: (row: Row) => void;
  onSelect: (names: string[], focus: string) => void;
}

export class VirtualList {
  readonly node: HTMLDivElement;
  private readonly spacer: HTMLDivElement;
  private readonly rowsNode: HTMLDivElement;
  private source: ListingSource;
  private total = 0;
  private blocks = new Map<number, Row[] | Promise<void>>();
  /** Rows of the previous version, drawn until the new ones arrive (no flicker). */
  private stale = new Map<number, Row[]>();
  private thumbs = new Map<string, Thumb | Promise<void>>();
  /** Rows whose thumbnail is asked for and not yet here. */
  private waiting = new Map<string, Row>();
  private selected = new Set<string>();
  private anchor = -1;
  private generation = 0;
  private frame = 0;
  private disposed = false;

  constructor(source: ListingSource, private readonly options: ListingOptions) {
    this.source = source;
    this.node = document.createElement('div');
    this.node.className = 'bioimnb-list';
    this.node.tabIndex = 0;
    this.spacer = document.createElement('div');
    this.spacer.className = 'bioimnb-list-spacer';
    this.rowsNode = document.createElement('div');
    this.rowsNode.className = 'bioimnb-list-rows';
    this.spacer.appendChild(this.rowsNode);
    this.node.appendChild(this.spacer);
    this.node.addEventListener('scroll', () => this.schedule());
    this.node.addEventListener('keydown', event => this.onKey(event));
  }

  /** A new listing (or new order): forget rows, keep thumbnails of the same names. */
  reset(total: number, keepThumbs = true): void {
    this.generation += 1;
    this.stale = new Map();
    if (keepThumbs) {
      for (const [b, rows] of this.blocks) {
        if (!(rows instanceof Promise)) {
          this.stale.set(b, rows);
        }
      }
    }
    this.blocks.clear();
    if (!keepThumbs) {
      for (const t of this.thumbs.values()) {
        if (!(t instanceof Promise) && t.url) {
          URL.revokeObjectURL(t.url);
        }
      }
      this.thumbs.clear();
      this.cancelHidden(new Set());
      this.selected.clear();
      this.anchor = -1;
      this.node.scrollTop = 0;
    }
    this.setTotal(total);
  }

  setTotal(total: number): void {
    if (total !== this.total) {
      // Rows of the last, partial block may have grown.
      const last = Math.floor(this.total / BLOCK);
      this.blocks.delete(last);
    }
    this.total = total;
    this.spacer.style.height = `${total * ROW_HEIGHT}px`;
    this.node.dataset.total = String(total);
    this.schedule();
  }

  setSelection(names: string[]): void {
    this.selected = new Set(names);
    this.schedule();
  }

  /** A thumbnail arrived out of band (the widget's comm replies). */
  setThumb(name: string, thumb: Thumb): void {
    this.waiting.delete(name);
    this.thumbs.set(name, thumb);
    this.schedule();
  }

  dispose(): void {
    this.disposed = true;
    cancelAnimationFrame(this.frame);
    for (const t of this.thumbs.values()) {
      if (!(t instanceof Promise) && t.url) {
        URL.revokeObjectURL(t.url);
      }
    }
  }

  schedule(): void {
    if (this.frame || this.disposed) {
      return;
    }
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  private rowAt(index: number): Row | undefined {
    const b = Math.floor(index / BLOCK);
    const block = this.blocks.get(b);
    if (!block || block instanceof Promise) {
      return this.stale.get(b)?.[index % BLOCK];
    }
    return block[index % BLOCK];
  }

  private fetchBlock(b: number): void {
    if (this.blocks.has(b)) {
      return;
    }
    const generation = this.generation;
    const pending = this.source
      .rows(b * BLOCK, BLOCK)
      .then(rows => {
        if (generation === this.generation) {
          this.blocks.set(b, rows);
          this.schedule();
        }
      })
      .catch(() => {
        if (generation === this.generation) {
          this.blocks.delete(b);
        }
      });
    this.blocks.set(b, pending);
  }

  private fetchThumb(row: Row): void {
    if (this.thumbs.has(row.name) || row.kind !== 'image' || row.error) {
      return;
    }
    const pending: Promise<void> = this.source
      .thumb(row)
      .then(thumb => {
        if (this.thumbs.get(row.name) === pending) {
          this.waiting.delete(row.name);
          this.thumbs.set(row.name, thumb);
          this.schedule();
        }
      })
      .catch(() => {
        if (this.thumbs.get(row.name) === pending) {
          this.waiting.delete(row.name);
          this.thumbs.set(row.name, { summary: { error: 'no thumbnail' } });
        }
      });
    this.thumbs.set(row.name, pending);
    this.waiting.set(row.name, row);
  }

  /** Thumbnails asked for rows now out of view are cancelled (asked again if they come back),
   * so scrolling through a long folder does not queue work for rows nobody sees. */
  private cancelHidden(visible: Set<string>): void {
    if (!this.source.cancelThumb) {
      return;
    }
    for (const [name, row] of [...this.waiting]) {
      if (!visible.has(name)) {
        this.waiting.delete(name);
        this.thumbs.delete(name);
        this.source.cancelThumb(row);
      }
    }
  }

  private draw(): void {
    const top = this.node.scrollTop;
    const height = this.node.clientHeight || 360;
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - 5);
    const last = Math.min(this.total, Math.ceil((top + height) / ROW_HEIGHT) + 5);
    for (let b = Math.floor(first / BLOCK); b <= Math.floor(Math.max(first, last - 1) / BLOCK); b++) {
      if (b * BLOCK < this.total) {
        this.fetchBlock(b);
      }
    }
    this.rowsNode.style.transform = `translateY(${first * ROW_HEIGHT}px)`;
    const nodes: HTMLElement[] = [];
    const visible = new Set<string>();
    for (let i = first; i < last; i++) {
      const row = this.rowAt(i);
      nodes.push(this.renderRow(i, row));
      if (row) {
        visible.add(row.name);
      }
    }
    this.cancelHidden(visible);
    for (let i = first; i < last; i++) {
      const row = this.rowAt(i);
      if (row) {
        this.fetchThumb(row);
      }
    }
    this.rowsNode.replaceChildren(...nodes);
    this.node.dataset.first = String(first);
  }

  private renderRow(index: number, row: Row | undefined): HTMLElement {
    const el = document.createElement('div');
    el.className = 'bioimnb-row';
    el.style.height = `${ROW_HEIGHT}px`;
    el.dataset.index = String(index);
    if (!row) {
      el.classList.add('bioimnb-row-pending');
      el.textContent = '…';
      return el;
    }
    el.dataset.name = row.name;
    el.dataset.kind = row.kind;
    if (this.selected.has(row.name)) {
      el.classList.add('bioimnb-selected');
    }
    if (row.error) {
      el.classList.add('bioimnb-broken');
    }
    if (row.incomplete) {
      el.classList.add('bioimnb-incomplete');
    }
    const thumb = document.createElement('div');
    thumb.className = 'bioimnb-thumb';
    const known = this.thumbs.get(row.name);
    const t = known && !(known instanceof Promise) ? known : undefined;
    if (row.kind === 'image' && t?.url) {
      const img = document.createElement('img');
      img.src = t.url;
      img.alt = '';
      thumb.appendChild(img);
    } else {
      thumb.textContent = row.kind === 'folder' ? '📁' : row.kind === 'image' ? (row.error ? '⚠' : '🖼') : '📄';
    }
    const name = document.createElement('div');
    name.className = 'bioimnb-name';
    name.textContent = row.name;
    name.title = row.error ? `${row.name}: ${row.error}` : row.name;
    const fmt = document.createElement('div');
    fmt.className = 'bioimnb-format';
    const flags: string[] = [];
    if (row.error) {
      flags.push('broken');
    }
    if (row.incomplete) {
      flags.push('incomplete');
    }
    fmt.textContent = [row.format ?? row.kind, ...flags].join(' · ');
    const summary = { ...row, ...(t?.summary ?? {}) } as Row & { error?: string | null };
    const dims = document.createElement('div');
    dims.className = 'bioimnb-dims';
    if (row.kind === 'image' && !row.error && summary.dims) {
      const score = typeof summary.completeness === 'number' ? ` · metadata ${summary.completeness} %` : '';
      dims.textContent = `${summary.dims} · ${summary.levels} lvl · ${summary.channels} ch${score}`;
      if (score) {
        dims.title = 'metadata completeness: the share of the minimum (pixel sizes, channel names, objective, date, instrument) the image states';
      }
    } else if (row.error) {
      dims.textContent = row.error;
    }
    const size = document.createElement('div');
    size.className = 'bioimnb-size';
    size.textContent = formatSize(row.size);
    el.append(thumb, name, fmt, dims, size);
    el.addEventListener('click', event => this.onClick(event, index, row));
    el.addEventListener('dblclick', () => this.options.onOpen(row));
    return el;
  }

  private onClick(event: MouseEvent, index: number, row: Row): void {
    if (event.shiftKey && this.anchor >= 0) {
      const [a, b] = [Math.min(this.anchor, index), Math.max(this.anchor, index)];
      for (let i = a; i <= b; i++) {
        const r = this.rowAt(i);
        if (r) {
          this.selected.add(r.name);
        }
      }
    } else if (event.ctrlKey || event.metaKey) {
      if (this.selected.has(row.name)) {
        this.selected.delete(row.name);
      } else {
        this.selected.add(row.name);
      }
      this.anchor = index;
    } else {
      this.selected = new Set([row.name]);
      this.anchor = index;
    }
    this.schedule();
    this.options.onSelect([...this.selected], row.name);
  }

  private onKey(event: KeyboardEvent): void {
    if (event.key === 'Enter' && this.anchor >= 0) {
      const row = this.rowAt(this.anchor);
      if (row) {
        this.options.onOpen(row);
      }
    }
  }
}
