import { Agent, request } from 'undici';
import type { StageRequest } from '../contracts/stage.ts';
import type { StageCallOptions, StageHttpResponse, StageTransport } from './transport.ts';

export interface HttpTransportOptions {
  gatewayUrl: string;
  auth?: { user: string; password: string } | null;
  /** Sockets kept open to the gateway; calls beyond it queue inside undici. */
  connections?: number;
}

/** Calls `{GATEWAY_URL}/function/{name}` over a keep-alive pool. */
export class HttpTransport implements StageTransport {
  readonly kind = 'http' as const;
  private readonly agent: Agent;
  private readonly authorization: string | null;

  constructor(private readonly options: HttpTransportOptions) {
    this.agent = new Agent({
      connections: options.connections ?? 256,
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 600_000,
      // Timeouts are enforced per call through the AbortSignal, so undici's own are off.
      headersTimeout: 0,
      bodyTimeout: 0,
    });
    this.authorization = options.auth
      ? `Basic ${Buffer.from(`${options.auth.user}:${options.auth.password}`).toString('base64')}`
      : null;
  }

  async call(functionName: string, body: StageRequest, options: StageCallOptions): Promise<StageHttpResponse> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.authorization) headers.authorization = this.authorization;
    const response = await request(`${this.options.gatewayUrl}/function/${encodeURIComponent(functionName)}`, {
      method: 'POST',
      body: JSON.stringify(body),
      headers,
      signal: options.signal,
      dispatcher: this.agent,
    });
    const text = await response.body.text();
    const flat: Record<string, string> = {};
    for (const [name, value] of Object.entries(response.headers)) {
      if (value !== undefined) flat[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
    }
    return { status: response.statusCode, headers: flat, body: text };
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
