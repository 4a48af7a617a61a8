import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { BuildOptions, buildSync } from 'esbuild';

/**
 * The pages' scripts, written as TypeScript in `src/ui/browser/` and type-checked with the DOM
 * library. The compiled server reads the bundles the build wrote beside it
 * (`scripts/bundle-browser.mjs`); run from the sources (tsx, the tests), they are bundled here at
 * first use with esbuild, which tsx itself runs on. Either way once per process.
 */
const ENTRIES = { request: 'request-page', list: 'list-page' } as const;
export type PageScript = keyof typeof ENTRIES;

const loaded = new Map<PageScript, string>();

export function pageScript(name: PageScript): string {
  let script = loaded.get(name);
  if (script === undefined) {
    script = load(ENTRIES[name]);
    // Inlined in a <script> element: a closing tag inside it would end the script there.
    if (/<\/script/i.test(script)) throw new Error(`the ${name} page's script contains "</script"`);
    loaded.set(name, script);
  }
  return script;
}

function load(entry: string): string {
  const built = new URL(`./browser/${entry}.js`, import.meta.url);
  if (existsSync(built)) return readFileSync(built, 'utf8');
  const require = createRequire(import.meta.url);
  const esbuild = require('esbuild') as { buildSync: typeof buildSync };
  const { BROWSER_BUNDLE } = require('../../scripts/browser-bundle.mjs') as { BROWSER_BUNDLE: BuildOptions };
  const result = esbuild.buildSync({ ...BROWSER_BUNDLE, entryPoints: [fileURLToPath(new URL(`./browser/${entry}.ts`, import.meta.url))], write: false });
  const [output] = result.outputFiles;
  if (!output) throw new Error(`bundling the ${entry} script gave no output`);
  return output.text;
}
