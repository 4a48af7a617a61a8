// Bundles the pages' browser scripts (src/ui/browser/*-page.ts) into dist/ui/browser/, where the
// compiled server reads them (src/ui/scripts.ts). Run after `tsc` by `npm run build` and by the
// Dockerfile's build stage. esbuild-wasm, not esbuild: the image installs without optional
// packages, and esbuild's native binary is one.
import { build } from 'esbuild-wasm';
import { BROWSER_BUNDLE } from './browser-bundle.mjs';

const root = new URL('..', import.meta.url);
await build({
  ...BROWSER_BUNDLE,
  absWorkingDir: root.pathname,
  entryPoints: ['src/ui/browser/request-page.ts', 'src/ui/browser/list-page.ts'],
  outdir: 'dist/ui/browser',
  logLevel: 'warning',
});
