import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * Request/answer messaging between the bench and its child processes over the Node IPC
 * channel. Children run TypeScript through tsx's loader in a plain `node` process, so the
 * memory a child reports is its own and not that of a wrapper process.
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

const TSX_LOADER = import.meta.resolve('tsx');

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

/** Starts `node --import tsx <script>` with an IPC channel; stdout/stderr go to ours (stderr). */
export function spawnTs(script: URL, name: string, env: NodeJS.ProcessEnv = {}, nodeArgs: string[] = []): ChildPeer {
  const child = spawn(process.execPath, [...nodeArgs, '--import', TSX_LOADER, fileURLToPath(script)], {
    stdio: ['ignore', process.stderr, 'inherit', 'ipc'],
    env: { ...process.env, ...env },
  });
  return new ChildPeer(child, name);
}
