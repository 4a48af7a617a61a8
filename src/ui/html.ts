import { escapeXml } from '../lib/xml.ts';

export { escapeXml };

/**
 * JSON safe inside `<script type="application/json">`: no `</script>`, no `<!--`, and no
 * line separators that older parsers treat as line ends.
 */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/**
 * The page's own policy: nothing is loaded from anywhere. A live page may fetch its own JSON;
 * a report may not fetch at all, so it provably works offline.
 */
export function contentSecurityPolicy(live: boolean, mediaOrigin: string | null = null, form = false): string {
  return [
    "default-src 'none'",
    "style-src 'unsafe-inline'",
    "script-src 'unsafe-inline'",
    // A live page shows the request's frames and clips from this server (the artifact route);
    // a report embeds its pictures and plays clips only from the server it was told of.
    live ? "img-src 'self' data:" : 'img-src data:',
    live ? "media-src 'self'" : `media-src ${mediaOrigin ?? "'none'"}`,
    `connect-src ${live ? "'self'" : "'none'"}`,
    "base-uri 'none'",
    `form-action ${form ? "'self'" : "'none'"}`,
  ].join('; ');
}

export function htmlDocument(options: {
  title: string;
  live: boolean;
  form?: boolean;
  body: string;
  bodyAttributes?: Record<string, string>;
  head?: string;
  mediaOrigin?: string | null;
}): string {
  const attributes = Object.entries(options.bodyAttributes ?? {})
    .map(([k, v]) => ` ${k}="${escapeXml(v)}"`)
    .join('');
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<meta http-equiv="Content-Security-Policy" content="${escapeXml(contentSecurityPolicy(options.live, options.mediaOrigin ?? null, options.form ?? false))}">`,
    `<title>${escapeXml(options.title)}</title>`,
    // No favicon request: a page asks for nothing it does not show.
    '<link rel="icon" href="data:,">',
    options.head ?? '',
    '</head>',
    `<body${attributes}>`,
    options.body,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
