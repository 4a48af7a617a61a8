import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FaveFailure, faveError } from '../../domain/errors.ts';
import { BodyTooLarge, readTextCapped } from '../../lib/bounded-body.ts';
import { closeLocalStages, createLocalStages, type LocalStagesOptions } from './index.ts';
import { invokeLocalStage, refused } from './local-transport.ts';

/** A stage request is a few URIs and a fan-out index; anything near this is not one. */
const MAX_BODY_BYTES = 1024 * 1024;

export interface StageServerOptions extends LocalStagesOptions {
  /** The function name this process answers as, e.g. `stage-librosa`. */
  functionName: string;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
}

export interface StageServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * One local stage as the upstream of an OpenFaaS watchdog in http mode: the watchdog forwards
 * every request of the function to this server, whatever its path, so a POST anywhere is a stage
 * call (its body the stage request JSON) and a GET anywhere answers that the process is up, for
 * the watchdog's ready path.
 */
export async function startStageServer(options: StageServerOptions): Promise<StageServer> {
  const stages = createLocalStages(options);
  if (!Object.hasOwn(stages, options.functionName)) {
    await closeLocalStages(stages);
    throw new FaveFailure(faveError('BAD_REQUEST', `no stage is called "${options.functionName}" (known: ${Object.keys(stages).join(', ')})`));
  }
  const active = new Set<AbortController>();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method === 'GET' || req.method === 'HEAD') return send(res, 200, { 'content-type': 'text/plain; charset=utf-8' }, 'OK');
    if (req.method !== 'POST') return send(res, 405, { 'content-type': 'text/plain; charset=utf-8', allow: 'GET, POST' }, 'POST a stage request');
    let text: string;
    try {
      text = await readTextCapped(req, MAX_BODY_BYTES);
    } catch (err) {
      if (err instanceof BodyTooLarge) return send(res, 413, { 'content-type': 'text/plain; charset=utf-8' }, err.message);
      throw err;
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      const reply = refused('request body is not JSON');
      return send(res, reply.status, reply.headers, reply.body);
    }
    // A caller that hangs up (the watchdog's exec_timeout) stops the stage's tools too.
    const controller = new AbortController();
    active.add(controller);
    res.once('close', () => {
      if (!res.writableFinished) controller.abort(new Error('the caller went away'));
    });
    try {
      const reply = await invokeLocalStage(stages, options.functionName, body, controller.signal);
      send(res, reply.status, reply.headers, reply.body);
    } finally {
      active.delete(controller);
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) res.destroy();
      else send(res, 500, { 'content-type': 'text/plain; charset=utf-8' }, err instanceof Error ? err.message : String(err));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host ?? '127.0.0.1';
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    close: async () => {
      for (const controller of active) controller.abort(new Error('the stage server is closing'));
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await closeLocalStages(stages);
    },
  };
}

function send(res: ServerResponse, status: number, headers: Record<string, string>, body: string): void {
  res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
