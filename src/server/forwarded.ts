import type { HttpRequestLike } from './types.ts';

/**
 * Where the caller reaches this service. Behind the OpenFaaS gateway the function sees `/` for
 * `/function/orchestrator/`, so a proxy may announce its prefix in `X-Forwarded-Prefix`.
 */
export function basePath(request: HttpRequestLike): string {
  const prefix = request.headers['x-forwarded-prefix']?.trim() ?? '';
  // A path of plain segments only: never `//host` (a protocol-relative URL in Location).
  return /^(?:\/[A-Za-z0-9._~-]+)+\/?$/.test(prefix) ? prefix.replace(/\/+$/, '') : '';
}

/** Whether the caller reached this service over https (directly or through a proxy that says so). */
export function secureRequest(request: HttpRequestLike): boolean {
  return request.headers['x-forwarded-proto']?.split(',')[0]?.trim().toLowerCase() === 'https';
}
