import type { Server } from 'node:http';
import { onTestFinished } from 'vitest';

/**
 * Closes `resource` once the running test has finished, passed or failed. Resources close in
 * the reverse order they were registered in, so what was started on top of another closes first.
 */
export function closeAfterTest<T extends { close(): unknown }>(resource: T, close: (resource: T) => unknown = (r) => r.close()): T {
  onTestFinished(async () => {
    await close(resource);
  });
  return resource;
}

/** Stops a node:http server, dropping the keep-alive connections it still holds. */
export function closeNodeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
