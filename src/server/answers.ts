import { contentSecurityPolicy } from '../ui/html.ts';
import type { HttpResponseLike } from './types.ts';

/** Headers of every JSON and HTML answer of this service: nothing is cached, sniffed, framed or referred. */
const COMMON_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
} as const;

export function jsonAnswer(status: number, body: unknown, headers: Record<string, string> = {}): HttpResponseLike {
  return { status, headers: { 'content-type': 'application/json; charset=utf-8', ...COMMON_HEADERS, ...headers }, body: JSON.stringify(body) };
}

export interface HtmlOptions {
  /** A live page may fetch its own JSON and the request's artifacts from this server. */
  live?: boolean;
  /** A page with a form that posts back to this server. */
  form?: boolean;
  headers?: Record<string, string>;
}

export function htmlAnswer(status: number, body: string, options: HtmlOptions = {}): HttpResponseLike {
  return {
    status,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': contentSecurityPolicy(options.live ?? false, null, options.form ?? false),
      ...COMMON_HEADERS,
      ...options.headers,
    },
    body,
  };
}

export function withHeaders(response: HttpResponseLike, headers: Record<string, string>): HttpResponseLike {
  return { ...response, headers: { ...response.headers, ...headers } };
}
