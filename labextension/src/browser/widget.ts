/**
 * The notebook storage browser's front end: an anywidget ES module (bundled by
 * esbuild into bioimnb/static/browser.js) over `bioimnb.widgets.browser_ui.BrowserPanel`.
 *
 * Navigation, sort and filter go to the kernel (messages or synced traits);
 * rows are asked for as they scroll into view ({type: "rows", id, start,
 * count} -> {type: "rows", id, rows}); thumbnails per visible image row
 * ({type: "thumb", name} -> {type: "thumb", name, summary} + a PNG buffer).
 * The kernel holds the storage options: no URL with credentials, key or secret
 * ever reaches this module, except what the user types into the credentials
 * form, which is sent once to the kernel and cleared.
 */
import type { AnyModel, AnyWidget, RenderProps } from '@anywidget/types';
import { ListingSource, Row, Thumb, VirtualList } from './listing';
import { factsTable, h, injectBrowserStyle } from './style';

interface Traits {
  location: string;
  crumbs: { label: string; index: number }[];
  can_up: boolean;
  can_back: boolean;
  total: number;
  loaded: number;
  complete: boolean;
  truncated: boolean;
  loading: boolean;
  version: number;
  error: string;
  sort_by: string;
  descending: boolean;
  filter_text: string;
  filter_kind: string;
  filter_format: string;
  formats: string[];
  selection: string[];
  focus: string;
  facts: Record<string, unknown>;
  actions: { name: string; label: string }[];
  remote: string;
  height: number;
}

type Model = AnyModel<Traits>;

class CommSource implements ListingSource {
  private next = 0;
  private pending = new Map<string, (rows: Row[]) => void>();
  private thumbWaiters = new Map<string, (t: Thumb) => void>();

  constructor(private readonly model: Model) {
    model.on('msg:custom', this.onMessage);
  }

  dispose(): void {
    this.model.off('msg:custom', this.onMessage);
  }

  rows(start: number, count: number): Promise<Row[]> {
    const id = `r${this.next++}`;
    return new Promise(resolve => {
      this.pending.set(id, resolve);
      this.model.send({ type: 'rows', id, start, count });
    });
  }

  thumb(row: Row): Promise<Thumb> {
    return new Promise(resolve => {
      this.thumbWaiters.set(row.name, resolve);
      this.model.send({ type: 'thumb', name: row.name });
    });
  }

  cancelThumb(row: Row): void {
    this.thumbWaiters.delete(row.name);
    this.model.send({ type: 'thumb-cancel', name: row.name });
  }

  private onMessage = (msg: any, buffers: DataView[] = []): void => {
    if (msg?.type === 'rows') {
      const done = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      done?.(msg.rows as Row[]);
    } else if (msg?.type === 'thumb') {
      const done = this.thumbWaiters.get(msg.name);
      this.thumbWaiters.delete(msg.name);
      let url: string | undefined;
      if (buffers.length > 0) {
        const b = buffers[0];
        const bytes = new Uint8Array(b.buffer, b.byteOffset, b.byteLength).slice();
        url = URL.createObjectURL(new Blob([bytes], { type: 'image/png' }));
      }
      done?.({ url, summary: msg.summary });
    }
  };
}

function render({ model, el }: RenderProps<Traits>): () => void {
  injectBrowserStyle();
  const m = model as Model;
  const source = new CommSource(m);
  const root = h('div', { class: 'bioimnb-browser' });
  el.appendChild(root);

  const send = (content: Record<string, unknown>): void => m.send(content);
  const button = (label: string, title: string, action: () => void): HTMLButtonElement => {
    const b = h('button', { title, 'aria-label': title }, label);
    b.addEventListener('click', action);
    return b;
  };
  const back = button('←', 'Back', () => send({ type: 'back' }));
  const up = button('↑', 'Up', () => send({ type: 'up' }));
  const refresh = button('⟳', 'Refresh', () => send({ type: 'refresh' }));
  const field = h('input', { type: 'text', class: 'bioimnb-location', 'aria-label': 'Location' });
  field.addEventListener('keydown', event => {
    if (event.key === 'Enter') {
      send({ type: 'go', url: field.value });
    }
  });
  const go = button('Go', 'Go to this location', () => send({ type: 'go', url: field.value }));
  const keyButton = button('🔑', 'Credentials', () => creds.classList.toggle('bioimnb-open'));
  const nav = h('div', { class: 'bioimnb-bar' }, back, up, refresh, field, go, keyButton);

  // Credentials: sent once to the kernel as a message (never state), then cleared.
  const keyField = h('input', { type: 'text', placeholder: 'access key', 'aria-label': 'Access key', autocomplete: 'off' });
  const secretField = h('input', { type: 'password', placeholder: 'secret key', 'aria-label': 'Secret key', autocomplete: 'off' });
  const endpointField = h('input', { type: 'text', placeholder: 'endpoint URL (optional)', 'aria-label': 'Endpoint URL' });
  const useCreds = button('Use', 'Use these credentials', () => {
    send({ type: 'credentials', key: keyField.value, secret: secretField.value, endpoint_url: endpointField.value });
    keyField.value = '';
    secretField.value = '';
    creds.classList.remove('bioimnb-open');
  });
  const creds = h('div', { class: 'bioimnb-credentials' }, keyField, secretField, endpointField, useCreds);

  const crumbs = h('div', { class: 'bioimnb-crumbs' });
  const filterText = h('input', { type: 'text', placeholder: 'filter by name', 'aria-label': 'Filter' });
  filterText.addEventListener('input', () => {
    m.set('filter_text', filterText.value);
    m.save_changes();
  });
  const select = (label: string, options: [string, string][]): HTMLSelectElement => {
    const s = h('select', { 'aria-label': label });
    for (const [value, text] of options) {
      s.appendChild(h('option', { value }, text));
    }
    return s;
  };
  const kind = select('Kind', [['', 'any kind'], ['image', 'images'], ['folder', 'folders'], ['file', 'files']]);
  kind.addEventListener('change', () => {
    m.set('filter_kind', kind.value);
    m.save_changes();
  });
  const format = select('Format', [['', 'any format']]);
  format.addEventListener('change', () => {
    m.set('filter_format', format.value);
    m.save_changes();
  });
  const sortBy = select('Sort by', [['name', 'name'], ['kind', 'kind'], ['format', 'format'], ['size', 'size']]);
  sortBy.addEventListener('change', () => {
    m.set('sort_by', sortBy.value);
    m.save_changes();
  });
  const direction = button('▲', 'Sort direction', () => {
    m.set('descending', !m.get('descending'));
    m.save_changes();
  });
  const tools = h('div', { class: 'bioimnb-bar' }, filterText, kind, format, sortBy, direction);
  const status = h('div', { class: 'bioimnb-status' });
  const error = h('div', { class: 'bioimnb-error', role: 'alert' });

  const list = new VirtualList(source, {
    onOpen: row => send({ type: 'open', name: row.name }),
    onSelect: (names, focus) => {
      m.set('selection', names);
      m.set('focus', focus);
      m.save_changes();
    }
  });
  const facts = h('div', { class: 'bioimnb-facts' });
  const main = h('div', { class: 'bioimnb-main' }, list.node, facts);
  root.append(nav, creds, crumbs, tools, status, error, main);

  const sync = (): void => {
    field.value = m.get('location');
    back.disabled = !m.get('can_back');
    up.disabled = !m.get('can_up');
    keyButton.style.display = m.get('remote') === 's3' ? '' : 'none';
    const parts: HTMLElement[] = [];
    m.get('crumbs').forEach((c, i) => {
      const a = h('a', { 'data-index': String(c.index) }, c.label);
      a.addEventListener('click', () => send({ type: 'crumb', index: c.index }));
      if (i > 0) {
        parts.push(h('span', {}, ' › '));
      }
      parts.push(a);
    });
    crumbs.replaceChildren(...parts);
    main.style.height = `${Number(m.get('height')) || 360}px`;
  };
  const syncStatus = (): void => {
    const total = m.get('total');
    const loaded = m.get('loaded');
    const parts = [`${total.toLocaleString()} shown`];
    if (total !== loaded) {
      parts.push(`${loaded.toLocaleString()} listed`);
    }
    if (m.get('loading')) {
      parts.push('listing…');
    }
    if (m.get('truncated')) {
      parts.push('(folder too large: listing stopped)');
    }
    status.textContent = parts.join(' · ');
    root.dataset.total = String(total);
    root.dataset.loaded = String(loaded);
    root.dataset.complete = String(m.get('complete'));
    error.textContent = m.get('error');
    direction.textContent = m.get('descending') ? '▼' : '▲';
    sortBy.value = m.get('sort_by');
    kind.value = m.get('filter_kind');
    if (filterText.value !== m.get('filter_text') && document.activeElement !== filterText) {
      filterText.value = m.get('filter_text');
    }
    const formats = m.get('formats');
    if (format.options.length !== formats.length + 1) {
      format.replaceChildren(h('option', { value: '' }, 'any format'), ...formats.map(f => h('option', { value: f }, f)));
    }
    format.value = m.get('filter_format');
  };
  const syncFacts = (): void => {
    const data = m.get('facts');
    const actions = m.get('actions');
    facts.replaceChildren();
    if (actions.length) {
      const bar = h('div', { class: 'bioimnb-actions' });
      for (const a of actions) {
        const b = button(a.label, a.label, () => send({ type: 'action', name: a.name }));
        b.dataset.action = a.name;
        bar.appendChild(b);
      }
      facts.appendChild(bar);
    }
    if (data && Object.keys(data).length) {
      facts.appendChild(factsTable(data));
    }
  };
  let version = -1;
  let shownLocation = '';
  const onVersion = (): void => {
    const v = m.get('version');
    if (v !== version) {
      version = v;
      const location = m.get('location');
      list.reset(m.get('total'), location === shownLocation);
      shownLocation = location;
    }
  };
  const onTotal = (): void => list.setTotal(m.get('total'));
  const onSelection = (): void => list.setSelection(m.get('selection'));

  sync();
  syncStatus();
  syncFacts();
  shownLocation = m.get('location');
  onVersion();
  m.on('change:location', sync);
  m.on('change:crumbs', sync);
  m.on('change:can_up', sync);
  m.on('change:can_back', sync);
  m.on('change:remote', sync);
  m.on('change:height', sync);
  for (const name of ['total', 'loaded', 'loading', 'complete', 'truncated', 'error', 'descending', 'sort_by', 'filter_kind', 'filter_format', 'filter_text', 'formats']) {
    m.on(`change:${name}`, syncStatus);
  }
  m.on('change:facts', syncFacts);
  m.on('change:actions', syncFacts);
  m.on('change:version', onVersion);
  m.on('change:total', onTotal);
  m.on('change:selection', onSelection);
  return () => {
    list.dispose();
    source.dispose();
  };
}

const widget: AnyWidget<Traits> = { render };

export default widget;
