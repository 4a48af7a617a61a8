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

/**
 * A scalar schema's test as data (a string, boolean or bounded number, nullable or not), so that
 * an array of such values is checked in one loop, with no call per value: most of a state file's
 * values are in such arrays (the columns of its record tables), and a call per value was most of
 * what checking them cost before the code is optimized, which is when a restarted process reads.
 */
interface Scalar {
  type: 'string' | 'boolean' | 'number';
  nullable: boolean;
  int: boolean;
  min: number;
  minInclusive: boolean;
  max: number;
  maxInclusive: boolean;
}

/** The scalar test of `schema`, or null when it is not one (any check but a number's bounds and integrality). */
function scalarOf(schema: z.core.$ZodType): Scalar | null {
  const def = defOf(schema);
  if (def.coerce) return null;
  if (def.type === 'nullable') {
    const inner = def.innerType ? scalarOf(def.innerType) : null;
    return inner && { ...inner, nullable: true };
  }
  if (def.type !== 'string' && def.type !== 'boolean' && def.type !== 'number') return null;
  const scalar: Scalar = { type: def.type, nullable: false, int: false, min: -Infinity, minInclusive: true, max: Infinity, maxInclusive: true };
  for (const { _zod } of def.checks ?? []) {
    const check = _zod.def;
    if (def.type !== 'number') return null;
    if (check.check === 'number_format' && check.format === 'safeint') scalar.int = true;
    else if ((check.check === 'greater_than' || check.check === 'less_than') && typeof check.value === 'number') {
      // Several bounds on one side: the tightest holds them all.
      const bound = check.value;
      const inclusive = check.inclusive === true;
      if (check.check === 'greater_than') {
        if (bound === scalar.min) scalar.minInclusive &&= inclusive;
        else if (bound > scalar.min) {
          scalar.min = bound;
          scalar.minInclusive = inclusive;
        }
      } else if (bound === scalar.max) scalar.maxInclusive &&= inclusive;
      else if (bound < scalar.max) {
        scalar.max = bound;
        scalar.maxInclusive = inclusive;
      }
    } else return null;
  }
  return scalar;
}

/** The scalar test of one value. */
function isScalar(v: unknown, s: Scalar): boolean {
  if (v === null) return s.nullable;
  if (s.type !== 'number') return typeof v === s.type;
  return typeof v === 'number' && (s.int ? Number.isSafeInteger(v) : Number.isFinite(v)) && (s.minInclusive ? v >= s.min : v > s.min) && (s.maxInclusive ? v <= s.max : v < s.max);
}

/** Every element of `v` (holes included, as the schema reads them) passes the scalar test. */
function everyScalar(v: readonly unknown[], s: Scalar): boolean {
  const { type, nullable, int, min, minInclusive, max, maxInclusive } = s;
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (x === null) {
      if (!nullable) return false;
    } else if (type !== 'number') {
      if (typeof x !== type) return false;
    } else if (typeof x !== 'number' || !(int ? Number.isSafeInteger(x) : Number.isFinite(x)) || !(minInclusive ? x >= min : x > min) || !(maxInclusive ? x <= max : x < max)) {
      return false;
    }
  }
  return true;
}

/** Every element of `v` (holes included) passes `element`. */
function everyOf(v: readonly unknown[], element: PlainPredicate): boolean {
  for (let i = 0; i < v.length; i++) if (!element(v[i])) return false;
  return true;
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
      const scalar = scalarOf(schema);
      return scalar ? (v) => isScalar(v, scalar) : never;
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
      const scalar = def.element ? scalarOf(def.element) : null;
      if (scalar) return (v) => Array.isArray(v) && everyScalar(v, scalar);
      const element = def.element ? plainValues(def.element) : never;
      return (v) => Array.isArray(v) && everyOf(v, element);
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
