/** Small pure helpers: numbers, colours, scale bar lengths. */

/** "RRGGBB" (any case, with or without '#') -> "RRGGBB" upper case; bad input -> "FFFFFF". */
export function normColor(color: string | undefined | null): string {
  const hex = (color ?? '').replace(/^#/, '').trim();
  if (/^[0-9a-fA-F]{6}$/.test(hex)) {
    return hex.toUpperCase();
  }
  if (/^[0-9a-fA-F]{3}$/.test(hex)) {
    return hex
      .split('')
      .map(c => c + c)
      .join('')
      .toUpperCase();
  }
  return 'FFFFFF';
}

/** A compact display of a pixel value or contrast limit. */
export function formatValue(value: number | null | undefined): string {
  if (value === null || value === undefined || Number.isNaN(value)) {
    return '–';
  }
  if (Number.isInteger(value)) {
    return String(value);
  }
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e5)) {
    return value.toExponential(2);
  }
  return value.toPrecision(4).replace(/\.?0+$/, '');
}

/** The largest 1/2/5 x 10^n not above `x` (x > 0). */
export function niceBelow(x: number): number {
  const exp = Math.floor(Math.log10(x));
  const base = Math.pow(10, exp);
  for (const m of [5, 2, 1]) {
    if (m * base <= x) {
      return m * base;
    }
  }
  return base;
}

/** A length in micrometres as "250 nm", "20 µm", "1.5 mm". */
export function formatLength(um: number): string {
  if (um < 1) {
    return `${+(um * 1000).toPrecision(3)} nm`;
  }
  if (um >= 1000) {
    return `${+(um / 1000).toPrecision(3)} mm`;
  }
  return `${+um.toPrecision(3)} µm`;
}

/** Scale bar for `umPerPx` micrometres per screen pixel: [length in µm, width in px]. */
export function scaleBar(umPerPx: number, targetPx = 100): [number, number] {
  const um = niceBelow(umPerPx * targetPx);
  return [um, um / umPerPx];
}

/** The natural value range of a numpy dtype name, when it has one. */
export function dtypeRange(dtype: string): [number, number] | null {
  const m = /^(u?int)(8|16|32|64)$/.exec(dtype.replace(/^[<>|=]/, ''));
  if (m) {
    const bits = Math.min(Number(m[2]), 32);
    return m[1] === 'uint'
      ? [0, Math.pow(2, bits) - 1]
      : [-Math.pow(2, bits - 1), Math.pow(2, bits - 1) - 1];
  }
  if (dtype === 'bool') {
    return [0, 1];
  }
  return null;
}

export function isIntegerDtype(dtype: string): boolean {
  return /int|bool/.test(dtype);
}

/** Display value of a contrast limit on a slider step. */
export function roundTo(value: number, integer: boolean): number {
  return integer ? Math.round(value) : +value.toPrecision(6);
}

/** Percentile limits from a histogram: [lo, hi] at fractions `plo`, `phi`. */
export function histogramPercentiles(
  edges: number[],
  counts: number[],
  plo = 0.001,
  phi = 0.999
): [number, number] | null {
  const total = counts.reduce((a, b) => a + b, 0);
  if (!total || edges.length < 2) {
    return null;
  }
  const at = (fraction: number): number => {
    const target = fraction * total;
    let acc = 0;
    for (let i = 0; i < counts.length; i++) {
      const next = acc + counts[i];
      if (next >= target && counts[i] > 0) {
        const within = (target - acc) / counts[i];
        return edges[i] + within * (edges[i + 1] - edges[i]);
      }
      acc = next;
    }
    return edges[edges.length - 1];
  };
  const lo = at(plo);
  let hi = at(phi);
  if (hi <= lo) {
    hi = lo + (edges[edges.length - 1] - edges[0]) / Math.max(1, counts.length);
  }
  return [lo, hi];
}

export function sceneName(
  scene: string | { name?: string } | undefined,
  index: number
): string {
  if (typeof scene === 'string') {
    return scene;
  }
  return scene?.name ?? `Scene ${index}`;
}

/** Shallow structural equality of JSON-like values. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
