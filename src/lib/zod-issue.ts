import type { z } from 'zod';

/**
 * The first offending input of a zod failure: where it is (`outputs[0].uri`, unknown keys named
 * together, `null` for the value itself) and what is wrong with it. Every edge that validates
 * with zod reports its failure through these, so they all read alike.
 */
export interface ZodIssueText {
  path: string | null;
  message: string;
  /** The value has keys its schema does not declare (`path` names them). */
  unknownKeys: boolean;
}

export function zodIssue(error: z.ZodError): ZodIssueText {
  const issue = error.issues[0];
  if (!issue) return { path: null, message: 'invalid value', unknownKeys: false };
  if (issue.code === 'unrecognized_keys' && issue.keys.length > 0) return { path: issue.keys.join(', '), message: issue.message, unknownKeys: true };
  const path = issue.path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('');
  return { path: path || null, message: issue.message, unknownKeys: false };
}

/** `outputs[0].uri: expected string`; the value itself is `root` unless the caller names it. */
export function describeZodIssue(error: z.ZodError, root = '(root)'): string {
  const { path, message } = zodIssue(error);
  return `${path ?? root}: ${message}`;
}
