/**
 * Channel compositing in the browser: the twin of the Python
 * `bioimnb.core.tiles.composite_channels`, whose docstring is the rule.  Both
 * do the same IEEE float32 operations in the same order (here `Math.fround`
 * after each step, or a store into a Float32Array), so the bytes agree exactly
 * with what the kernel would have rendered.  Keep the two in sync.
 *
 * With every value v of the tile (uint8/uint16 as stored, else float32), per
 * visible channel with window [lo, hi] and colour bytes c_k:
 *
 *   s    = hi <= lo ? (v >= hi ? 1 : 0)                      (float64 compare)
 *                   : clip(f32(f32(v - f32(lo)) * f32(1 / (hi - lo))), 0, 1), NaN -> 0
 *   s255 = f32(s * 255)
 *   acc_k = f32(acc_k + (c_k == 255 ? s255 : f32(s255 * f32(c_k / 255))))   (c_k > 0)
 *
 * then out_k = trunc(f32(min(acc_k, 255) + 0.5)), alpha 255.
 */
import { ChannelData, ChannelTile, ChannelView } from './types';

const f32 = Math.fround;
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** One visible channel of a tile and how to show it. */
export interface CompositeLayer {
  tile: ChannelTile;
  view: ChannelView;
}

/** `s255` (the windowed value times 255, float32) of one raw value. */
function scaled255(v: number, lo: number, hi: number, lo32: number, k32: number): number {
  let s: number;
  if (hi <= lo) {
    s = v >= hi ? 1 : 0;
  } else {
    s = f32(f32(v - lo32) * k32);
    if (!(s >= 0)) {
      s = 0; // negative or NaN
    } else if (s > 1) {
      s = 1;
    }
  }
  return f32(s * 255);
}

// Lookup tables of s255 for every uint8/uint16 value, per window (a few, reused).
const LUTS = new Map<string, Float32Array>();
const MAX_LUTS = 24;

function lookupTable(bits: 8 | 16, lo: number, hi: number): Float32Array {
  const key = `${bits}:${lo}:${hi}`;
  let lut = LUTS.get(key);
  if (lut) {
    LUTS.delete(key);
    LUTS.set(key, lut);
    return lut;
  }
  const lo32 = f32(lo);
  const k32 = f32(1 / (hi - lo));
  lut = new Float32Array(bits === 8 ? 256 : 65536);
  for (let v = 0; v < lut.length; v++) {
    lut[v] = scaled255(v, lo, hi, lo32, k32);
  }
  LUTS.set(key, lut);
  while (LUTS.size > MAX_LUTS) {
    LUTS.delete(LUTS.keys().next().value as string);
  }
  return lut;
}

// Scratch buffers, grown as needed (compositing is synchronous: one user at a time).
let scaledBuf = new Float32Array(0);
let accBuf = new Float32Array(0);

/** s255 of every pixel of one channel tile, into `out` (length >= n). */
function scaleTile(data: ChannelData, n: number, view: ChannelView, out: Float32Array): void {
  const lo = view.min;
  const hi = view.max;
  if (data instanceof Uint16Array || data instanceof Uint8Array) {
    const lut = lookupTable(data instanceof Uint8Array ? 8 : 16, lo, hi);
    for (let i = 0; i < n; i++) {
      out[i] = lut[data[i]];
    }
    return;
  }
  const lo32 = f32(lo);
  const k32 = f32(1 / (hi - lo));
  for (let i = 0; i < n; i++) {
    out[i] = scaled255(data[i], lo, hi, lo32, k32);
  }
}

function colorBytes(color: string): [number, number, number] {
  const v = parseInt(color, 16);
  return Number.isFinite(v) ? [(v >> 16) & 255, (v >> 8) & 255, v & 255] : [255, 255, 255];
}

/**
 * Composite `layers` (channel tiles of one w x h tile, in the view's channel
 * order) into `out`, RGBA bytes (length w * h * 4).  Hidden layers are skipped;
 * no layer gives opaque black.
 */
export function compositeTile(
  layers: CompositeLayer[],
  w: number,
  h: number,
  out: Uint8ClampedArray
): void {
  const n = w * h;
  if (scaledBuf.length < n) {
    scaledBuf = new Float32Array(n);
  }
  if (accBuf.length < 3 * n) {
    accBuf = new Float32Array(3 * n);
  }
  const acc = accBuf;
  acc.fill(0, 0, 3 * n);
  const scaled = scaledBuf;
  for (const { tile, view } of layers) {
    if (!view.visible || tile.w * tile.h !== n || tile.data.length < n) {
      continue;
    }
    scaleTile(tile.data, n, view, scaled);
    const weights = colorBytes(view.color);
    for (let k = 0; k < 3; k++) {
      const c = weights[k];
      if (c === 0) {
        continue;
      }
      const off = k * n;
      if (c === 255) {
        for (let i = 0; i < n; i++) {
          acc[off + i] += scaled[i];
        }
      } else {
        const wk = f32(c / 255);
        for (let i = 0; i < n; i++) {
          acc[off + i] += f32(scaled[i] * wk);
        }
      }
    }
  }
  // acc >= 0; `| 0` and `<<` truncate toward zero (values 0.5 .. 255.5).
  const n2 = 2 * n;
  if (LITTLE_ENDIAN && out.byteOffset % 4 === 0) {
    // One 32-bit store per pixel: bytes R, G, B, A in memory.
    const px = new Uint32Array(out.buffer, out.byteOffset, n);
    for (let i = 0; i < n; i++) {
      let r = acc[i];
      let g = acc[n + i];
      let b = acc[n2 + i];
      r = r > 255 ? 255 : r;
      g = g > 255 ? 255 : g;
      b = b > 255 ? 255 : b;
      px[i] = (0xff000000 | (f32(b + 0.5) << 16) | (f32(g + 0.5) << 8) | f32(r + 0.5)) >>> 0;
    }
    return;
  }
  for (let i = 0, j = 0; i < n; i++, j += 4) {
    out[j] = f32(Math.min(acc[i], 255) + 0.5) | 0;
    out[j + 1] = f32(Math.min(acc[n + i], 255) + 0.5) | 0;
    out[j + 2] = f32(Math.min(acc[n2 + i], 255) + 0.5) | 0;
    out[j + 3] = 255;
  }
}

/** Bytes a channel tile takes (for the cache's bound). */
export function tileBytes(tile: ChannelTile): number {
  return tile.data.byteLength + 64;
}
