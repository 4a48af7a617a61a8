import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The layers of `src/` and, for each, the layers right below it. A layer may import its own
 * modules and anything below it, directly or not; nothing else. An import not allowed here runs
 * back up the layers, or across to an adapter it must stay independent of, and fails the test.
 * docs/architecture.md draws these same edges (a test below keeps the two equal).
 */
const LAYERS = {
  /** Generic helpers that know nothing of the pipeline. */
  lib: [],
  /** What a request, clip, frame, invocation record and answer are. */
  domain: ['lib'],
  /** The pipeline statechart and its pure planning; no I/O. */
  machine: ['domain'],
  /** Adapters. Persistence is the storage the others read and write. */
  persistence: ['domain'],
  transport: ['persistence'],
  input: ['persistence'],
  stages: ['transport'],
  /** The process configuration, read once at start. */
  config: ['input'],
  /** Runs requests: the registry of executions, leases, the actors' implementations. */
  orchestrator: ['machine', 'config', 'transport'],
  /** Surfaces, outermost. */
  visualize: ['machine'],
  app: ['orchestrator', 'visualize', 'stages'],
  ui: ['orchestrator', 'visualize', 'stages'],
  server: ['ui', 'app'],
  handler: ['server'],
  /** The research workbench: load generation and analysis of results files. */
  research: ['ui'],
  cli: ['server', 'research'],
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

/** Everything below `layer`. */
function below(layer: Layer, seen = new Set<Layer>()): Set<Layer> {
  for (const next of LAYERS[layer]) {
    if (seen.has(next)) continue;
    seen.add(next);
    below(next, seen);
  }
  return seen;
}

describe('layers', () => {
  it('every import of src/ points inward', () => {
    const wrong: string[] = [];
    for (const file of sources(src)) {
      const from = layerOf(file);
      for (const target of importsOf(file)) {
        const to = layerOf(target);
        if (to !== from && !below(from).has(to)) {
          wrong.push(`${relative(src, file)} (${from}) → ${relative(src, target)} (${to})`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });

  it('every declared edge has an import behind it', () => {
    const used = new Set<string>();
    for (const file of sources(src)) {
      const from = layerOf(file);
      for (const target of importsOf(file)) used.add(`${from} --> ${layerOf(target)}`);
    }
    const declared = Object.entries(LAYERS).flatMap(([from, tos]) => tos.map((to) => `${from} --> ${to}`));
    expect(declared.filter((edge) => !used.has(edge))).toEqual([]);
  });

  it('docs/architecture.md draws exactly these layers', () => {
    const doc = readFileSync(join(src, '../docs/architecture.md'), 'utf8');
    const block = /```mermaid\n([\s\S]*?)```/.exec(doc)?.[1] ?? '';
    const drawn = [...block.matchAll(/^\s*(\w+)\s*-->\s*(\w+)\s*$/gm)].map((m) => `${m[1]} --> ${m[2]}`).sort();
    const declared = Object.entries(LAYERS)
      .flatMap(([from, tos]) => tos.map((to) => `${from} --> ${to}`))
      .sort();
    expect(drawn, 'docs/architecture.md: the layer picture differs from LAYERS in test/layers.test.ts').toEqual(declared);
  });

  it('the pure parts import no side-effecting module', () => {
    const impure = /from ['"](node:(fs|child_process|net|http|https)|undici|@aws-sdk\/[^'"]+|pino)['"]/;
    const pure = sources(join(src, 'domain')).concat(sources(join(src, 'machine')));
    expect(pure.filter((file) => impure.test(readFileSync(file, 'utf8'))).map((file) => relative(src, file))).toEqual([]);
  });
});
