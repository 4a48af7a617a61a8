import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { classifyAddress } from '../input/addresses.ts';
import type { Config } from '../config/config.ts';
import { s3InputRefusal, type S3InputPolicy } from '../input/s3-input-rules.ts';
import { PipelineRequestSchema, REQUEST_ID_MESSAGE, REQUEST_ID_PATTERN, type PipelineRequest } from '../domain/request.ts';
import { apiError, type ApiError } from './error-policy.ts';
import { zodIssue } from '../lib/zod-issue.ts';

/** The largest request body accepted, checked before parsing (and while reading, by the server). */
export const MAX_BODY_BYTES = 1024 * 1024;

export type Checked<T> = { ok: true; value: T } | { ok: false; error: ApiError };

const refuse = (error: ApiError): { ok: false; error: ApiError } => ({ ok: false, error });
const badField = (field: string, message: string) => refuse(apiError('BAD_REQUEST', `${field}: ${message}`, field));

export function bodyBytes(body: Buffer | string | undefined): number {
  if (body === undefined) return 0;
  return typeof body === 'string' ? Buffer.byteLength(body) : body.length;
}

/** The body as JSON: 413 above the size limit, 400 when absent (if required) or not JSON. */
export function parseJsonBody(body: Buffer | string | undefined, required: boolean): Checked<unknown> {
  const size = bodyBytes(body);
  if (size > MAX_BODY_BYTES) {
    return refuse(apiError('PAYLOAD_TOO_LARGE', `body: ${size} bytes is more than the ${MAX_BODY_BYTES} allowed`, 'body'));
  }
  const text = body === undefined ? '' : typeof body === 'string' ? body : body.toString('utf8');
  if (text.trim() === '') return required ? badField('body', 'a JSON object is required') : { ok: true, value: undefined };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (err) {
    return badField('body', `not valid JSON (${(err as Error).message})`);
  }
}

/** Resolves a host name to every address it has (the default is the system resolver). */
export type HostLookup = (hostname: string) => Promise<Array<{ address: string; family: number }>>;

const systemLookup: HostLookup = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

const LOOKUP_TIMEOUT_MS = 5000;

export interface RequestCheckOptions {
  config: Config;
  headers: Record<string, string>;
  allowPrivateSources: boolean;
  lookup?: HostLookup;
}

/**
 * Everything that can be known about a new request before anything is stored: field types,
 * the profile, the request id (from the body, else the `X-Call-Id` an OpenFaaS gateway sets)
 * and where the video may be fetched from.
 */
export async function checkPipelineRequest(raw: unknown, options: RequestCheckOptions): Promise<Checked<PipelineRequest>> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return badField('body', 'must be a JSON object');
  const parsed = PipelineRequestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = zodIssue(parsed.error);
    return badField(issue.path ?? 'body', issue.unknownKeys ? 'unknown field (accepted: video_uri, query, profile, request_id)' : issue.message);
  }
  const request = parsed.data;

  const profile = request.profile ?? options.config.profileName;
  if (!Object.hasOwn(options.config.profiles, profile)) {
    return badField('profile', `unknown profile "${profile}" (known: ${Object.keys(options.config.profiles).join(', ')})`);
  }

  let requestId = request.request_id;
  if (requestId === null) {
    const callId = options.headers['x-call-id']?.trim();
    if (callId) {
      if (!REQUEST_ID_PATTERN.test(callId)) return badField('X-Call-Id', `${REQUEST_ID_MESSAGE} to be used as the request id`);
      requestId = callId;
    }
  }

  const source = await checkVideoUri(request.video_uri, options.allowPrivateSources, options.lookup ?? systemLookup, {
    artifactBucket: options.config.bucket,
    rules: options.config.inputS3Rules,
  });
  if (source) return refuse(source);
  return { ok: true, value: { ...request, request_id: requestId } };
}

/** Null when the service may fetch `uri`; otherwise why not, naming `video_uri`. */
export async function checkVideoUri(uri: string, allowPrivate: boolean, lookup: HostLookup = systemLookup, s3?: S3InputPolicy): Promise<ApiError | null> {
  const bad = (message: string) => apiError('BAD_REQUEST', `video_uri: ${message}`, 'video_uri');
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(uri)?.[1]?.toLowerCase();
  if (scheme === 's3') {
    const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
    if (!match) return bad('an s3:// URI needs a bucket and a key (s3://bucket/key)');
    if (match[2]!.split('/').some((part) => part === '.' || part === '..')) return bad('the s3 key must not contain "." or ".." segments');
    const refusal = s3 ? s3InputRefusal({ bucket: match[1]!, key: match[2]! }, s3) : null;
    return refusal ? bad(refusal) : null;
  }
  if (scheme !== 'http' && scheme !== 'https') {
    if (scheme === undefined || scheme.length === 1) return bad('local paths are not accepted; use an s3://, http:// or https:// URI');
    return bad(`the ${scheme}:// scheme is not accepted; use s3://, http:// or https://`);
  }
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return bad('not a valid URL');
  }
  if (url.username || url.password) return bad('credentials in the URL are not accepted (they would be stored and logged)');
  if (allowPrivate) return null;

  // WHATWG URL has already turned 0x7f.1, 2130706433 and friends into dotted quads.
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (isIP(host)) {
    const reason = classifyAddress(host);
    return reason ? bad(`${host} is a ${reason} address; set ALLOW_PRIVATE_SOURCES=true to allow it`) : null;
  }
  const named = host.replace(/\.$/, '');
  if (named === 'localhost' || named.endsWith('.localhost') || METADATA_HOSTS.has(named)) {
    return bad(`${named} is a local or metadata host; set ALLOW_PRIVATE_SOURCES=true to allow it`);
  }
  let addresses: Array<{ address: string }>;
  try {
    addresses = await withTimeout(lookup(named), LOOKUP_TIMEOUT_MS);
  } catch (err) {
    return bad(`host ${named} does not resolve (${(err as { code?: string }).code ?? (err as Error).message})`);
  }
  if (addresses.length === 0) return bad(`host ${named} does not resolve`);
  // Every address counts: a name with one public and one private address is refused.
  for (const { address } of addresses) {
    const reason = classifyAddress(address);
    if (reason) return bad(`${named} resolves to ${address}, a ${reason} address; set ALLOW_PRIVATE_SOURCES=true to allow it`);
  }
  return null;
}

const METADATA_HOSTS = new Set(['metadata', 'metadata.google.internal', 'metadata.goog', 'metadata.azure.internal', 'instance-data', 'instance-data.ec2.internal']);

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`lookup timed out after ${ms} ms`), { code: 'ETIMEOUT' })), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export { classifyAddress } from '../input/addresses.ts';
