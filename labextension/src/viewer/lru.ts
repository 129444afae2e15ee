/**
 * Least-recently-used caches of the viewer: decoded RGBA tiles (bounded in
 * tiles), raw channel tiles (bounded in bytes) and composited tiles.
 */
export class LruCache<V> {
  private readonly map = new Map<string, V>();
  private total = 0;

  /**
   * `capacity` is in the units of `cost` (1 per entry by default); `dispose`
   * is called on entries that are evicted, replaced or cleared.  The newest
   * entry is kept even when it alone exceeds the capacity.
   */
  constructor(
    readonly capacity: number,
    private readonly cost: (value: V) => number = () => 1,
    private readonly dispose?: (value: V) => void
  ) {}

  get size(): number {
    return this.map.size;
  }

  /** Total cost of the entries held. */
  get used(): number {
    return this.total;
  }

  /** Look up without changing the recency order (used while drawing). */
  peek(key: string): V | undefined {
    return this.map.get(key);
  }

  /** Look up and mark as recently used. */
  get(key: string): V | undefined {
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

  set(key: string, value: V): void {
    const old = this.map.get(key);
    if (old !== undefined) {
      this.total -= this.cost(old);
      this.map.delete(key);
      if (old !== value) {
        this.dispose?.(old);
      }
    }
    this.map.set(key, value);
    this.total += this.cost(value);
    while (this.total > this.capacity && this.map.size > 1) {
      const oldest = this.map.keys().next().value as string;
      const evicted = this.map.get(oldest) as V;
      this.map.delete(oldest);
      this.total -= this.cost(evicted);
      this.dispose?.(evicted);
    }
  }

  clear(): void {
    if (this.dispose) {
      for (const value of this.map.values()) {
        this.dispose(value);
      }
    }
    this.map.clear();
    this.total = 0;
  }
}

/** Decoded tiles; evicted bitmaps are closed so their (GPU) memory is released at once. */
export class TileCache extends LruCache<ImageBitmap> {
  constructor(capacity: number) {
    super(capacity, () => 1, bitmap => bitmap.close());
  }
}
