/**
 * A small least-recently-used cache of decoded tiles.  Evicted bitmaps are
 * closed so their (GPU) memory is released at once.
 */
export class TileCache {
  private readonly map = new Map<string, ImageBitmap>();

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.map.size;
  }

  /** Look up without changing the recency order (used while drawing). */
  peek(key: string): ImageBitmap | undefined {
    return this.map.get(key);
  }

  /** Look up and mark as recently used. */
  get(key: string): ImageBitmap | undefined {
    const value = this.map.get(key);
    if (value !== undefined) {
      this.map.delete(key);
      this.map.set(key, value);
    }
    return value;
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  set(key: string, value: ImageBitmap): void {
    const old = this.map.get(key);
    if (old !== undefined && old !== value) {
      old.close();
    }
    this.map.delete(key);
    this.map.set(key, value);
    while (this.map.size > this.capacity) {
      const oldest = this.map.keys().next().value as string;
      this.map.get(oldest)?.close();
      this.map.delete(oldest);
    }
  }

  clear(): void {
    for (const value of this.map.values()) {
      value.close();
    }
    this.map.clear();
  }
}
