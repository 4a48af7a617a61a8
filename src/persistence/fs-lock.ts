import { hostname } from 'node:os';
import { link, open, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';

/** How long a lock outlives its holder's last heartbeat. */
export const DEFAULT_LOCK_LEASE_MS = 3000;

export interface FileLockOptions {
  leaseMs?: number;
}

interface Holder {
  host: string;
  pid: number;
}

const HOST = hostname();

/**
 * Runs `fn` holding `{path}` (an O_EXCL file) as a lease: while `fn` runs the holder touches the
 * file every third of the lease, so a lock whose file has not been touched for a whole lease
 * belongs to a holder that is gone and is broken. A holder on this host that no longer exists (a
 * SIGKILLed process) is recognised at once by its pid.
 */
export async function withFileLock<T>(path: string, fn: () => Promise<T>, options: FileLockOptions = {}): Promise<T> {
  const leaseMs = options.leaseMs ?? DEFAULT_LOCK_LEASE_MS;
  const me: Holder = { host: HOST, pid: process.pid };
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(path, 'wx');
      try {
        await handle.writeFile(JSON.stringify(me));
      } finally {
        await handle.close();
      }
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      await breakIfAbandoned(path, leaseMs);
      await new Promise((r) => setTimeout(r, Math.min(50, 2 + attempt)));
    }
  }
  const heartbeat = setInterval(
    () => {
      const now = new Date();
      void utimes(path, now, now).catch(() => undefined);
    },
    Math.max(10, Math.floor(leaseMs / 3)),
  );
  heartbeat.unref();
  try {
    return await fn();
  } finally {
    clearInterval(heartbeat);
    await rm(path, { force: true });
  }
}

/**
 * Removes the lock at `path` when its holder is gone: a dead pid on this host, or no heartbeat
 * for a whole lease. The lock is first renamed aside, so of several waiters only one removes
 * it, and a lock taken afresh in between is put back rather than broken.
 */
async function breakIfAbandoned(path: string, leaseMs: number): Promise<void> {
  const info = await stat(path).catch(() => null);
  if (!info) return;
  const expired = Date.now() - info.mtimeMs > leaseMs;
  if (!expired && !(await holderIsDead(path))) return;
  const aside = `${path}.${randomBytes(6).toString('hex')}.broken`;
  try {
    await rename(path, aside);
  } catch {
    return;
  }
  const moved = await stat(aside).catch(() => null);
  if (moved && moved.ino !== info.ino) {
    // Someone took the lock between our look and the rename: give it back (never over a newer one).
    await link(aside, path).catch(() => undefined);
    await rm(aside, { force: true });
    return;
  }
  await rm(aside, { force: true });
}

async function holderIsDead(path: string): Promise<boolean> {
  let holder: Partial<Holder>;
  try {
    holder = JSON.parse(await readFile(path, 'utf8')) as Partial<Holder>;
  } catch {
    // Not written yet (just created) or unreadable: only the lease decides.
    return false;
  }
  if (holder.host !== HOST || typeof holder.pid !== 'number' || holder.pid === process.pid) return false;
  try {
    process.kill(holder.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
