/** Adds `value` to the set filed under `key`, creating the set; returns its size. */
export function addToSet<K, V>(map: Map<K, Set<V>>, key: K, value: V): number {
  let set = map.get(key);
  if (!set) {
    set = new Set();
    map.set(key, set);
  }
  set.add(value);
  return set.size;
}

/** Removes `value` from the set filed under `key`; an emptied set goes, so keys never outlive their values. Returns its size. */
export function deleteFromSet<K, V>(map: Map<K, Set<V>>, key: K, value: V): number {
  const set = map.get(key);
  if (!set) return 0;
  set.delete(value);
  if (set.size === 0) map.delete(key);
  return set.size;
}
