import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serveIpc, type BenchMessage } from './ipc.ts';

/**
 * The least an HTTP function can be: reads the body, waits the stage latency on a timer, answers
 * a fixed success. A bare client against it measures what this machine's Node, loopback and
 * timers allow any client at that latency and concurrency, before any gateway work.
 */

export interface FloorServerStarted {
  url: string;
}

const ANSWER = JSON.stringify({ request_id: 'floor', stage: 'floor', outputs: [], status: 'success', message: null });
const HEADERS = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(ANSWER)) };

let server: Server | null = null;

function start(latencyMs: number): Promise<FloorServerStarted> {
  const started = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      setTimeout(() => res.writeHead(200, HEADERS).end(ANSWER), latencyMs);
    });
  });
  started.keepAliveTimeout = 60_000;
  server = started;
  return new Promise((resolve, reject) => {
    started.once('error', reject);
    started.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${(started.address() as AddressInfo).port}` }));
  });
}

function stop(): Promise<void> {
  const running = server;
  server = null;
  if (!running) return Promise.resolve();
  running.closeAllConnections();
  return new Promise((resolve) => running.close(() => resolve()));
}

async function handle(message: BenchMessage): Promise<unknown> {
  switch (message.type) {
    case 'start':
      return start(Number(message.latencyMs));
    default:
      throw new Error(`unknown message ${message.type}`);
  }
}

serveIpc(handle, stop);
