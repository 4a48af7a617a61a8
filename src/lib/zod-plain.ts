import { z } from 'zod';

/**
 * Validation of large, regular JSON in one pass, with a zod schema's answer.
 *
 * zod checks a value by running a schema per field and per array element, allocating a result
 * for each; on a state file of a million values that is most of the time it takes to read. Most
 * of those values are plain (numbers, short strings, nulls, small objects of them), and for
 * plain values the schema's answer can be read off its definition: `plainValues(schema)` builds
 * a predicate that is true only of values the schema accepts and gives back unchanged (deep
 * equal). Anything else it does not recognize, it answers false for, and `fast(schema)` then asks
 * the schema itself, so what is refused and the message why are always the schema's own.
 */

export type PlainPredicate = (value: unknown) => boolean;

const never: PlainPredicate = () => false;

/** The parts of a zod definition read here; every other kind of schema is never plain. */
interface Def {
  type: string;
  coerce?: boolean;
  checks?: ReadonlyArray<{ _zod: { def: CheckDef } }>;
  innerType?: z.core.$ZodType;
  element?: z.core.$ZodType;
  shape?: Record<string, z.core.$ZodType>;
  catchall?: z.core.$ZodType;
  entries?: Record<string, unknown>;
  keyType?: z.core.$ZodType;
  valueType?: z.core.$ZodType;
  values?: readonly unknown[];
}
interface CheckDef {
  check: string;
  format?: string;
  value?: unknown;
  inclusive?: boolean;
}

const defOf = (schema: z.core.$ZodType): Def => schema._zod.def as Def;

export const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype && !Object.hasOwn(value, '__proto__');

function numberCheck(check: CheckDef): PlainPredicate | null {
  if (check.check === 'number_format' && check.format === 'safeint') return (v) => Number.isSafeInteger(v);
  if ((check.check === 'greater_than' || check.check === 'less_than') && typeof check.value === 'number') {
    const bound = check.value;
    if (check.check === 'greater_than') return check.inclusive ? (v) => (v as number) >= bound : (v) => (v as number) > bound;
    return check.inclusive ? (v) => (v as number) <= bound : (v) => (v as number) < bound;
  }
  return null;
}

/** A predicate true only of values `schema` accepts and gives back as they are (see above). */
export function plainValues(schema: z.core.$ZodType): PlainPredicate {
  const def = defOf(schema);
  if (def.coerce) return never;
  const checks = def.checks ?? [];
  if (def.type !== 'number' && checks.length > 0) return never;
  switch (def.type) {
    case 'string':
      return (v) => typeof v === 'string';
    case 'boolean':
      return (v) => typeof v === 'boolean';
    case 'null':
      return (v) => v === null;
    case 'number': {
      const conditions: PlainPredicate[] = [];
      for (const check of checks) {
        const condition = numberCheck(check._zod.def);
        if (!condition) return never;
        conditions.push(condition);
      }
      const [first, second, ...more] = conditions;
      if (more.length > 0) return (v) => typeof v === 'number' && Number.isFinite(v) && conditions.every((condition) => condition(v));
      if (second && first) return (v) => typeof v === 'number' && Number.isFinite(v) && first(v) && second(v);
      if (first) return (v) => typeof v === 'number' && Number.isFinite(v) && first(v);
      return (v) => typeof v === 'number' && Number.isFinite(v);
    }
    case 'enum': {
      const values = new Set(Object.values(def.entries ?? {}));
      return (v) => values.has(v);
    }
    case 'literal': {
      const values = new Set(def.values ?? []);
      return (v) => values.has(v);
    }
    case 'nullable': {
      const inner = def.innerType ? plainValues(def.innerType) : never;
      return (v) => v === null || inner(v);
    }
    case 'optional': {
      const inner = def.innerType ? plainValues(def.innerType) : never;
      return (v) => v === undefined || inner(v);
    }
    case 'array': {
      const element = def.element ? plainValues(def.element) : never;
      return (v) => Array.isArray(v) && v.every(element);
    }
    case 'object':
      return plainObject(def);
    case 'unknown':
    case 'any':
      return () => true;
    case 'record': {
      const keys = def.keyType ? defOf(def.keyType) : null;
      if (keys?.type !== 'string' || (keys.checks ?? []).length > 0) return never;
      const value = def.valueType ? plainValues(def.valueType) : never;
      return (v) => {
        if (!isPlainObject(v)) return false;
        for (const key in v) if (!value(v[key])) return false;
        return true;
      };
    }
    default:
      return never;
  }
}

function plainObject(def: Def): PlainPredicate {
  const catchall = def.catchall ? defOf(def.catchall).type : 'strip';
  // Extra keys: dropped (strip) or refused (never) by the schema, so such an object is not plain; kept as they are by a catchall of unknown.
  const extraKeysKept = catchall === 'unknown';
  if (!extraKeysKept && catchall !== 'strip' && catchall !== 'never') return never;
  const fields = Object.entries(def.shape ?? {}).map(([key, schema]) => ({ key, plain: plainValues(schema), optional: defOf(schema).type === 'optional' }));
  return (v) => {
    if (!isPlainObject(v)) return false;
    let present = 0;
    for (let i = 0; i < fields.length; i++) {
      const field = fields[i]!;
      const value = v[field.key];
      if (value === undefined) {
        if (!field.optional) return false;
      } else if (!field.plain(value)) return false;
      else present++;
    }
    if (extraKeysKept) return true;
    // No key beyond the fields found: any other (or a field's key holding undefined) is not plain.
    let count = 0;
    for (const _key in v) count++;
    return count === present;
  };
}

/**
 * `schema`, answering at once for a plain value (`plain`, by default read off the schema) and
 * running the schema for any other. A failure is reported with the schema's paths and messages.
 */
export function fast<T extends z.ZodType>(schema: T, plain: PlainPredicate = plainValues(schema)) {
  return z.unknown().transform((value, ctx): z.output<T> => {
    if (plain(value)) return value as z.output<T>;
    const result = schema.safeParse(value);
    if (result.success) return result.data;
    for (const issue of result.error.issues) ctx.issues.push({ code: 'custom', path: issue.path, message: issue.message, input: value });
    return z.NEVER;
  });
}
