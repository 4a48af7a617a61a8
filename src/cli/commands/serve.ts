import type { Command } from 'commander';
import { toFaveError } from '../../domain/errors.ts';
import { startHttpServer } from '../../server/http-server.ts';
import { EXIT, fail, port, withApp } from '../shared.ts';

/** A listen failure the user can act on, said with what to do. */
class CannotListen extends Error {}

function cannotListen(code: string | undefined, port: number, host: string): CannotListen | null {
  if (code === 'EADDRINUSE') return new CannotListen(`port ${port} is in use (on ${host}): stop what listens there, or choose another port with --port`);
  if (code === 'EACCES') {
    return new CannotListen(
      `port ${port} (on ${host}) needs privileges this user does not have: ports below 1024 are reserved for root on most systems. ` +
        'Choose a port above 1024 with --port (e.g. --port 8080), or put a reverse proxy in front',
    );
  }
  if (code === 'EADDRNOTAVAIL') return new CannotListen(`${host} is not an address of this machine: choose one it has with --host (e.g. 127.0.0.1 or 0.0.0.0)`);
  return null;
}

/** A wildcard listen address is not one a browser can open: show it as localhost. */
function browsableUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.hostname === '0.0.0.0' || parsed.hostname === '[::]') parsed.hostname = 'localhost';
  return parsed.origin;
}

function nextSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(signal);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

/**
 * `fave serve`: the HTTP API of `docs/api.md` until SIGINT/SIGTERM. On a signal it stops accepting,
 * stops driving its requests without changing their state (they stay resumable, by
 * `RESUME_ON_START=true` on the next start or `fave resume`), and answers waiting callers 503.
 */
export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve the HTTP API (the routes of the OpenFaaS function) until SIGINT/SIGTERM')
    .option('--port <port>', 'port to listen on (0 picks a free one)', port, 8080)
    .option('--host <address>', 'address to listen on (default 0.0.0.0 with API tokens, 127.0.0.1 without)')
    .option('--insecure-no-auth', 'listen on a non-loopback address without API tokens: every caller may operate')
    .option('--require-auth', 'refuse to start without FAVE_API_TOKENS or FAVE_ANONYMOUS_ROLE, even on loopback')
    .action(async (opts: { port: number; host?: string; insecureNoAuth?: boolean; requireAuth?: boolean }) => {
      await withApp(async (app) => {
        const server = await startHttpServer({
          app,
          port: opts.port,
          ...(opts.host !== undefined ? { host: opts.host } : {}),
          insecureNoAuth: opts.insecureNoAuth === true,
          requireAuth: opts.requireAuth === true,
        }).catch((err: unknown) => {
          const host = opts.host ?? (app.config.auth.tokens.length > 0 ? '0.0.0.0' : '127.0.0.1');
          throw cannotListen((err as NodeJS.ErrnoException).code, opts.port, host) ?? err;
        });
        app.logger.info({ event: 'listening', url: server.url, gateway: app.config.gatewayUrl ?? 'local stages', store: app.store.kind });
        // The line for a person (the log above is for machines), with addresses a browser opens.
        const base = browsableUrl(server.url);
        process.stdout.write(`fave serve: API ${base}/  UI ${base}/ui  (stages: ${app.config.gatewayUrl ?? 'local'}, store: ${app.store.kind}; Ctrl-C stops)\n`);
        // Requests whose owner is gone (a replica killed, a pod evicted) are taken over at start and then as their leases run out.
        const sweeps = app.config.resumeOnStart ? app.startOrphanSweeps() : null;
        const debris = app.startDebrisSweeps();
        const signal = await nextSignal();
        void sweeps?.stop();
        void debris.stop();
        app.logger.info({ event: 'shutting_down', signal, requests_running: app.orchestrator.running().length });
        // A second signal during the drain means "now".
        const force = () => process.exit(130);
        process.once('SIGINT', force);
        process.once('SIGTERM', force);
        // Abandoning the executions is what lets waiting synchronous callers get their 503.
        await Promise.all([server.close(), app.orchestrator.close()]);
      }, false).catch((err: unknown) => {
        if (err instanceof CannotListen) {
          process.stderr.write(`fave: ${err.message}\n`);
          process.exit(EXIT.failed);
        }
        fail(toFaveError(err));
      });
    });
}
