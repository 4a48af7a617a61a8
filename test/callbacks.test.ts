import { describe, expect, it } from 'vitest';
import { TASK_ID_PATTERN, callbackToken, callbackUrl, parseStartTime, verifyCallbackToken } from '../src/transport/callbacks.ts';

const SECRET = 'unit-test-callback-secret-01';
const address = { request_id: 'req-1', task_id: 'clip-3/deepspeech', run: 0, attempt: 2 };

describe('callback tokens', () => {
  it('verify only for the address and secret they were made for', () => {
    const token = callbackToken(SECRET, address);
    expect(verifyCallbackToken(SECRET, address, token)).toBe(true);
    expect(verifyCallbackToken('another-secret-of-16+', address, token)).toBe(false);
    for (const other of [{ attempt: 3 }, { run: 1 }, { task_id: 'clip-3/ffmpeg3' }, { request_id: 'req-2' }]) {
      expect(verifyCallbackToken(SECRET, { ...address, ...other }, token)).toBe(false);
    }
    expect(verifyCallbackToken(SECRET, address, '')).toBe(false);
    expect(verifyCallbackToken(SECRET, address, `${token}x`)).toBe(false);
  });

  it('ride in the callback URL with the address, under the base URL', () => {
    const url = new URL(callbackUrl('http://gateway.openfaas:8080/function/orchestrator', SECRET, address));
    expect(url.pathname).toBe('/function/orchestrator/callbacks/req-1');
    expect(Object.fromEntries(url.searchParams)).toEqual({ task: 'clip-3/deepspeech', run: '0', attempt: '2', token: callbackToken(SECRET, address) });
  });

  it('name only task ids the machine gives its calls', () => {
    for (const ok of ['ffmpeg0', 'librosa', 'ffmpeg1', 'clip-0/ffmpeg2', 'clip-12/deepspeech', 'clip-3/ffmpeg3', 'frame-3-7']) expect(TASK_ID_PATTERN.test(ok), ok).toBe(true);
    for (const bad of ['', 'clip-0/../x', 'clip-0/detector', 'frame-1', '../ffmpeg0', 'ffmpeg0/']) expect(TASK_ID_PATTERN.test(bad), bad).toBe(false);
  });
});

describe('X-Start-Time', () => {
  it('reads the watchdog nanoseconds, and seconds, milliseconds or microseconds, as epoch ms', () => {
    const ms = 1_760_000_000_123;
    expect(parseStartTime(`${ms}000000`)).toBe(ms);
    expect(parseStartTime(`${ms}000`)).toBe(ms);
    expect(parseStartTime(String(ms))).toBe(ms);
    expect(parseStartTime('1760000000.123')).toBe(ms);
    for (const bad of [undefined, '', 'soon', '-5', '0', '1e9']) expect(parseStartTime(bad), String(bad)).toBeNull();
  });
});
