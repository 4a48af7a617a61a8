import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * Request/answer messaging between the bench and its child processes over the Node IPC
 * channel. Children are plain `node` processes (no wrapper), so the memory a child reports is
 * its own. They run the same code as the bench: the compiled JavaScript (`bench/compiled.ts`),
 * or with `--ts` the TypeScript sources through tsx's loader.
 */

export interface BenchMessage {
  type: string;
  [key: string]: unknown;
}

interface Envelope {
  id: number;
  body: BenchMessage;
}

interface Answer {
  id: number;
  ok: boolean;
  value?: unknown;
  error?: string;
}

/** Whether this module, and so the whole bench, runs as compiled JavaScript. */
export const COMPILED = import.meta.url.endsWith('.js');

/** Child side: answers every request with what `handler` resolves to; `exit` ends the process. */
export function serveIpc(handler: (message: BenchMessage) => Promise<unknown>, onExit: () => Promise<void> = async () => {}): void {
  const send = (answer: Answer) => process.send?.(answer);
  // The bench went away (killed, crashed): nobody is left to ask for anything.
  process.on('disconnect', () => process.exit(0));
  process.on('message', (raw: Envelope) => {
    const { id, body } = raw;
    if (body.type === 'exit') {
      void onExit().finally(() => {
        send({ id, ok: true, value: null });
        process.exit(0);
      });
      return;
    }
    handler(body).then(
      (value) => send({ id, ok: true, value }),
      (err: unknown) => send({ id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : JSON.stringify(err) }),
    );
  });
}

export class ChildPeer {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  readonly exited: Promise<number | null>;

  constructor(
    readonly child: ChildProcess,
    readonly name: string,
  ) {
    child.on('message', (raw: Answer) => {
      const waiter = this.pending.get(raw.id);
      if (!waiter) return;
      this.pending.delete(raw.id);
      if (raw.ok) waiter.resolve(raw.value);
      else waiter.reject(new Error(`${name}: ${raw.error ?? 'failed'}`));
    });
    this.exited = new Promise((resolve) => {
      child.on('exit', (code) => {
        for (const waiter of this.pending.values()) waiter.reject(new Error(`${name} exited with code ${code}`));
        this.pending.clear();
        resolve(code);
      });
    });
  }

  request<T>(body: BenchMessage): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.child.send({ id, body } satisfies Envelope);
    });
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await this.request({ type: 'exit' }).catch(() => undefined);
    await this.exited;
  }
}

/**
 * Starts `script` (named by its TypeScript source) in `node` with an IPC channel: its compiled
 * sibling when the bench runs compiled, else the source through `--import tsx`. Its stdout and
 * stderr go to our stderr.
 */
export function spawnScript(script: URL, name: string, env: NodeJS.ProcessEnv = {}, nodeArgs: string[] = []): ChildPeer {
  const path = fileURLToPath(script);
  const args = COMPILED ? [path.replace(/\.ts$/, '.js')] : ['--import', import.meta.resolve('tsx'), path];
  const child = spawn(process.execPath, [...nodeArgs, ...args], {
    stdio: ['ignore', process.stderr, 'inherit', 'ipc'],
    env: { ...process.env, ...env },
  });
  return new ChildPeer(child, name);
}
