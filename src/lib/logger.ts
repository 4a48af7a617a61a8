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

/** JSON lines with the fields the Python stages log: request_id, stage, event. */
export function createLogger(level: string, destination: DestinationStream | number = 2): Logger {
  return pino(
    {
      level,
      base: { service: 'fave-orchestrator' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    typeof destination === 'number' ? pino.destination({ fd: destination, sync: false }) : destination,
  );
}
