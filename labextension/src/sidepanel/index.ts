/**
 * The left-sidebar storage browser: the server's root and the locations an
 * admin configured (`c.BioimnbConfig.locations`: a project bucket, a shared
 * folder), listed image-aware with thumbnails by the server extension
 * (`api/locations`, `api/ls?location=`, `api/thumbnail`, `api/facts`). The
 * browser never sees a location's URL or credentials: only its id and name.
 *
 * Double-click (or Enter) enters a folder; on an image it opens the bioimnb
 * viewer (for a configured location, its tiles come through the same routes
 * with `location=ID`: the server opens the image with the location's
 * credentials).
 */
import { Widget } from '@lumino/widgets';
import { ListingSource, Row, Thumb, VirtualList } from '../browser/listing';
import { factsTable, h, injectBrowserStyle } from '../browser/style';

export interface ILocationInfo {
  id: string;
  name: string;
  kind: string;
  read_only: boolean;
}

interface IEntry {
  name: string;
  path: string;
  kind: 'folder' | 'image' | 'file';
  format: string | null;
  size: number | null;
  files: number | null;
  incomplete: boolean;
  error: string | null;
}

interface IPage {
  location: string;
  entries: IEntry[];
  next_page: string | null;
}

export interface ISidePanelOptions {
  /** GET a JSON route under {base_url}bioimnb/ (auth and base URL handled). */
  getJSON: <T>(endPoint: string) => Promise<T>;
  /** GET a binary route under {base_url}bioimnb/ as a Blob (`init.signal` aborts it). */
  getBlob: (endPoint: string, init?: RequestInit) => Promise<Blob>;
  /** Open an image in the bioimnb viewer (`location`: null for the server root). */
  openViewer: (path: string, isFolder: boolean, location: string | null) => void;
}

const PAGE = 500;

class RestSource implements ListingSource {
  rows: (start: number, count: number) => Promise<Row[]>;
  private readonly inFlight = new Map<string, AbortController>();

  constructor(
    view: () => Row[],
    private readonly fetchThumb: (row: Row, signal: AbortSignal) => Promise<Thumb>
  ) {
    this.rows = (start, count) => Promise.resolve(view().slice(start, start + count));
  }

  thumb(row: Row): Promise<Thumb> {
    const controller = new AbortController();
    this.inFlight.set(row.name, controller);
    return this.fetchThumb(row, controller.signal).finally(() => {
      if (this.inFlight.get(row.name) === controller) {
        this.inFlight.delete(row.name);
      }
    });
  }

  /** The row scrolled away: its request is aborted, freeing one of the browser's few connections to the server for the rows in view. */
  cancelThumb(row: Row): void {
    this.inFlight.get(row.name)?.abort();
    this.inFlight.delete(row.name);
  }
}

export class BrowsePanel extends Widget {
  private locations: ILocationInfo[] = [];
  private locationId = 'root';
  private path = '';
  private entries: IEntry[] = [];
  private view: Row[] = [];
  private generation = 0;
  private readonly list: VirtualList;
  private readonly select: HTMLSelectElement;
  private readonly crumbs: HTMLDivElement;
  private readonly filter: HTMLInputElement;
  private readonly sortBy: HTMLSelectElement;
  private readonly direction: HTMLButtonElement;
  private descending = false;
  private readonly status: HTMLDivElement;
  private readonly error: HTMLDivElement;
  private readonly facts: HTMLDivElement;
  private focus: Row | null = null;

  constructor(private readonly options: ISidePanelOptions) {
    super();
    injectBrowserStyle();
    this.addClass('bioimnb-sidepanel');
    this.id = 'bioimnb-storage-browser';
    this.title.caption = 'bioimnb: storage browser';
    const root = h('div', { class: 'bioimnb-browser bioimnb-side' });
    this.select = h('select', { 'aria-label': 'Location', class: 'bioimnb-location-select' });
    this.select.addEventListener('change', () => this.go(this.select.value, ''));
    const up = h('button', { title: 'Up', 'aria-label': 'Up' }, '↑');
    up.addEventListener('click', () => this.go(this.locationId, this.path.split('/').slice(0, -1).join('/')));
    const refresh = h('button', { title: 'Refresh', 'aria-label': 'Refresh' }, '⟳');
    refresh.addEventListener('click', () => this.go(this.locationId, this.path));
    this.filter = h('input', { type: 'text', placeholder: 'filter by name', 'aria-label': 'Filter' });
    this.filter.addEventListener('input', () => this.recompute());
    // Sorting is the server's (the notebook browser's rule, bioimnb.core.locations.order): a
    // sorted folder comes whole, in one response.
    this.sortBy = h(
      'select',
      { 'aria-label': 'Sort by', class: 'bioimnb-sort' },
      ...['name', 'kind', 'format', 'size'].map(k => h('option', { value: k }, k))
    );
    this.sortBy.addEventListener('change', () => this.go(this.locationId, this.path));
    this.direction = h('button', { title: 'Sort direction', 'aria-label': 'Sort direction' }, '▲');
    this.direction.addEventListener('click', () => {
      this.descending = !this.descending;
      this.direction.textContent = this.descending ? '▼' : '▲';
      void this.go(this.locationId, this.path);
    });
    this.crumbs = h('div', { class: 'bioimnb-crumbs' });
    this.status = h('div', { class: 'bioimnb-status' });
    this.error = h('div', { class: 'bioimnb-error', role: 'alert' });
    this.facts = h('div', { class: 'bioimnb-facts' });
    const source = new RestSource(() => this.view, (row, signal) => this.thumbOf(row, signal));
    this.list = new VirtualList(source, {
      onOpen: row => this.open(row),
      onSelect: (_names, focus) => this.showFacts(this.view.find(r => r.name === focus) ?? null)
    });
    const main = h('div', { class: 'bioimnb-main bioimnb-side-main' }, this.list.node);
    root.append(h('div', { class: 'bioimnb-bar' }, this.select, up, refresh), h('div', { class: 'bioimnb-bar' }, this.filter, this.sortBy, this.direction), this.crumbs, this.status, this.error, main, this.facts);
    this.node.appendChild(root);
    this.node.style.overflow = 'hidden';
    root.style.height = '100%';
    this.facts.style.borderLeft = 'none';
    this.facts.style.maxHeight = '40%';
  }

  async start(): Promise<void> {
    try {
      const data = await this.options.getJSON<{ locations: ILocationInfo[] }>('api/locations');
      this.locations = data.locations;
    } catch (reason) {
      this.locations = [{ id: 'root', name: 'Server root', kind: 'root', read_only: true }];
      this.error.textContent = String((reason as Error).message ?? reason);
    }
    this.select.replaceChildren(...this.locations.map(l => h('option', { value: l.id }, l.name)));
    await this.go('root', '');
  }

  private routeParams(path: string): URLSearchParams {
    const params = new URLSearchParams({ path });
    if (this.locationId !== 'root') {
      params.set('location', this.locationId);
    }
    return params;
  }

  async go(locationId: string, path: string): Promise<void> {
    this.generation += 1;
    const generation = this.generation;
    this.locationId = locationId;
    this.select.value = locationId;
    this.path = path;
    this.entries = [];
    this.view = [];
    this.error.textContent = '';
    this.showFacts(null);
    this.list.reset(0, false);
    this.drawCrumbs();
    this.node.dataset.location = locationId;
    this.node.dataset.path = path;
    this.node.dataset.complete = 'false';
    let token: string | null = null;
    try {
      do {
        const params = this.routeParams(path);
        params.set('page_size', String(PAGE));
        if (this.sortBy.value !== 'name' || this.descending) {
          params.set('sort', this.sortBy.value);
          params.set('descending', this.descending ? '1' : '0');
        }
        if (token) {
          params.set('page', token);
        }
        const page: IPage = await this.options.getJSON<IPage>(`api/ls?${params.toString()}`);
        if (generation !== this.generation) {
          return;
        }
        this.entries.push(...page.entries);
        this.recompute();
        token = page.next_page;
      } while (token);
    } catch (reason) {
      if (generation === this.generation) {
        this.error.textContent = String((reason as Error).message ?? reason);
      }
    }
    if (generation === this.generation) {
      this.node.dataset.complete = 'true';
      this.status.textContent = `${this.view.length.toLocaleString()} of ${this.entries.length.toLocaleString()}`;
    }
  }

  private recompute(): void {
    const needle = this.filter.value.trim().toLowerCase();
    const shown = needle ? this.entries.filter(e => e.name.toLowerCase().includes(needle)) : this.entries;
    this.view = shown.map((e, i) => ({ ...e, i }));
    this.list.reset(this.view.length, true);
    this.status.textContent = `${this.view.length.toLocaleString()} of ${this.entries.length.toLocaleString()}${this.node.dataset.complete === 'true' ? '' : ' · listing…'}`;
  }

  private drawCrumbs(): void {
    const parts = this.path ? this.path.split('/') : [];
    const name = this.locations.find(l => l.id === this.locationId)?.name ?? this.locationId;
    const links: HTMLElement[] = [];
    const add = (label: string, target: string): void => {
      const a = h('a', {}, label);
      a.addEventListener('click', () => this.go(this.locationId, target));
      if (links.length) {
        links.push(h('span', {}, ' › '));
      }
      links.push(a);
    };
    add(name, '');
    parts.forEach((p, i) => add(p, parts.slice(0, i + 1).join('/')));
    this.crumbs.replaceChildren(...links);
  }

  private entryPath(row: Row): string {
    return this.path ? `${this.path}/${row.name}` : row.name;
  }

  private async thumbOf(row: Row, signal: AbortSignal): Promise<Thumb> {
    const params = this.routeParams(this.entryPath(row));
    params.set('size', '80');
    const blob = await this.options.getBlob(`api/thumbnail?${params.toString()}`, { signal });
    return { url: URL.createObjectURL(blob) };
  }

  private open(row: Row): void {
    if (row.kind === 'folder') {
      void this.go(this.locationId, this.entryPath(row));
      return;
    }
    if (row.kind !== 'image') {
      return;
    }
    const isFolder = row.format === 'OME-Zarr' || /\.zarr$/i.test(row.name);
    this.options.openViewer(this.entryPath(row), isFolder, this.locationId === 'root' ? null : this.locationId);
  }

  private showFacts(row: Row | null): void {
    this.focus = row;
    this.facts.replaceChildren();
    if (!row) {
      return;
    }
    const path = this.entryPath(row);
    const buttons = h('div', { class: 'bioimnb-actions' });
    if (row.kind === 'image' && !row.error) {
      const open = h('button', { 'data-action': 'preview' }, 'Open in viewer');
      open.addEventListener('click', () => this.open(row));
      buttons.appendChild(open);
    }
    this.facts.append(buttons, factsTable({ ...row, loading: row.kind === 'image' }));
    if (row.kind !== 'image' || row.error) {
      this.facts.replaceChildren(buttons, factsTable(row as unknown as Record<string, unknown>));
      return;
    }
    this.options
      .getJSON<Record<string, unknown>>(`api/facts?${this.routeParams(path).toString()}`)
      .then(facts => {
        if (this.focus === row) {
          this.facts.replaceChildren(buttons, factsTable({ ...facts, name: row.name }));
        }
      })
      .catch(reason => {
        if (this.focus === row) {
          this.facts.replaceChildren(buttons, factsTable({ ...row, error: String((reason as Error).message ?? reason) }));
        }
      });
  }

  protected onAfterShow(): void {
    this.list.schedule();
  }

  dispose(): void {
    this.list.dispose();
    super.dispose();
  }
}
