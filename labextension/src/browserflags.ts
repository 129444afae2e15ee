/**
 * What bioimnb knows about the entries of JupyterLab's file browser: which folders are images
 * (an OME-Zarr recognised by its metadata, not its name), which conversions are incomplete and
 * which image files cannot be read.  The server's classification (`api/ls`) is the one source;
 * this module only marks the listing's rows with it:
 *
 * - `data-bioimnb-kind="image"` on rows bioimnb opens (folders included);
 * - class `bioimnb-incomplete` and a tooltip on a conversion that has not finished;
 * - class `bioimnb-error` and the reason as tooltip on an image that cannot be read.
 *
 * JupyterLab rewrites rows when it refreshes them, so the marks are re-applied after every
 * change of the listing's DOM (a MutationObserver), from the last answer for that folder.
 */
import { FileBrowser } from '@jupyterlab/filebrowser';

export interface IListingEntry {
  name: string;
  path: string;
  kind: 'folder' | 'image' | 'file';
  format: string | null;
  incomplete: boolean;
  error: string | null;
}

export interface IListingPage {
  location: string;
  entries: IListingEntry[];
  next_page: string | null;
}

export type ListFolder = (path: string) => Promise<IListingPage>;

const INCOMPLETE = 'bioimnb-incomplete';
const ERROR = 'bioimnb-error';

/** The browser's current folder, as the server's root-relative path (no drive prefix). */
function folderOf(browser: FileBrowser): string {
  const path = browser.model.path;
  const colon = path.indexOf(':');
  return colon >= 0 && !path.slice(0, colon).includes('/') ? path.slice(colon + 1) : path;
}

export class BrowserFlags {
  private entries = new Map<string, IListingEntry>();
  private folder: string | null = null;
  private observer: MutationObserver;
  private pending = 0;

  constructor(
    readonly browser: FileBrowser,
    private readonly list: ListFolder
  ) {
    this.observer = new MutationObserver(() => this.apply());
    this.observer.observe(browser.node, { childList: true, subtree: true });
    browser.model.pathChanged.connect(() => void this.refresh());
    browser.model.refreshed.connect(() => void this.refresh());
    browser.disposed.connect(() => this.observer.disconnect());
    void this.refresh();
  }

  /** The server's entry for a name in the current folder (undefined until it answered). */
  entry(name: string): IListingEntry | undefined {
    return this.entries.get(name);
  }

  async refresh(): Promise<void> {
    const folder = folderOf(this.browser);
    const ticket = ++this.pending;
    let page: IListingPage;
    try {
      page = await this.list(folder);
    } catch {
      return; // not a folder bioimnb may list (hidden, outside the root): no marks
    }
    if (ticket !== this.pending) {
      return; // a newer request owns the marks
    }
    this.folder = folder;
    this.entries = new Map(page.entries.map(e => [e.name, e]));
    this.apply();
  }

  private apply(): void {
    if (this.folder !== folderOf(this.browser)) {
      return;
    }
    const rows = this.browser.node.querySelectorAll<HTMLElement>('.jp-DirListing-item');
    rows.forEach(row => {
      const name = row.querySelector('.jp-DirListing-itemText')?.textContent ?? '';
      const entry = this.entries.get(name);
      const kind = entry?.kind === 'image' ? 'image' : '';
      if ((row.dataset.bioimnbKind ?? '') !== kind) {
        if (kind) {
          row.dataset.bioimnbKind = kind;
        } else {
          delete row.dataset.bioimnbKind;
        }
      }
      const incomplete = Boolean(entry?.incomplete);
      const error = entry?.error ?? '';
      row.classList.toggle(INCOMPLETE, incomplete);
      row.classList.toggle(ERROR, Boolean(error));
      const note = incomplete
        ? 'bioimnb: an unfinished conversion (finish it with `bioimnb convert SRC DST --resume`)'
        : error
          ? `bioimnb: cannot be read: ${error}`
          : '';
      if ((row.dataset.bioimnbNote ?? '') !== note) {
        row.dataset.bioimnbNote = note;
        const text = row.querySelector<HTMLElement>('.jp-DirListing-itemText');
        if (text) {
          text.title = note ? `${name}\n${note}` : name;
        }
      }
    });
  }
}
