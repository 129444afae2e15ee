/**
 * Styles of the storage browser (notebook widget and side panel), injected at
 * run time so the widget bundle needs no separate CSS file.
 */
const CSS = `
.bioimnb-browser { font-family: var(--jp-ui-font-family, sans-serif); font-size: 12px;
  color: var(--jp-ui-font-color1, #222); border: 1px solid var(--jp-border-color2, #ddd);
  display: flex; flex-direction: column; min-height: 0; }
.bioimnb-browser button { cursor: pointer; }
.bioimnb-bar { display: flex; gap: 4px; align-items: center; padding: 4px; flex-wrap: wrap;
  border-bottom: 1px solid var(--jp-border-color2, #ddd); }
.bioimnb-bar input[type=text], .bioimnb-bar input[type=password] { flex: 1 1 120px; min-width: 80px; }
.bioimnb-crumbs { display: flex; flex-wrap: wrap; gap: 2px; padding: 2px 4px; }
.bioimnb-crumbs a { cursor: pointer; color: var(--jp-content-link-color, #1976d2); }
.bioimnb-status { padding: 2px 6px; color: var(--jp-ui-font-color2, #666); }
.bioimnb-error { padding: 4px 6px; color: var(--jp-error-color1, #b00); background: var(--jp-error-color3, #fdd); white-space: pre-wrap; }
.bioimnb-error:empty { display: none; }
.bioimnb-main { display: flex; min-height: 0; flex: 1 1 auto; }
.bioimnb-list { overflow-y: auto; position: relative; flex: 1 1 60%; outline: none; }
.bioimnb-list-spacer { position: relative; }
.bioimnb-list-rows { position: absolute; left: 0; right: 0; top: 0; }
.bioimnb-row { display: grid; grid-template-columns: 44px minmax(80px, 2fr) minmax(60px, 1fr) minmax(60px, 1.4fr) 64px;
  align-items: center; gap: 6px; padding: 0 4px; box-sizing: border-box; cursor: default;
  border-bottom: 1px solid var(--jp-border-color3, #eee); overflow: hidden; white-space: nowrap; }
.bioimnb-row > div { overflow: hidden; text-overflow: ellipsis; }
.bioimnb-row.bioimnb-selected { background: var(--jp-brand-color3, #bbdefb); }
.bioimnb-row.bioimnb-broken .bioimnb-format, .bioimnb-row.bioimnb-broken .bioimnb-dims { color: var(--jp-error-color1, #b00); }
.bioimnb-row.bioimnb-incomplete .bioimnb-format { color: var(--jp-warn-color1, #b60); }
.bioimnb-thumb { width: 40px; height: 40px; display: flex; align-items: center; justify-content: center; font-size: 20px; }
.bioimnb-thumb img { max-width: 40px; max-height: 40px; image-rendering: pixelated; }
.bioimnb-size { text-align: right; color: var(--jp-ui-font-color2, #666); }
.bioimnb-dims { color: var(--jp-ui-font-color2, #666); }
.bioimnb-facts { flex: 0 0 35%; overflow: auto; padding: 6px; border-left: 1px solid var(--jp-border-color2, #ddd); }
.bioimnb-facts:empty { display: none; }
.bioimnb-facts table { border-collapse: collapse; }
.bioimnb-facts td { padding: 1px 4px; vertical-align: top; }
.bioimnb-facts td:first-child { color: var(--jp-ui-font-color2, #666); }
.bioimnb-actions { display: flex; gap: 4px; flex-wrap: wrap; padding: 4px 0; }
.bioimnb-credentials { display: none; gap: 4px; padding: 4px; flex-wrap: wrap; }
.bioimnb-credentials.bioimnb-open { display: flex; }
`;

const STYLE_ID = 'bioimnb-browser-style';

export function injectBrowserStyle(doc: Document = document): void {
  if (doc.getElementById(STYLE_ID)) {
    return;
  }
  const style = doc.createElement('style');
  style.id = STYLE_ID;
  style.textContent = CSS;
  doc.head.appendChild(style);
}

/** A small DOM helper: an element with a class, text and attributes. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') {
      el.className = v;
    } else {
      el.setAttribute(k, v);
    }
  }
  el.append(...children);
  return el;
}

/** The facts of an image (as `ImageFacts.to_dict()` or a listing entry) as a table. */
export function factsTable(facts: Record<string, unknown>): HTMLTableElement {
  const table = h('table', { class: 'bioimnb-facts-table' });
  const add = (label: string, value: unknown): void => {
    if (value === null || value === undefined || value === '') {
      return;
    }
    table.appendChild(h('tr', {}, h('td', {}, label), h('td', {}, String(value))));
  };
  add('name', facts.name);
  add('kind', facts.kind);
  add('format', facts.format);
  add('reader', facts.reader);
  add('error', facts.error);
  add('incomplete', facts.incomplete ? 'yes: the conversion has not finished' : facts.kind === 'image' ? 'no' : '');
  add('NGFF version', facts.ngff_version);
  add('size', typeof facts.bytes === 'number' ? facts.bytes : facts.size);
  add('files', facts.files);
  const scenes = (facts.scenes as Record<string, unknown>[] | undefined) ?? [];
  scenes.slice(0, 4).forEach((scene, i) => {
    const prefix = scenes.length > 1 ? `scene ${i}: ` : '';
    add(`${prefix}axes`, scene.axes);
    add(`${prefix}shape`, Array.isArray(scene.shape) ? (scene.shape as number[]).join(' x ') : scene.shape);
    add(`${prefix}dtype`, scene.dtype);
    const levels = scene.levels as unknown[] | undefined;
    add(`${prefix}levels`, Array.isArray(levels) ? levels.length : levels);
    const px = scene.physical_size_um as Record<string, unknown> | undefined;
    if (px && typeof px === 'object') {
      const parts = Object.entries(px)
        .filter(([, v]) => v !== null && v !== undefined)
        .map(([k, v]) => `${k} ${typeof v === 'object' ? JSON.stringify(v) : v}`);
      add(`${prefix}pixel size (µm)`, parts.join(', '));
    }
    const channels = scene.channels as (string | null)[] | undefined;
    if (Array.isArray(channels)) {
      const names = channels.slice(0, 20).map((c, j) => c || `C${j}`);
      add(`${prefix}channels`, `${channels.length}: ${names.join(', ')}${channels.length > 20 ? ', …' : ''}`);
    }
  });
  add('acquired', facts.acquired);
  add('instrument', facts.instrument);
  add('objective', facts.objective);
  add('metadata completeness', facts.completeness);
  if (facts.loading) {
    add('', 'reading the headers…');
  }
  return table;
}
