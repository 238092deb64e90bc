/**
 * The one bounded cache of the library: a least-recently-used map with a fixed number of
 * entries and hit / miss / eviction counters. Every cache a Verifier owns is one of these
 * (verifier.ts lists them with their sizes); nothing else in src/ keeps state between calls.
 *
 * A Map keeps insertion order, so re-inserting an entry on every hit makes the first key the
 * least recently used one: get, set and eviction are O(1).
 */

/** Counters of one cache, as `verifier.stats()` reports them. */
export interface CacheStats {
  /** Entries held now. */
  size: number;
  /** The most entries the cache holds. */
  max: number;
  hits: number;
  misses: number;
  /** Entries dropped to make room for newer ones. */
  evictions: number;
}

/** get() is find() that takes whatever is stored (a stored value is never undefined). */
const anyValue = (): boolean => true;

export class Lru<K, V> {
  readonly max: number;
  readonly #map = new Map<K, V>();
  #hits = 0;
  #misses = 0;
  #evictions = 0;

  constructor(max: number) {
    if (!Number.isSafeInteger(max) || max < 1)
      throw new RangeError(`cache size ${max} is not a positive integer`);
    this.max = max;
  }

  get size(): number {
    return this.#map.size;
  }

  /** The value for `key` (now the most recently used), counted as a hit or a miss. */
  get(key: K): V | undefined {
    return this.find(key, anyValue);
  }

  /**
   * The value for `key` if `accept` takes it (then the most recently used, counted as a hit);
   * otherwise undefined, counted as a miss, and the entry is left where it was.
   */
  find(key: K, accept: (value: V) => boolean): V | undefined {
    const value = this.#map.get(key);
    if (value === undefined || !accept(value)) {
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    this.#map.delete(key);
    this.#map.set(key, value);
    return value;
  }

  /** Counts a hit served before the map was consulted (a "same as last time" comparison). */
  hit(): void {
    this.#hits++;
  }

  set(key: K, value: V): void {
    this.#map.delete(key);
    if (this.#map.size >= this.max) {
      this.#map.delete(this.#map.keys().next().value as K);
      this.#evictions++;
    }
    this.#map.set(key, value);
  }

  delete(key: K): void {
    this.#map.delete(key);
  }

  clear(): void {
    this.#map.clear();
  }

  stats(): CacheStats {
    return {
      size: this.#map.size,
      max: this.max,
      hits: this.#hits,
      misses: this.#misses,
      evictions: this.#evictions,
    };
  }
}
