import type { InspectionEvent, Observer } from 'xstate';
import { z } from 'zod';
import { FaveFailure, faveError } from '../domain/errors.ts';
import { readEnv, envBoolean } from '../lib/env.ts';

/**
 * Live inspection of the running machines with `@statelyai/inspect`, the XState 5 successor of
 * `@xstate/inspect` (which only works with XState 4). Off unless `FAVE_INSPECT` asks for it:
 * - `FAVE_INSPECT=true` sends every actor, event and snapshot to a WebSocket relay at
 *   `FAVE_INSPECT_URL` (default `ws://localhost:8080`), e.g. the one
 *   `createInspectorServer()` from `@statelyai/inspect/server` starts;
 * - `FAVE_INSPECT=sky` sends them to Stately's hosted inspector (stately.ai) and prints the
 *   link: only for data that may leave the machine.
 * Invocation records are summarised in the inspected contexts: a large request would otherwise
 * send its whole history with every snapshot.
 */

export interface Inspector {
  /** For `createActor(machine, { inspect })`. */
  inspect: Observer<InspectionEvent>;
  /** Closes the connection to the inspector. */
  stop(): void;
  /** Where the events go. */
  target: string;
}

const InspectSettings = z.object({
  // `sky`, or the one boolean of the environment (true: a websocket relay).
  FAVE_INSPECT: z.union([z.string().trim().toLowerCase().pipe(z.literal('sky')), envBoolean.transform((on) => (on ? ('websocket' as const) : ('off' as const)))]).default('off'),
  FAVE_INSPECT_URL: z.url({ protocol: /^wss?$/ }).default('ws://localhost:8080'),
});

/** Replaces every `records` array by its length: inspection shows where a request is, not its history. */
export function summarizeRecords(value: unknown, depth = 0): unknown {
  if (depth > 6 || typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map((v) => summarizeRecords(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    out[key] = key === 'records' && Array.isArray(inner) ? `${inner.length} invocation record${inner.length === 1 ? '' : 's'}` : summarizeRecords(inner, depth + 1);
  }
  return out;
}

/** The inspector the settings ask for, or null (the default); its package loads only when asked. */
export async function createInspector(env: NodeJS.ProcessEnv = process.env): Promise<Inspector | null> {
  const parsed = readEnv(InspectSettings, env, 'FAVE_INSPECT', 'FAVE_INSPECT');
  if (!parsed.ok) throw new FaveFailure(faveError('BAD_CONFIG', `${parsed.variable} ${parsed.problem}`, { field: parsed.variable }));
  const settings = parsed.data;
  const options = {
    sanitizeContext: (context: Record<string, unknown>) => summarizeRecords(context) as Record<string, unknown>,
  };
  if (settings.FAVE_INSPECT === 'off') return null;
  const { createSkyInspector, createWebSocketInspector } = await import('@statelyai/inspect');
  if (settings.FAVE_INSPECT === 'sky') {
    const inspector = createSkyInspector({ ...options, onerror: (err) => process.stderr.write(`fave: inspector: ${err.message}\n`) });
    return { inspect: inspector.inspect, stop: () => inspector.stop(), target: 'stately.ai' };
  }
  const inspector = createWebSocketInspector({ ...options, url: settings.FAVE_INSPECT_URL });
  return { inspect: inspector.inspect, stop: () => inspector.stop(), target: settings.FAVE_INSPECT_URL };
}
