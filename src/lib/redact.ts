/**
 * What may carry a secret on its way into state.json, final.json, answers and logs, and how it
 * is taken out. A presigned URL works without any other credential, so its signature is as
 * secret as a password.
 */

/** Query parameters that sign or authorise a URL (S3 SigV4 and SigV2, GCS, Azure SAS, CloudFront, generic tokens). */
const SECRET_QUERY_PARAMS = new Set(
  [
    'x-amz-signature',
    'x-amz-credential',
    'x-amz-security-token',
    'x-goog-signature',
    'x-goog-credential',
    'signature',
    'awsaccesskeyid',
    'sig',
    'token',
    'access_token',
    'id_token',
    'api_key',
    'apikey',
    'key-pair-id',
    'password',
    'secret',
    'auth',
  ].map((p) => p.toLowerCase()),
);

/**
 * The URL as it may be stored and shown: no user:password, no signing query parameters (the
 * others stay, so the object is still recognisable). Not a URL: returned as is.
 */
export function redactUrl(uri: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(uri) || /^s3:\/\//i.test(uri)) return uri;
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return scrubSecrets(uri);
  }
  if (!/^https?:$/.test(url.protocol)) return uri;
  url.username = '';
  url.password = '';
  const kept = [...url.searchParams].filter(([name]) => !SECRET_QUERY_PARAMS.has(name.toLowerCase()));
  const search = new URLSearchParams(kept).toString();
  return `${url.origin}${url.pathname}${search ? `?${search}` : ''}${url.hash}`;
}

const AUTH_HEADER = /\b((?:proxy-)?authorization|x-amz-security-token|x-api-key|cookie|set-cookie)(["']?\s*[:=]\s*["']?)([^"'\r\n,;}]+)/gi;
const SCHEME_CREDENTIALS = /\b(Basic|Bearer|Digest|AWS4-HMAC-SHA256|Token)\s+[A-Za-z0-9._~+/=,:-]{6,}/g;
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@"'<>]+@/gi;
/** Names whose value is a secret: `password`, `db_password`, `aws_secret_access_key`, `x-api-key`, `client_secret`, `token`… */
const SECRET_NAME = String.raw`[A-Za-z0-9_.-]*?(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|session[_-]?key|credentials?|signature)[A-Za-z0-9_.-]*`;
/** `name=value` in free text (a command line, a config dump, a query string), the value quoted or not. */
const KEY_VALUE = new RegExp(String.raw`\b(${SECRET_NAME})(\s*=\s*)(?!\[redacted\])("[^"\r\n]*"|'[^'\r\n]*'|[^\s&,;"'<>)\]}]+)`, 'gi');
/** `"name": "value"` in JSON. */
const JSON_KEY_VALUE = new RegExp(String.raw`(["'])(${SECRET_NAME})\1(\s*:\s*)"(?:[^"\\\r\n]|\\.)*"`, 'gi');
const SIGNED_QUERY = new RegExp(`([?&](?:${[...SECRET_QUERY_PARAMS].map((p) => p.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&')).join('|')})=)[^&\\s"'<>]*`, 'gi');

/**
 * Text from elsewhere (a stage's error body, an exception message) without credentials:
 * Authorization-like header values, `Basic …`/`Bearer …` credentials, user:password in URLs,
 * signing query parameters, and the values of `password=…`, `aws_secret_access_key=…`,
 * `token=…`-like pairs (and their JSON form) are replaced by `[redacted]`.
 */
export function scrubSecrets(text: string): string {
  return text
    .replace(AUTH_HEADER, (_m, name: string, sep: string) => `${name}${sep}[redacted]`)
    .replace(SCHEME_CREDENTIALS, (_m, scheme: string) => `${scheme} [redacted]`)
    .replace(URL_USERINFO, '$1[redacted]@')
    .replace(SIGNED_QUERY, '$1[redacted]')
    .replace(KEY_VALUE, (_m, name: string, sep: string) => `${name}${sep}[redacted]`)
    .replace(JSON_KEY_VALUE, (_m, quote: string, name: string, sep: string) => `${quote}${name}${quote}${sep}"[redacted]"`);
}

/** Longest error message kept in state.json and answers. */
export const MAX_ERROR_CHARS = 2000;

/** `text` cut to `max` characters, marked so a reader knows something was dropped. */
export function truncateText(text: string, max: number): string {
  if (text.length <= max) return text;
  const dropped = text.length - max;
  return `${text.slice(0, max)}… [${dropped} more characters truncated]`;
}
