/**
 * The viewer's side panel: scene picker, T/Z sliders, per-channel visibility,
 * colour, contrast (sliders, auto, histogram) and label overlay toggles.
 * It only reports user actions to its owner; the owner owns the state.
 */
import {
  dtypeRange,
  formatValue,
  histogramPercentiles,
  isIntegerDtype,
  normColor,
  roundTo,
  sceneName
} from './format';
import { ChannelView, Histogram, ImageInfo, ViewState } from './types';

export interface ControlsActions {
  scene(index: number): void;
  t(value: number): void;
  z(value: number): void;
  /** `final` is false while a slider is being dragged. */
  channel(index: number, patch: Partial<ChannelView>, final: boolean): void;
  label(name: string, on: boolean): void;
  /** Opacity of the label overlays, 0..1 (only offered when `labelOpacity` is set). */
  labelOpacity?(value: number): void;
  /** Histogram of one channel, fetched on demand. */
  histogram(channel: number): Promise<Histogram>;
}

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: Array<Node | string>
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'class') {
      node.className = value;
    } else {
      node.setAttribute(key, value);
    }
  }
  for (const child of children) {
    node.append(child);
  }
  return node;
}

/** Keys a focused range input or select acts on (kept from the host page's shortcuts). */
/** Histograms of this many first channels load with the panel; others when a channel is shown. */
const EAGER_HISTOGRAMS = 16;

const CONTROL_KEYS = new Set([
  'ArrowLeft',
  'ArrowRight',
  'ArrowUp',
  'ArrowDown',
  'Home',
  'End',
  'PageUp',
  'PageDown'
]);

interface ChannelWidgets {
  visible: HTMLInputElement;
  color: HTMLInputElement;
  min: HTMLInputElement;
  max: HTMLInputElement;
  minText: HTMLSpanElement;
  maxText: HTMLSpanElement;
  hist: HTMLCanvasElement;
  histogram: Histogram | null;
  range: [number, number];
}

export class ControlsPanel {
  readonly node: HTMLDivElement;
  private info: ImageInfo | null = null;
  private state: ViewState | null = null;
  private channels: ChannelWidgets[] = [];
  private sceneSelect: HTMLSelectElement | null = null;
  private tSlider: HTMLInputElement | null = null;
  private zSlider: HTMLInputElement | null = null;
  private tText: HTMLSpanElement | null = null;
  private zText: HTMLSpanElement | null = null;
  private labelBoxes = new Map<string, HTMLInputElement>();
  private opacitySlider: HTMLInputElement | null = null;
  private opacityText: HTMLSpanElement | null = null;
  private histScene = -1;
  /** Channels whose histogram was asked for (since the last build). */
  private readonly histRequested = new Set<number>();

  constructor(private readonly actions: ControlsActions) {
    this.node = el('div', { class: 'bioimnb-panel' });
    // In a notebook the panel sits in a cell's output, where JupyterLab's command-mode
    // bindings take the arrow keys (ArrowUp/Down select another cell, ArrowLeft/Right fold
    // headings) before a focused slider or the scene picker sees them.  JupyterLab handles
    // keydown when it bubbles to the document, so the keys the form controls use stop here.
    this.node.addEventListener('keydown', event => {
      const target = event.target as HTMLElement | null;
      if (
        CONTROL_KEYS.has(event.key) &&
        !event.ctrlKey &&
        !event.metaKey &&
        !event.altKey &&
        (target instanceof HTMLInputElement || target instanceof HTMLSelectElement)
      ) {
        event.stopPropagation();
      }
    });
  }

  /** Rebuild for a (new) image or scene. */
  build(info: ImageInfo, state: ViewState): void {
    this.info = info;
    this.state = state;
    this.node.textContent = '';
    this.channels = [];
    this.labelBoxes.clear();
    this.opacitySlider = this.opacityText = null;
    this.sceneSelect = this.tSlider = this.zSlider = null;

    const level0 = info.levels[0]?.shape ?? [0, 0];
    this.node.append(
      el('div', { class: 'bioimnb-title', title: info.source }, info.source),
      el(
        'div',
        { class: 'bioimnb-subtitle' },
        `${info.format} · ${level0[1]}×${level0[0]} px · ${info.dtype} · ` +
          `${info.levels.length} level${info.levels.length === 1 ? '' : 's'}`
      )
    );

    if (info.scenes.length > 1) {
      const select = el('select', { 'aria-label': 'Scene', class: 'bioimnb-scene' });
      info.scenes.forEach((scene, i) => {
        select.append(el('option', { value: String(i) }, `${i}: ${sceneName(scene, i)}`));
      });
      select.value = String(state.scene);
      select.addEventListener('change', () => this.actions.scene(Number(select.value)));
      this.sceneSelect = select;
      this.node.append(this.section('Scene', el('div', { class: 'bioimnb-row' }, select)));
    }

    const planes: HTMLElement[] = [];
    if (info.size_t > 1) {
      const [row, slider, text] = this.slider('T', info.size_t - 1, state.t, v => this.actions.t(v));
      this.tSlider = slider;
      this.tText = text;
      planes.push(row);
    }
    if (info.size_z > 1) {
      const [row, slider, text] = this.slider('Z', info.size_z - 1, state.z, v => this.actions.z(v));
      this.zSlider = slider;
      this.zText = text;
      planes.push(row);
    }
    if (planes.length) {
      this.node.append(this.section('Plane', ...planes));
    }

    const channelNodes = info.channels.map((_, i) => this.channelBlock(info, state, i));
    const listed = info.channels.length;
    const title =
      info.size_c !== undefined && info.size_c > listed ? `Channels (first ${listed} of ${info.size_c})` : 'Channels';
    this.node.append(this.section(title, ...channelNodes));

    if (info.labels.length) {
      const rows: HTMLElement[] = info.labels.map(name => {
        const box = el('input', { type: 'checkbox', 'aria-label': `Label ${name}` });
        box.checked = state.labels.includes(name);
        box.addEventListener('change', () => this.actions.label(name, box.checked));
        this.labelBoxes.set(name, box);
        return el('label', { class: 'bioimnb-row' }, box, name);
      });
      const setOpacity = this.actions.labelOpacity;
      if (setOpacity) {
        const percent = Math.round(100 * (state.label_opacity ?? 0.5));
        const slider = el('input', {
          type: 'range',
          min: '0',
          max: '100',
          step: '5',
          'aria-label': 'Label opacity'
        });
        slider.value = String(percent);
        const text = el('span', { class: 'bioimnb-small' }, `${percent} %`);
        slider.addEventListener('input', () => {
          text.textContent = `${slider.value} %`;
        });
        slider.addEventListener('change', () => setOpacity(Number(slider.value) / 100));
        this.opacitySlider = slider;
        this.opacityText = text;
        rows.push(el('div', { class: 'bioimnb-row' }, el('label', {}, 'opacity'), slider, text));
      }
      this.node.append(this.section('Labels', ...rows));
    }

    if (this.histScene !== state.scene) {
      this.histScene = state.scene;
    }
    // Histograms of the first channels and of the visible ones now; of the others when shown
    // (an image may have hundreds of channels: one request each would tie up the server).
    this.histRequested.clear();
    info.channels.forEach((_, i) => {
      if (i < EAGER_HISTOGRAMS || state.channels.some(c => c.index === i && c.visible)) {
        this.loadHistogram(i, state.scene);
      }
    });
  }

  /** Reflect a state change made elsewhere (Python, another view, auto contrast). */
  update(state: ViewState): void {
    this.state = state;
    if (!this.info) {
      return;
    }
    if (this.sceneSelect) {
      this.sceneSelect.value = String(state.scene);
    }
    if (this.tSlider && this.tText) {
      this.tSlider.value = String(state.t);
      this.tText.textContent = String(state.t);
    }
    if (this.zSlider && this.zText) {
      this.zSlider.value = String(state.z);
      this.zText.textContent = String(state.z);
    }
    for (const view of state.channels) {
      const w = this.channels[view.index];
      if (!w) {
        continue;
      }
      w.visible.checked = view.visible;
      w.color.value = '#' + normColor(view.color).toLowerCase();
      this.widen(w, view);
      if (document.activeElement !== w.min) {
        w.min.value = String(view.min);
      }
      if (document.activeElement !== w.max) {
        w.max.value = String(view.max);
      }
      w.minText.textContent = formatValue(view.min);
      w.maxText.textContent = formatValue(view.max);
      this.drawHistogram(view.index);
    }
    for (const [name, box] of this.labelBoxes) {
      box.checked = state.labels.includes(name);
    }
    if (this.opacitySlider && document.activeElement !== this.opacitySlider) {
      const percent = Math.round(100 * (state.label_opacity ?? 0.5));
      this.opacitySlider.value = String(percent);
      if (this.opacityText) {
        this.opacityText.textContent = `${percent} %`;
      }
    }
  }

  /** Percentile contrast of one channel from its histogram (null until loaded). */
  autoLimits(channel: number): [number, number] | null {
    const w = this.channels[channel];
    if (!w?.histogram || !this.info) {
      return null;
    }
    const limits = histogramPercentiles(w.histogram.edges, w.histogram.counts);
    if (!limits) {
      return null;
    }
    const integer = isIntegerDtype(this.info.dtype);
    return [roundTo(limits[0], integer), roundTo(limits[1], integer)];
  }

  private section(title: string, ...children: HTMLElement[]): HTMLElement {
    return el(
      'div',
      { class: 'bioimnb-section' },
      el('div', { class: 'bioimnb-section-title' }, title),
      ...children
    );
  }

  private slider(
    name: string,
    max: number,
    value: number,
    onInput: (v: number) => void
  ): [HTMLElement, HTMLInputElement, HTMLSpanElement] {
    const slider = el('input', {
      type: 'range',
      min: '0',
      max: String(max),
      step: '1',
      'aria-label': name
    });
    slider.value = String(value);
    const text = el('span', { class: 'bioimnb-num' }, String(value));
    slider.addEventListener('input', () => {
      text.textContent = slider.value;
      onInput(Number(slider.value));
    });
    const row = el('div', { class: 'bioimnb-row' }, el('label', {}, name), slider, text);
    return [row, slider, text];
  }

  private channelBlock(info: ImageInfo, state: ViewState, index: number): HTMLElement {
    const meta = info.channels[index];
    const view = state.channels.find(c => c.index === index) ?? {
      index,
      visible: true,
      color: meta.color,
      min: 0,
      max: 1
    };
    const name = meta.name || `Channel ${index}`;
    const visible = el('input', { type: 'checkbox', 'aria-label': `Show ${name}` });
    visible.checked = view.visible;
    visible.addEventListener('change', () => {
      if (visible.checked) {
        this.loadHistogram(index, state.scene);
      }
      this.actions.channel(index, { visible: visible.checked }, true);
    });
    const color = el('input', { type: 'color', 'aria-label': `Colour of ${name}` });
    color.value = '#' + normColor(view.color).toLowerCase();
    color.hidden = info.rgb; // RGB samples keep their own colours
    color.addEventListener('input', () =>
      this.actions.channel(index, { color: normColor(color.value) }, false)
    );
    color.addEventListener('change', () =>
      this.actions.channel(index, { color: normColor(color.value) }, true)
    );
    const auto = el('button', { type: 'button', title: 'Auto contrast from the histogram' }, 'auto');
    auto.addEventListener('click', () => {
      const limits = this.autoLimits(index);
      const fallback = info.default_view.channels.find(c => c.index === index);
      const [min, max] = limits ?? (fallback ? [fallback.min, fallback.max] : [view.min, view.max]);
      this.actions.channel(index, { min, max }, true);
    });

    const integer = isIntegerDtype(info.dtype);
    const step = integer ? '1' : 'any';
    const min = el('input', { type: 'range', step, 'aria-label': `${name} minimum` });
    const max = el('input', { type: 'range', step, 'aria-label': `${name} maximum` });
    const minText = el('span', { class: 'bioimnb-num' }, formatValue(view.min));
    const maxText = el('span', { class: 'bioimnb-num' }, formatValue(view.max));
    const hist = el('canvas', { class: 'bioimnb-hist', width: '216', height: '36' });

    const base = dtypeRange(info.dtype) ?? [
      Math.min(0, view.min),
      Math.max(view.max * 2, view.min + 1)
    ];
    const w: ChannelWidgets = {
      visible,
      color,
      min,
      max,
      minText,
      maxText,
      hist,
      histogram: null,
      range: [base[0], base[1]]
    };
    this.channels[index] = w;
    this.widen(w, view);
    min.value = String(view.min);
    max.value = String(view.max);

    const onSlide = (which: 'min' | 'max', final: boolean): void => {
      let lo = Number(min.value);
      let hi = Number(max.value);
      if (lo > hi) {
        if (which === 'min') {
          hi = lo;
          max.value = String(hi);
        } else {
          lo = hi;
          min.value = String(lo);
        }
      }
      minText.textContent = formatValue(lo);
      maxText.textContent = formatValue(hi);
      this.actions.channel(index, { min: roundTo(lo, integer), max: roundTo(hi, integer) }, final);
    };
    min.addEventListener('input', () => onSlide('min', false));
    max.addEventListener('input', () => onSlide('max', false));
    min.addEventListener('change', () => onSlide('min', true));
    max.addEventListener('change', () => onSlide('max', true));

    const block = el(
      'div',
      { class: 'bioimnb-channel', 'data-channel': String(index) },
      el('div', { class: 'bioimnb-row' }, visible, el('span', { class: 'bioimnb-channel-name', title: name }, name), color, auto),
      hist,
      el('div', { class: 'bioimnb-row' }, el('label', { class: 'bioimnb-small' }, 'min'), min, minText),
      el('div', { class: 'bioimnb-row' }, el('label', { class: 'bioimnb-small' }, 'max'), max, maxText)
    );
    return block;
  }

  /** Make the slider range cover the current limits. */
  private widen(w: ChannelWidgets, view: ChannelView): void {
    const lo = Math.min(w.range[0], view.min);
    const hi = Math.max(w.range[1], view.max);
    w.range = [lo, hi];
    for (const input of [w.min, w.max]) {
      input.min = String(lo);
      input.max = String(hi);
    }
  }

  private loadHistogram(index: number, scene: number): void {
    if (this.histRequested.has(index)) {
      return;
    }
    this.histRequested.add(index);
    this.actions
      .histogram(index)
      .then(hist => {
        const w = this.channels[index];
        if (!w || this.state?.scene !== scene || !hist.edges?.length) {
          return;
        }
        w.histogram = hist;
        w.visible.closest<HTMLElement>('.bioimnb-channel')?.setAttribute('data-histogram', 'loaded');
        // Sliders span the data (with the current limits), not the whole dtype.
        const view = this.state.channels.find(c => c.index === index);
        const lo = hist.edges[0];
        const hi = hist.edges[hist.edges.length - 1];
        if (hi > lo) {
          w.range = [Math.min(lo, view?.min ?? lo), Math.max(hi, view?.max ?? hi)];
          for (const input of [w.min, w.max]) {
            input.min = String(w.range[0]);
            input.max = String(w.range[1]);
          }
          if (view) {
            w.min.value = String(view.min);
            w.max.value = String(view.max);
          }
        }
        this.drawHistogram(index);
      })
      .catch(() => {
        /* a histogram is a nicety: the sliders work without it */
      });
  }

  private drawHistogram(index: number): void {
    const w = this.channels[index];
    const ctx = w?.hist.getContext('2d');
    if (!w || !ctx) {
      return;
    }
    const { width, height } = w.hist;
    ctx.clearRect(0, 0, width, height);
    const view = this.state?.channels.find(c => c.index === index);
    const color = '#' + normColor(view?.color ?? 'FFFFFF');
    const [lo, hi] = w.range;
    const xOf = (v: number): number => ((v - lo) / Math.max(1e-12, hi - lo)) * width;
    const hist = w.histogram;
    if (hist && hist.counts.length) {
      const peak = Math.max(...hist.counts.map(c => Math.log1p(c)), 1e-9);
      ctx.fillStyle = color;
      ctx.globalAlpha = 0.8;
      for (let i = 0; i < hist.counts.length; i++) {
        const x0 = xOf(hist.edges[i]);
        const x1 = xOf(hist.edges[i + 1]);
        const h = (Math.log1p(hist.counts[i]) / peak) * (height - 2);
        ctx.fillRect(x0, height - h, Math.max(1, x1 - x0), h);
      }
      ctx.globalAlpha = 1;
    }
    if (view) {
      ctx.strokeStyle = '#888';
      ctx.lineWidth = 1;
      for (const v of [view.min, view.max]) {
        const x = Math.round(xOf(v)) + 0.5;
        ctx.beginPath();
        ctx.moveTo(x, 0);
        ctx.lineTo(x, height);
        ctx.stroke();
      }
    }
  }
}
