/**
 * Work is split into a fixed number of partitions; every event belongs to one, by a hash of its
 * partition key (the stream id unless the appender names another key, e.g. the Entra user id so
 * one user's changes are handled in order by one consumer). Changing this number reshuffles
 * ownership, so it is a constant of the log, not a setting.
 */
export const PARTITION_COUNT = 8;

/** FNV-1a, 32-bit, unsigned: stable across processes and versions, unlike any runtime hash. */
export function fnv1a(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

export function partitionOf(key: string): number {
  return fnv1a(key) % PARTITION_COUNT;
}
