import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { S3Store, type S3StoreOptions } from '../../src/persistence/s3-store.ts';
import { freePort } from './free-port.ts';
import { until } from './until.ts';

/**
 * moto's S3 server (Python, `moto_server`) as a child process on a free loopback port: an
 * S3 endpoint that enforces `If-None-Match: *` and `If-Match` on PutObject the way AWS S3 and
 * MinIO do (412 PreconditionFailed), which s3rver does not.
 *
 * Where it differs from AWS S3 in ways the store meets: ETags are the body's MD5 (so equal
 * bodies have equal ETags), `If-Match` on a missing key answers 404 NoSuchKey (as AWS does), and
 * CopyObject answers its ETag only inside CopyObjectResult.
 */

const BINARY = 'moto_server';

/** Set (by `.ci/run`) when moto_server must be there: its absence then fails instead of skipping. */
export const REQUIRE_MOTO_ENV = 'FAVE_REQUIRE_MOTO';

let located: string | null | undefined;

/** Where moto_server is on the PATH, or null. */
function locateMoto(): string | null {
  if (located !== undefined) return located;
  const found = spawnSync('sh', ['-c', `command -v ${BINARY}`], { encoding: 'utf8' });
  located = found.status === 0 && found.stdout.trim() ? found.stdout.trim() : null;
  return located;
}

/**
 * Null when moto_server can be started; otherwise why the moto tests are skipped (printed once).
 * Throws when `FAVE_REQUIRE_MOTO=1` and it is missing, so a CI run cannot skip them silently.
 */
export function motoSkipReason(): string | null {
  if (locateMoto()) return null;
  const reason = `${BINARY} is not on the PATH (pip install 'moto[server]'): the tests against an S3 endpoint that enforces conditional writes are skipped`;
  if (process.env[REQUIRE_MOTO_ENV] === '1') throw new Error(`${REQUIRE_MOTO_ENV}=1 but ${reason.split(':')[0]}`);
  if (!skipPrinted) {
    skipPrinted = true;
    console.warn(reason);
  }
  return reason;
}
let skipPrinted = false;

export interface RunningMoto {
  /** The server's process id (to pause it with SIGSTOP, as a store that stops answering). */
  pid: number;
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** moto's access log so far: one `METHOD /path?query STATUS` line per request, in order. */
  accessLog(): string[];
  stop(): Promise<void>;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Waits for the server to answer HTTP; false if it exits or stays silent for `timeoutMs`. */
async function answers(endpoint: string, child: ChildProcess, timeoutMs: number): Promise<boolean> {
  const outcome = await until(
    async () => {
      if (child.exitCode !== null || child.signalCode !== null) return 'exited';
      const ok = await fetch(`${endpoint}/`, { signal: AbortSignal.timeout(1000) }).then(
        () => true,
        () => false,
      );
      return ok ? 'answering' : null;
    },
    { timeoutMs, everyMs: 100, message: `${BINARY} to answer on ${endpoint}` },
  ).catch(() => 'silent');
  return outcome === 'answering';
}

/**
 * Starts moto_server on 127.0.0.1 (a free port; tried again on another if it was taken in
 * between) and creates the bucket `fave-artifacts`. Call `motoSkipReason()` first.
 */
export async function startMoto(): Promise<RunningMoto> {
  const binary = locateMoto();
  if (!binary) throw new Error(`${BINARY} is not on the PATH`);
  const bucket = 'fave-artifacts';
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const endpoint = `http://127.0.0.1:${port}`;
    const child = spawn(binary, ['-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
    const log: string[] = [];
    let partial = '';
    let output = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      const text = partial + chunk.toString('utf8');
      const lines = text.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        // werkzeug: 127.0.0.1 - - [date] "PUT /bucket/key?x-id=PutObject HTTP/1.1" 200 -
        const m = /"([A-Z]+) (\S+) HTTP\/[\d.]+" (\d{3})/.exec(line);
        if (m) log.push(`${m[1]} ${m[2]} ${m[3]}`);
        else if (output.length < 4000) output += `${line}\n`;
      }
    });
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited(child);
        clearTimeout(killer);
      }
    };
    if (!(await answers(endpoint, child, 20_000))) {
      await stop();
      if (attempt < 3) continue;
      throw new Error(`${BINARY} did not start on ${endpoint}: ${output.slice(-1000)}`);
    }
    const moto: RunningMoto = {
      pid: child.pid!,
      endpoint,
      bucket,
      accessKeyId: 'moto',
      secretAccessKey: 'moto',
      accessLog: () => [...log],
      stop,
    };
    const client = new S3Client({
      region: 'us-east-1',
      endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: moto.accessKeyId, secretAccessKey: moto.secretAccessKey },
    });
    try {
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
    } finally {
      client.destroy();
    }
    return moto;
  }
}

/** An S3Store on moto's bucket; `overrides` for the odd setting. */
export function motoStoreOn(moto: RunningMoto, overrides: Partial<S3StoreOptions> = {}): S3Store {
  return new S3Store({
    bucket: moto.bucket,
    endpoint: moto.endpoint,
    region: 'us-east-1',
    accessKeyId: moto.accessKeyId,
    secretAccessKey: moto.secretAccessKey,
    ...overrides,
  });
}

/** A fresh moto_server and an S3Store on it; `stop` closes both. */
export async function startMotoStore(overrides: Partial<S3StoreOptions> = {}): Promise<{ store: S3Store; moto: RunningMoto; stop(): Promise<void> }> {
  const moto = await startMoto();
  const store = motoStoreOn(moto, overrides);
  return {
    store,
    moto,
    async stop() {
      await store.close();
      await moto.stop();
    },
  };
}
