import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Starts the worker module `name` that sits beside the module at `here` (its `import.meta.url`).
 * The worker runs the same code as its parent: compiled JavaScript next to the parent in a
 * build, or the TypeScript sources in a checkout, which a new thread reads through tsx as the
 * CLI does.
 */
export function startWorkerThread(here: string, name: string, options: WorkerOptions = {}): Worker {
  if (!new URL(here).pathname.endsWith('.ts')) return new Worker(new URL(`./${name}.js`, here), options);
  const entry = new URL(`./${name}.ts`, here).href;
  const boot = `import(${JSON.stringify(tsxApiUrl())}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { ...options, eval: true });
}

let tsxApi: string | null = null;

/** The ESM entry of tsx's registration API, from its package's exports. */
function tsxApiUrl(): string {
  if (tsxApi) return tsxApi;
  const require = createRequire(import.meta.url);
  const manifestPath = require.resolve('tsx/package.json');
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { exports?: Record<string, unknown> };
  const api = manifest.exports?.['./esm/api'];
  const target = typeof api === 'object' && api !== null ? (api as { import?: { default?: unknown } }).import?.default : undefined;
  if (typeof target !== 'string') throw new Error(`tsx ${manifestPath} exports no ESM registration API`);
  tsxApi = pathToFileURL(join(dirname(manifestPath), target)).href;
  return tsxApi;
}
