import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { faveError, FaveFailure } from '../domain/errors.ts';

/**
 * The OpenFaaS gateway's system API, for setting a replica regime before a run:
 * `POST /system/scale-function/{name}` with `{serviceName, replicas}`, then
 * `GET /system/function/{name}` until it reports that many replicas. Both need the gateway's
 * admin login (basic auth).
 */

export interface SystemApi {
  /** The gateway's base URL, e.g. http://127.0.0.1:8080. */
  gatewayUrl: string;
  auth: { user: string; password: string } | null;
  /** Per HTTP call (default 10 s). */
  callTimeoutMs?: number;
}

const FunctionStatusSchema = z.looseObject({
  name: z.string(),
  replicas: z.number().int().nullish(),
  availableReplicas: z.number().int().nullish(),
});
export type FunctionStatus = z.infer<typeof FunctionStatusSchema>;

function headers(api: SystemApi, json: boolean): Record<string, string> {
  const h: Record<string, string> = json ? { 'content-type': 'application/json' } : {};
  if (api.auth) h.authorization = `Basic ${Buffer.from(`${api.auth.user}:${api.auth.password}`).toString('base64')}`;
  return h;
}

async function call(api: SystemApi, method: 'GET' | 'POST', path: string, body?: unknown): Promise<Response> {
  const url = `${api.gatewayUrl.replace(/\/+$/, '')}${path}`;
  try {
    return await fetch(url, {
      method,
      headers: headers(api, body !== undefined),
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(api.callTimeoutMs ?? 10_000),
    });
  } catch (err) {
    throw new FaveFailure(faveError('STAGE_TRANSPORT', `${method} ${path}: the gateway did not answer (${(err as Error).message})`));
  }
}

async function refusal(response: Response, what: string): Promise<FaveFailure> {
  const text = (await response.text().catch(() => '')).slice(0, 300).trim();
  const hint = response.status === 401 || response.status === 403 ? ' (give the gateway admin login: --gateway-user/--gateway-password or OPENFAAS_USERNAME/OPENFAAS_PASSWORD)' : '';
  const code = response.status === 404 ? 'STAGE_NOT_FOUND' : 'STAGE_HTTP_ERROR';
  return new FaveFailure(faveError(code, `${what}: the gateway answered HTTP ${response.status}${text ? ` ${text}` : ''}${hint}`, { http_status: response.status }));
}

export async function functionStatus(api: SystemApi, name: string): Promise<FunctionStatus> {
  const response = await call(api, 'GET', `/system/function/${encodeURIComponent(name)}`);
  if (!response.ok) throw await refusal(response, `GET /system/function/${name}`);
  const parsed = FunctionStatusSchema.safeParse(await response.json().catch(() => null));
  if (!parsed.success) throw new FaveFailure(faveError('STAGE_CONTRACT', `GET /system/function/${name}: not a function status (${parsed.error.issues[0]?.message ?? 'unreadable'})`));
  return parsed.data;
}

export async function scaleFunction(api: SystemApi, name: string, replicas: number): Promise<void> {
  const response = await call(api, 'POST', `/system/scale-function/${encodeURIComponent(name)}`, { serviceName: name, replicas });
  // Drained so the connection can be reused; a scale call needs no answer body.
  await response.arrayBuffer().catch(() => undefined);
  if (!response.ok) throw await refusal(response, `POST /system/scale-function/${name}`);
}

/** Whether a function reports the target: both its desired and its available replicas. */
export function atTarget(status: FunctionStatus, replicas: number): boolean {
  return (status.replicas ?? 0) === replicas && (status.availableReplicas ?? 0) === replicas;
}

/**
 * Scales every function to `replicas` and waits until each reports it, polling every `everyMs`
 * for at most `timeoutMs`; fails naming the functions still away from the target.
 */
export async function scaleAndWait(
  api: SystemApi,
  names: readonly string[],
  replicas: number,
  options: { timeoutMs: number; everyMs?: number; onPoll?: (pending: string[]) => void },
): Promise<void> {
  for (const name of names) await scaleFunction(api, name, replicas);
  const deadline = Date.now() + options.timeoutMs;
  let pending = [...names];
  for (;;) {
    const statuses = await Promise.all(pending.map(async (name) => ({ name, status: await functionStatus(api, name) })));
    const away = statuses.filter(({ status }) => !atTarget(status, replicas));
    pending = away.map(({ name }) => name);
    options.onPoll?.(pending);
    if (pending.length === 0) return;
    if (Date.now() > deadline) {
      const detail = away.map(({ name, status }) => `${name} (replicas ${status.replicas ?? '?'}, available ${status.availableReplicas ?? '?'})`).join(', ');
      throw new FaveFailure(faveError('STAGE_TIMEOUT', `not at ${replicas} replicas after ${Math.round(options.timeoutMs / 1000)} s: ${detail}`));
    }
    await sleep(options.everyMs ?? 1000);
  }
}
