import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The layers of `src/`, innermost first, and what each may import. An import not listed here runs
 * back up the layers (or sideways between adapters that must stay independent) and fails the test.
 * docs/architecture.md draws the same picture.
 */
const LAYERS = {
  /** Generic helpers that know nothing of the pipeline. */
  lib: [],
  /** What a request, clip, frame, invocation record and answer are. */
  domain: ['lib'],
  /** The pipeline statechart and its pure planning; no I/O. */
  machine: ['domain', 'lib'],
  /** Adapters. Persistence is the storage the others write into. */
  persistence: ['domain', 'lib'],
  transport: ['persistence', 'domain', 'lib'],
  input: ['persistence', 'domain', 'lib'],
  stages: ['transport', 'persistence', 'domain', 'lib'],
  /** The process configuration, read once at start. */
  config: ['transport', 'input', 'persistence', 'domain', 'lib'],
  /** Runs requests: the registry of executions, leases, the actors' implementations. */
  orchestrator: ['machine', 'config', 'transport', 'input', 'persistence', 'domain', 'lib'],
  /** Surfaces, outermost. */
  visualize: ['machine', 'domain', 'lib'],
  app: ['orchestrator', 'visualize', 'config', 'stages', 'transport', 'input', 'persistence', 'domain', 'lib'],
  ui: ['app', 'orchestrator', 'visualize', 'config', 'stages', 'transport', 'persistence', 'machine', 'domain', 'lib'],
  server: ['ui', 'app', 'orchestrator', 'visualize', 'config', 'transport', 'input', 'persistence', 'machine', 'domain', 'lib'],
  handler: ['server', 'app', 'orchestrator', 'config', 'persistence', 'domain', 'lib'],
  cli: ['server', 'ui', 'app', 'orchestrator', 'visualize', 'config', 'stages', 'transport', 'persistence', 'machine', 'domain', 'lib'],
} as const satisfies Record<string, readonly string[]>;

type Layer = keyof typeof LAYERS;

const src = resolve(dirname(fileURLToPath(import.meta.url)), '../src');

/** The layer of a file under src/: its top folder, or its own name for the entry files at the root. */
function layerOf(file: string): Layer {
  const [head] = relative(src, file).split('/');
  const name = head!.replace(/\.ts$/, '');
  if (!(name in LAYERS)) throw new Error(`src/${relative(src, file)} is in no layer: add "${name}" to LAYERS`);
  return name as Layer;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
  );
}

const IMPORT = /(?:from\s+|import\s*\(\s*|import\s+)['"](\.{1,2}\/[^'"]+)['"]/g;

function importsOf(file: string): string[] {
  return [...readFileSync(file, 'utf8').matchAll(IMPORT)].map((m) => resolve(dirname(file), m[1]!));
}

describe('layers', () => {
  it('every import of src/ points inward', () => {
    const wrong: string[] = [];
    for (const file of sources(src)) {
      const from = layerOf(file);
      for (const target of importsOf(file)) {
        const to = layerOf(target);
        if (to !== from && !(LAYERS[from] as readonly string[]).includes(to)) {
          wrong.push(`${relative(src, file)} (${from}) → ${relative(src, target)} (${to})`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });

  it('the pure parts import no side-effecting module', () => {
    const impure = /from ['"](node:(fs|child_process|net|http|https)|undici|@aws-sdk\/[^'"]+|pino)['"]/;
    const pure = sources(join(src, 'domain')).concat(sources(join(src, 'machine')));
    expect(pure.filter((file) => impure.test(readFileSync(file, 'utf8'))).map((file) => relative(src, file))).toEqual([]);
  });
});
