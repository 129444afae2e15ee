/**
 * The viewer's CSS, injected once per document.  Kept in the module (not a
 * .css file) so the notebook widget bundle and the JupyterLab extension share
 * one copy.  JupyterLab theme variables are used with fallbacks, so the
 * viewer follows light/dark themes in Lab and still looks right elsewhere.
 */
const CSS = `
.bioimnb-viewer {
  --bv-bg: #111;
  --bv-panel: var(--jp-layout-color1, #fff);
  --bv-border: var(--jp-border-color2, #ccc);
  --bv-fg: var(--jp-ui-font-color1, #222);
  --bv-fg2: var(--jp-ui-font-color2, #555);
  --bv-accent: var(--jp-brand-color1, #1976d2);
  --bv-font: var(--jp-ui-font-family, system-ui, sans-serif);
  display: flex;
  flex-direction: row;
  box-sizing: border-box;
  width: 100%;
  min-height: 240px;
  border: 1px solid var(--bv-border);
  font-family: var(--bv-font);
  font-size: 12px;
  color: var(--bv-fg);
  background: var(--bv-panel);
  overflow: hidden;
  position: relative;
}
.bioimnb-viewer * { box-sizing: border-box; }
.bioimnb-stage {
  position: relative;
  flex: 1 1 auto;
  min-width: 120px;
  background: var(--bv-bg);
  overflow: hidden;
  cursor: grab;
  touch-action: none;
  user-select: none;
}
.bioimnb-stage.bioimnb-dragging { cursor: grabbing; }
.bioimnb-stage canvas.bioimnb-canvas {
  position: absolute; left: 0; top: 0; width: 100%; height: 100%; display: block;
}
.bioimnb-toolbar {
  position: absolute; left: 8px; top: 8px; display: flex; gap: 4px; z-index: 3;
}
.bioimnb-toolbar button, .bioimnb-panel button {
  font: inherit; font-size: 12px; min-width: 26px; height: 24px; padding: 0 6px;
  border: 1px solid var(--bv-border); border-radius: 3px; cursor: pointer;
  background: var(--jp-layout-color2, #eee); color: var(--bv-fg);
}
.bioimnb-toolbar button { background: rgba(30,30,30,0.75); color: #eee; border-color: #555; }
.bioimnb-toolbar button:hover { background: rgba(60,60,60,0.9); }
.bioimnb-overview {
  position: absolute; right: 8px; top: 8px; z-index: 2;
  border: 1px solid #777; background: #000; cursor: crosshair;
}
.bioimnb-scalebar {
  position: absolute; left: 10px; bottom: 26px; z-index: 2; color: #fff;
  font-size: 11px; text-shadow: 0 0 2px #000, 0 0 2px #000; pointer-events: none;
}
.bioimnb-scalebar .bioimnb-scalebar-bar {
  height: 4px; background: #fff; border: 1px solid #000; margin-top: 2px;
}
.bioimnb-status {
  position: absolute; left: 0; right: 0; bottom: 0; z-index: 2; height: 20px;
  padding: 2px 8px; background: rgba(0,0,0,0.6); color: #ddd; font-size: 11px;
  font-family: var(--jp-code-font-family, monospace);
  white-space: nowrap; overflow: hidden; text-overflow: ellipsis; pointer-events: none;
}
.bioimnb-loading {
  position: absolute; right: 8px; bottom: 26px; z-index: 2; color: #ccc; font-size: 11px;
  text-shadow: 0 0 2px #000; pointer-events: none;
}
.bioimnb-error {
  position: absolute; left: 50%; top: 50%; transform: translate(-50%, -50%);
  z-index: 5; max-width: 85%; padding: 12px 16px; border-radius: 4px;
  background: #fff3f3; color: #8a1010; border: 1px solid #e0a0a0;
  font-size: 13px; line-height: 1.4; white-space: pre-wrap; word-break: break-word;
  cursor: auto; user-select: text;
}
.bioimnb-error strong { display: block; margin-bottom: 4px; }
.bioimnb-banner {
  position: absolute; left: 8px; right: 8px; top: 40px; z-index: 4; padding: 4px 8px;
  background: rgba(140, 20, 20, 0.85); color: #fff; font-size: 12px; border-radius: 3px;
  white-space: nowrap; overflow: hidden; text-overflow: ellipsis;
}
.bioimnb-panel {
  flex: 0 0 240px; width: 240px; overflow-y: auto; padding: 8px;
  border-left: 1px solid var(--bv-border); background: var(--bv-panel);
}
.bioimnb-panel.bioimnb-collapsed, .bioimnb-panel:empty { display: none; }
.bioimnb-viewer:not([data-state="ready"]) .bioimnb-overview,
.bioimnb-viewer:not([data-state="ready"]) .bioimnb-status { display: none; }
.bioimnb-title { font-weight: 600; word-break: break-all; margin-bottom: 2px; }
.bioimnb-subtitle { color: var(--bv-fg2); margin-bottom: 8px; font-size: 11px; }
.bioimnb-section { margin: 8px 0; }
.bioimnb-section-title {
  font-weight: 600; color: var(--bv-fg2); text-transform: uppercase; font-size: 10px;
  letter-spacing: 0.05em; margin-bottom: 4px; display: flex; justify-content: space-between;
  align-items: center;
}
.bioimnb-row { display: flex; align-items: center; gap: 6px; margin: 3px 0; }
.bioimnb-row label { flex: 0 0 auto; }
.bioimnb-row input[type=range] { flex: 1 1 auto; min-width: 60px; margin: 0; }
.bioimnb-row select { flex: 1 1 auto; font: inherit; }
.bioimnb-num { flex: 0 0 48px; text-align: right; font-family: var(--jp-code-font-family, monospace); font-size: 11px; }
.bioimnb-channel { border-top: 1px solid var(--bv-border); padding: 4px 0; }
.bioimnb-channel-name { flex: 1 1 auto; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.bioimnb-channel input[type=color] { width: 26px; height: 20px; padding: 0; border: none; background: none; }
.bioimnb-hist { width: 100%; height: 36px; display: block; background: #222; border-radius: 2px; }
.bioimnb-small { font-size: 11px; color: var(--bv-fg2); }
`;

const STYLE_ID = 'bioimnb-viewer-style';

export function ensureStyles(doc: Document = document): void {
  if (doc.getElementById(STYLE_ID)) {
    return;
  }
  const style = doc.createElement('style');
  style.id = STYLE_ID;
  style.textContent = CSS;
  doc.head.appendChild(style);
}
