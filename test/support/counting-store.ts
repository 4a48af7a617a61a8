import type { Store } from '../../src/persistence/store.ts';

export interface StoreCounts {
  /** Every call by method name (`get`, `head`, `listPage`, …). */
  calls: Map<string, number>;
  /** `get` of a state.json: what a sweep reads of a request. */
  stateReads: number;
  reset(): void;
}

/** The real store, with a count of every call made through it (the sweeps' cost, measured). */
export function countingStore(store: Store): { store: Store; counts: StoreCounts } {
  const counts: StoreCounts = {
    calls: new Map(),
    stateReads: 0,
    reset() {
      counts.calls.clear();
      counts.stateReads = 0;
    },
  };
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function' || typeof prop !== 'string') return value;
      return (...args: unknown[]) => {
        counts.calls.set(prop, (counts.calls.get(prop) ?? 0) + 1);
        const first = args[0];
        if (prop === 'get' && typeof first === 'object' && first !== null && 'key' in first && String(first.key).endsWith('/metadata/state.json')) counts.stateReads++;
        return Reflect.apply(value, target, args);
      };
    },
  });
  return { store: proxy, counts };
}
