import { createHash } from 'node:crypto';

/**
 * Failed authentication per client: past `maxFailures` distinct wrong credentials in one window, the client's credentials
 * are not even looked at until the window ends (429 with `Retry-After`), so guessing tokens runs
 * at a few attempts a minute. The table holds at most `maxClients` clients: when full, the ones
 * whose window has ended go first, then the least recently failed.
 */
export interface AuthThrottleOptions {
  /** Failures a client may have in one window (default 10). */
  maxFailures?: number;
  /** Default 60 s. */
  windowMs?: number;
  /** Clients tracked at once (default 10,000): the table's memory stays bounded. */
  maxClients?: number;
  now?: () => number;
}

interface Entry {
  windowStart: number;
  /** Short digests of the distinct wrong credentials of this window (at most `maxFailures`). */
  guesses: Set<string>;
}

export class AuthThrottle {
  readonly maxFailures: number;
  readonly windowMs: number;
  readonly maxClients: number;
  private readonly now: () => number;
  private readonly clients = new Map<string, Entry>();

  constructor(options: AuthThrottleOptions = {}) {
    this.maxFailures = options.maxFailures ?? 10;
    this.windowMs = options.windowMs ?? 60_000;
    this.maxClients = options.maxClients ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /** Clients in the table now. */
  get size(): number {
    return this.clients.size;
  }

  /** Whole seconds `client` must wait before its credentials are checked again; null: not throttled. */
  retryAfterSeconds(client: string): number | null {
    const entry = this.clients.get(client);
    if (!entry || entry.guesses.size < this.maxFailures) return null;
    const left = entry.windowStart + this.windowMs - this.now();
    if (left <= 0) {
      this.clients.delete(client);
      return null;
    }
    return Math.max(1, Math.ceil(left / 1000));
  }

  /**
   * A wrong credential from `client`. Only distinct ones count: a client repeating one stale
   * token (an old cookie, a script not updated) guesses nothing and is answered 401 as often as it asks.
   */
  failed(client: string, credential: string): void {
    const now = this.now();
    const entry = this.clients.get(client);
    this.clients.delete(client);
    const current = entry && now - entry.windowStart < this.windowMs ? entry : { windowStart: now, guesses: new Set<string>() };
    if (current.guesses.size < this.maxFailures) current.guesses.add(createHash('sha256').update(credential).digest('base64url').slice(0, 16));
    if (this.clients.size >= this.maxClients) this.makeRoom(now);
    // Re-inserted: the Map's order is the order of last failure.
    this.clients.set(client, current);
  }

  succeeded(client: string): void {
    this.clients.delete(client);
  }

  private makeRoom(now: number): void {
    for (const [client, entry] of this.clients) {
      if (now - entry.windowStart >= this.windowMs) this.clients.delete(client);
    }
    while (this.clients.size >= this.maxClients) {
      const oldest = this.clients.keys().next();
      if (oldest.done === true) break;
      this.clients.delete(oldest.value);
    }
  }
}
