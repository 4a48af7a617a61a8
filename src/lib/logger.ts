import { pino, type Logger, type DestinationStream } from 'pino';

/** Paths of everything that may carry a credential; pino replaces them before writing. */
export const REDACT_PATHS = [
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'password',
  '*.password',
  'secretAccessKey',
  '*.secretAccessKey',
  'accessKeyId',
  '*.accessKeyId',
  'gatewayAuth',
  '*.gatewayAuth',
  'systemAuth',
  '*.systemAuth',
  'auth',
  '*.auth',
  'basicAuth',
  '*.basicAuth',
  '*.*.password',
  '*.*.authorization',
  'cookie',
  '*.cookie',
  '*.headers.cookie',
  'secretKey',
  '*.secretKey',
  'ARTIFACT_SECRET_KEY',
  '*.ARTIFACT_SECRET_KEY',
  'BASIC_AUTH_PASSWORD',
  '*.BASIC_AUTH_PASSWORD',
];

/**
 * JSON lines with the fields the Python stages log: request_id, stage, event. On a terminal
 * (stderr is one), lines a person reads instead; a pipe or a log collector still gets JSON.
 */
export function createLogger(level: string, destination: DestinationStream | number = 2): Logger {
  const terminal = destination === 2 && process.stderr.isTTY === true;
  return pino(
    {
      level,
      base: { service: 'fave-orchestrator' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    typeof destination !== 'number' ? destination : terminal ? humanLines(process.stderr) : pino.destination({ fd: destination, sync: false }),
  );
}

const LEVEL_NAMES: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
/** Fields every line has, or that the line's head already shows. */
const HEAD_FIELDS = new Set(['level', 'time', 'service', 'event', 'msg', 'message', 'pid', 'hostname']);

/**
 * One pino JSON line as text: `12:00:01 info listening url=http://… store=fs`. Values with spaces
 * are quoted; anything that is not a JSON object is passed through unchanged. Redaction has
 * already happened: pino applies it before a line is written.
 */
export function formatLogLine(line: string): string {
  let entry: unknown;
  try {
    entry = JSON.parse(line);
  } catch {
    return line;
  }
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return line;
  const fields = entry as Record<string, unknown>;
  const time = typeof fields.time === 'string' ? (/T(\d{2}:\d{2}:\d{2})/.exec(fields.time)?.[1] ?? fields.time) : '';
  const level = typeof fields.level === 'number' ? (LEVEL_NAMES[fields.level] ?? String(fields.level)) : '';
  const head = [time, level, fields.event, fields.message ?? fields.msg].filter((part) => typeof part === 'string' && part !== '');
  const rest = Object.entries(fields)
    .filter(([key, value]) => !HEAD_FIELDS.has(key) && value !== undefined)
    .map(([key, value]) => `${key}=${typeof value === 'string' ? (/[\s"=]/.test(value) || value === '' ? JSON.stringify(value) : value) : JSON.stringify(value)}`);
  return `${[...head, ...rest].join(' ')}\n`;
}

function humanLines(out: NodeJS.WritableStream): DestinationStream {
  return {
    write(chunk: string) {
      for (const line of chunk.split('\n')) if (line !== '') out.write(formatLogLine(line));
    },
  };
}
