import { z } from 'zod';
import { zodIssue } from './zod-issue.ts';

/**
 * Environment settings, read alike by every part that has some (the process configuration, the
 * local stages, live inspection): the same words for true and false, an empty variable counted as
 * unset, and a failure that names the variable.
 */

/** The one boolean of the environment: true/false, 1/0 or yes/no, in any case. */
export const envBoolean = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.enum(['true', 'false', '1', '0', 'yes', 'no']))
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

/** An integer setting within its bounds. */
export const envInt = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

export type EnvReading<T> = { ok: true; data: T } | { ok: false; variable: string; problem: string };

/**
 * Reads the variables `schema` declares (those starting with `prefix`, when given); `variable`
 * names the first invalid one (`fallback` when zod names none).
 */
export function readEnv<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv, fallback: string, prefix = ''): EnvReading<z.infer<S>> {
  const parsed = schema.safeParse(Object.fromEntries(Object.entries(env).filter(([k, v]) => k.startsWith(prefix) && v !== '')));
  if (parsed.success) return { ok: true, data: parsed.data };
  const issue = zodIssue(parsed.error);
  return { ok: false, variable: issue.path ?? fallback, problem: `is invalid: ${issue.message}` };
}
