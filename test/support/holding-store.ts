import type { Store } from '../../src/persistence/store.ts';

export interface StoreHold {
  /** Writes waiting at the hold right now. */
  readonly waiting: number;
  /** Lets every waiting write (and every later one) through. */
  release(): void;
}

/**
 * The real store, whose writes (`put`, `createIfAbsent`) of the keys `holds` picks wait until
 * `release()`: a slow disk or bucket at one chosen place, the rest of the store as it is.
 */
export function holdingStore(store: Store, holds: (key: string) => boolean): { store: Store; hold: StoreHold } {
  let open = false;
  let waiting = 0;
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const hold: StoreHold = {
    get waiting() {
      return waiting;
    },
    release() {
      open = true;
      release();
    },
  };
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      if (prop !== 'put' && prop !== 'createIfAbsent') return value.bind(target);
      return async (...args: unknown[]) => {
        const loc = args[0] as { key: string };
        if (!open && holds(loc.key)) {
          waiting++;
          await released;
          waiting--;
        }
        return Reflect.apply(value, target, args);
      };
    },
  });
  return { store: proxy, hold };
}
