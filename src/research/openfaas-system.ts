import { setTimeout as sleep } from 'node:timers/promises';
import { faveError, FaveFailure } from '../domain/errors.ts';
import { SystemApiError, type FunctionStatus, type OpenFaasSystemClient } from '../transport/openfaas-system.ts';

/**
 * Setting a replica regime before a run, through the same system API client pre-warming uses:
 * every function is scaled, then polled until it reports the target. A run must not start in a
 * regime other than the one its results file names, so here (unlike pre-warming) a refusal stops
 * the run.
 */

/**
 * Whether a function reports the target: its desired and its available replicas. A gateway that
 * does not report `availableReplicas` is taken at its desired count.
 */
export function atTarget(status: FunctionStatus, replicas: number): boolean {
  return status.replicas === replicas && (status.availableReplicas ?? status.replicas) === replicas;
}

/** The system API's refusal as a typed error, saying which login a 401/403 wants. */
function asFailure(err: unknown): FaveFailure {
  if (!(err instanceof SystemApiError)) return new FaveFailure(faveError('STAGE_TRANSPORT', err instanceof Error ? err.message : String(err)));
  if (err.status === null) return new FaveFailure(faveError('STAGE_TRANSPORT', `${err.message}: the gateway did not answer`));
  const hint = err.status === 401 || err.status === 403 ? ' (give the gateway admin login: OPENFAAS_USERNAME/OPENFAAS_PASSWORD, or the basic-auth secrets)' : '';
  const code = err.status === 404 ? 'STAGE_NOT_FOUND' : err.status === 200 ? 'STAGE_CONTRACT' : 'STAGE_HTTP_ERROR';
  return new FaveFailure(faveError(code, `${err.message}${hint}`, { http_status: err.status }));
}

/**
 * Scales every function to `replicas` and waits until each reports it, polling every `everyMs`
 * for at most `timeoutMs`; fails naming the functions still away from the target.
 */
export async function scaleAndWait(
  client: OpenFaasSystemClient,
  names: readonly string[],
  replicas: number,
  options: { timeoutMs: number; everyMs?: number; onPoll?: (pending: string[]) => void },
): Promise<void> {
  try {
    for (const name of names) await client.scale(name, replicas);
    const deadline = Date.now() + options.timeoutMs;
    let pending = [...names];
    for (;;) {
      const statuses = await Promise.all(pending.map(async (name) => ({ name, status: await client.getFunction(name) })));
      const away = statuses.filter(({ status }) => !atTarget(status, replicas));
      pending = away.map(({ name }) => name);
      options.onPoll?.(pending);
      if (pending.length === 0) return;
      if (Date.now() > deadline) {
        const detail = away.map(({ name, status }) => `${name} (replicas ${status.replicas}, available ${status.availableReplicas ?? '?'})`).join(', ');
        throw new FaveFailure(faveError('STAGE_TIMEOUT', `not at ${replicas} replicas after ${Math.round(options.timeoutMs / 1000)} s: ${detail}`));
      }
      await sleep(options.everyMs ?? 1000);
    }
  } catch (err) {
    throw err instanceof FaveFailure ? err : asFailure(err);
  }
}
