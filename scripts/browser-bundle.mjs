/**
 * How the pages' browser scripts are bundled: one self-contained script per page, inlined into
 * the page (a report is one file that fetches nothing). Shared by the build
 * (bundle-browser.mjs) and by a server run from the sources (src/ui/scripts.ts).
 */
export const BROWSER_BUNDLE = Object.freeze({
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: 'es2020',
  charset: 'utf8',
  legalComments: 'none',
});
