import { createServer } from 'node:net';

/** A loopback port that was free a moment ago, for a server started in another process. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      if (address === null || typeof address === 'string') {
        probe.close(() => reject(new Error('the probe server has no TCP address')));
        return;
      }
      probe.close(() => resolve(address.port));
    });
  });
}
