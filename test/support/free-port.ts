import { createServer, type Server } from 'node:net';

/** A loopback port that was free a moment ago, for a server started in another process. */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port!;
}

/** `count` loopback ports, all different: each probe holds its port until every one is picked. */
export async function freePorts(count: number): Promise<number[]> {
  const probes: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const probe = createServer();
      probes.push(probe);
      ports.push(await listenOnAnyPort(probe));
    }
    return ports;
  } finally {
    await Promise.all(probes.map((probe) => new Promise<void>((resolve) => (probe.listening ? probe.close(() => resolve()) : resolve()))));
  }
}

function listenOnAnyPort(probe: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      if (address === null || typeof address === 'string') reject(new Error('the probe server has no TCP address'));
      else resolve(address.port);
    });
  });
}
