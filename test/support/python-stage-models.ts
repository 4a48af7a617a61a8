/**
 * A stand-in of the Python stages' pydantic models, `StagePayload` (what every stage validates
 * its request body with) and `StageResult` (what a stage answers on success), with pydantic's
 * own error text. Written apart from the orchestrator's contract schemas on purpose: a request
 * the orchestrator builds wrongly must fail here the way it fails against the real stages.
 *
 * Pydantic's lax mode as the stages use it: a `str` field takes only a string, a `dict` field
 * only an object, `Optional[...]` also takes null; fields with a default may be absent; unknown
 * fields are ignored.
 */

type FieldType =
  | { kind: 'str' }
  | { kind: 'int' }
  | { kind: 'float' }
  | { kind: 'bool' }
  | { kind: 'dict' }
  | { kind: 'optional'; of: FieldType }
  | { kind: 'list'; of: FieldType }
  | { kind: 'model'; model: Model };

interface Field {
  type: FieldType;
  /** Absent fields get this; a field without one is required. */
  default?: () => unknown;
}

interface Model {
  name: string;
  fields: Record<string, Field>;
}

const str: FieldType = { kind: 'str' };
const dict: FieldType = { kind: 'dict' };
const optional = (of: FieldType): FieldType => ({ kind: 'optional', of });

/** `class StagePayload(BaseModel)` of the stages' shared module. */
export const STAGE_PAYLOAD: Model = {
  name: 'StagePayload',
  fields: {
    request_id: { type: str },
    stage: { type: str },
    input_uri: { type: str },
    output_hint: { type: optional(str), default: () => null },
    config: { type: dict, default: () => ({}) },
    fanout: { type: dict, default: () => ({}) },
  },
};

const STAGE_OUTPUT: Model = {
  name: 'StageOutput',
  fields: { type: { type: str }, uri: { type: str }, metadata: { type: dict, default: () => ({}) } },
};

const STAGE_METRICS: Model = {
  name: 'StageMetrics',
  fields: {
    duration_ms: { type: { kind: 'float' } },
    memory_limit_mb: { type: { kind: 'int' } },
    cold_start: { type: { kind: 'bool' } },
    cost_unit: { type: { kind: 'float' } },
    extra: { type: dict, default: () => ({}) },
  },
};

/** `class StageResult(BaseModel)`: a successful (or skipped/simulated) stage answer. */
export const STAGE_RESULT: Model = {
  name: 'StageResult',
  fields: {
    request_id: { type: str },
    stage: { type: str },
    outputs: { type: { kind: 'list', of: { kind: 'model', model: STAGE_OUTPUT } } },
    metrics: { type: { kind: 'model', model: STAGE_METRICS } },
    status: { type: str },
    message: { type: optional(str), default: () => null },
  },
};

export interface StagePayload {
  request_id: string;
  stage: string;
  input_uri: string;
  output_hint: string | null;
  config: Record<string, unknown>;
  fanout: Record<string, unknown>;
}

export type Validated<T> = { ok: true; value: T } | { ok: false; message: string };

/** `StagePayload(**body)`: the payload, or pydantic's ValidationError text. */
export function validateStagePayload(body: unknown): Validated<StagePayload> {
  return validate<StagePayload>(STAGE_PAYLOAD, body);
}

/** `StageResult(**body)`: the result, or pydantic's ValidationError text. */
export function validateStageResult(body: unknown): Validated<Record<string, unknown>> {
  return validate<Record<string, unknown>>(STAGE_RESULT, body);
}

interface Issue {
  loc: Array<string | number>;
  msg: string;
  type: string;
  input: unknown;
}

function validate<T>(model: Model, body: unknown): Validated<T> {
  const issues: Issue[] = [];
  const value = checkModel(model, body, [], issues);
  if (issues.length === 0) return { ok: true, value: value as T };
  const count = issues.length === 1 ? '1 validation error' : `${issues.length} validation errors`;
  const lines = [`${count} for ${model.name}`];
  for (const issue of issues) {
    lines.push(issue.loc.join('.'));
    lines.push(`  ${issue.msg} [type=${issue.type}, input_value=${pyRepr(issue.input)}, input_type=${pyType(issue.input)}]`);
    lines.push(`    For further information visit https://errors.pydantic.dev/2.11/v/${issue.type}`);
  }
  return { ok: false, message: lines.join('\n') };
}

function checkModel(model: Model, input: unknown, loc: Array<string | number>, issues: Issue[]): unknown {
  if (!isPlainObject(input)) {
    issues.push({ loc, msg: `Input should be a valid dictionary or instance of ${model.name}`, type: 'model_type', input });
    return input;
  }
  const out: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(model.fields)) {
    if (!Object.hasOwn(input, name)) {
      if (field.default) out[name] = field.default();
      else issues.push({ loc: [...loc, name], msg: 'Field required', type: 'missing', input });
      continue;
    }
    out[name] = checkValue(field.type, input[name], [...loc, name], issues);
  }
  return out;
}

function checkValue(type: FieldType, value: unknown, loc: Array<string | number>, issues: Issue[]): unknown {
  const fail = (msg: string, kind: string) => {
    issues.push({ loc, msg, type: kind, input: value });
    return value;
  };
  switch (type.kind) {
    case 'str':
      return typeof value === 'string' ? value : fail('Input should be a valid string', 'string_type');
    case 'int':
      return typeof value === 'number' && Number.isInteger(value) ? value : fail('Input should be a valid integer', 'int_type');
    case 'float':
      return typeof value === 'number' && Number.isFinite(value) ? value : fail('Input should be a valid number', 'float_type');
    case 'bool':
      return typeof value === 'boolean' ? value : fail('Input should be a valid boolean', 'bool_type');
    case 'dict':
      return isPlainObject(value) ? value : fail('Input should be a valid dictionary', 'dict_type');
    case 'optional':
      return value === null ? null : checkValue(type.of, value, loc, issues);
    case 'list':
      return Array.isArray(value) ? value.map((item, i) => checkValue(type.of, item, [...loc, i], issues)) : fail('Input should be a valid list', 'list_type');
    case 'model':
      return checkModel(type.model, value, loc, issues);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function pyType(value: unknown): string {
  if (value === null || value === undefined) return 'NoneType';
  if (typeof value === 'string') return 'str';
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'float';
  if (Array.isArray(value)) return 'list';
  return 'dict';
}

/** Python's repr of a JSON value, cut like pydantic cuts long inputs. */
function pyRepr(value: unknown): string {
  const text = repr(value);
  return text.length > 100 ? `${text.slice(0, 48)}...${text.slice(-48)}` : text;
}

function repr(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  if (Array.isArray(value)) return `[${value.map(repr).join(', ')}]`;
  return `{${Object.entries(value as Record<string, unknown>)
    .map(([k, v]) => `${repr(k)}: ${repr(v)}`)
    .join(', ')}}`;
}
