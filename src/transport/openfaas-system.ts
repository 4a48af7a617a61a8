import { z } from 'zod';

/**
 * The part of OpenFaaS's gateway system API a scaler needs: a function's replicas and a scale
 * call. `/system/*` takes the gateway's basic auth (its admin user on the Community Edition).
 * Pre-warming and `fave load --cold/--warm` both call the gateway through this one client, with
 * the one login `Config.systemAuth`.
 */

/** What `GET /system/function/{name}` answers; unknown fields are ignored. */
export const FunctionStatusSchema = z.looseObject({
  name: z.string(),
  replicas: z.number().int().min(0),
  availableReplicas: z.number().int().min(0).optional(),
  invocationCount: z.number().min(0).optional(),
  envVars: z.record(z.string(), z.string()).nullable().optional(),
  labels: z.record(z.string(), z.string()).nullable().optional(),
});
export type FunctionStatus = z.infer<typeof FunctionStatusSchema>;

/** A refusal or failure of the system API, with the HTTP status when there was one. */
export class SystemApiError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
  ) {
    super(message);
    this.name = 'SystemApiError';
  }
}

export interface SystemClientOptions {
  gatewayUrl: string;
  auth: { user: string; password: string } | null;
  /** Every call is bounded by this (default 2 s): scaling is an optimisation and must never hang. */
  timeoutMs?: number;
}

const MAX_BODY_BYTES = 1024 * 1024;

export class OpenFaasSystemClient {
  private readonly base: string;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;

  constructor(options: SystemClientOptions) {
    this.base = options.gatewayUrl.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.headers = options.auth ? { Authorization: `Basic ${Buffer.from(`${options.auth.user}:${options.auth.password}`).toString('base64')}` } : {};
  }

  /** `GET /system/functions`: whether the API answers with these credentials (throws SystemApiError). */
  async listFunctions(): Promise<FunctionStatus[]> {
    const body = await this.request('GET', '/system/functions');
    const parsed = z.array(FunctionStatusSchema).safeParse(body);
    if (!parsed.success) throw new SystemApiError('GET /system/functions answered an unexpected shape', 200);
    return parsed.data;
  }

  async getFunction(name: string): Promise<FunctionStatus> {
    const body = await this.request('GET', `/system/function/${encodeURIComponent(name)}`);
    const parsed = FunctionStatusSchema.safeParse(body);
    if (!parsed.success) throw new SystemApiError(`GET /system/function/${name} answered an unexpected shape`, 200);
    return parsed.data;
  }

  async scale(name: string, replicas: number): Promise<void> {
    await this.request('POST', `/system/scale-function/${encodeURIComponent(name)}`, { serviceName: name, replicas });
  }

  private async request(method: 'GET' | 'POST', path: string, json?: unknown): Promise<unknown> {
    const signal = AbortSignal.timeout(this.timeoutMs);
    let response: Response;
    try {
      response = await fetch(`${this.base}${path}`, {
        method,
        headers: { ...this.headers, ...(json !== undefined ? { 'Content-Type': 'application/json' } : {}) },
        ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
        signal,
      });
    } catch (err) {
      const why = signal.aborted ? `no answer within ${this.timeoutMs} ms` : err instanceof Error ? err.message : String(err);
      throw new SystemApiError(`${method} ${path}: ${why}`, null);
    }
    const text = await readCapped(response, MAX_BODY_BYTES).catch(() => '');
    if (!response.ok) {
      // The gateway's own words (e.g. "function not found") say more than the status; kept short.
      const said = text.replace(/\s+/g, ' ').trim().slice(0, 200);
      throw new SystemApiError(`${method} ${path} answered HTTP ${response.status}${said ? `: ${said}` : ''}`, response.status);
    }
    if (method === 'POST' || text.trim() === '') return null;
    try {
      return JSON.parse(text);
    } catch {
      throw new SystemApiError(`${method} ${path} answered a body that is not JSON`, response.status);
    }
  }
}

/** The body as text, refused past `limit` bytes (a function list is small; anything larger is not one). */
async function readCapped(response: Response, limit: number): Promise<string> {
  if (!response.body) return '';
  // The fetch typings leave the chunk type open; a fetch body yields bytes.
  const reader: ReadableStreamDefaultReader<Uint8Array> = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw new Error(`body larger than ${limit} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
