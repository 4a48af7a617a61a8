import { describe, expect, it } from 'vitest';
import { ErrorCodes, FaveFailure, faveError } from '../src/domain/errors.ts';
import { answerFormatOf, errorAnswer, apiError, startFailure, statusOf, statusOfFailedRequest, statusOfInterrupted, thrownError } from '../src/server/error-policy.ts';

describe('the error policy', () => {
  it('gives every error code one status; a missing request is 404, a missing video 422', () => {
    for (const code of ErrorCodes) expect(statusOf(code), code).toBeGreaterThanOrEqual(400);
    expect(statusOf('REQUEST_NOT_FOUND')).toBe(404);
    expect(statusOf('INPUT_NOT_FOUND')).toBe(422);
    expect(statusOf('BAD_REQUEST')).toBe(400);
    expect(statusOf('STAGE_TIMEOUT')).toBe(504);
    // A request that ran and failed: input found bad while running is unprocessable, a lost lease a fault.
    expect(statusOfFailedRequest('BAD_REQUEST')).toBe(422);
    expect(statusOfFailedRequest('LEASE_HELD')).toBe(500);
    expect(statusOfFailedRequest('STAGE_REPORTED_ERROR')).toBe(502);
    expect(statusOfInterrupted('CANCELLED')).toBe(503);
    expect(statusOfInterrupted('STAGE_TIMEOUT')).toBe(504);
    expect(startFailure(new FaveFailure(faveError('BAD_CONFIG', 'MAX_CONCURRENT_INVOCATIONS: not a number')))).toMatchObject({ status: 503, code: 'BAD_CONFIG' });
  });

  it('answers what a route threw by its code, and keeps the text of an unexpected exception out of the answer', () => {
    expect(thrownError(new FaveFailure(faveError('LEASE_HELD', 'held by another process'))).error).toEqual({ status: 409, code: 'LEASE_HELD', message: 'held by another process' });
    expect(thrownError(new FaveFailure(faveError('BAD_REQUEST', 'video_uri: not a URL', { field: 'video_uri' }))).error).toMatchObject({ status: 400, field: 'video_uri' });
    const { error, fault } = thrownError(new Error('ENOENT: /srv/internal/path'));
    expect(error).toMatchObject({ status: 500, code: 'INTERNAL' });
    expect(error.message).not.toContain('/srv/internal');
    expect(fault?.message).toContain('/srv/internal');
  });

  it('renders the same status as JSON for API paths and as a page for the UI pages', () => {
    expect(['/ui', '/ui/requests/x', '/ui/login', '/ui/elsewhere'].map(answerFormatOf)).toEqual(['html', 'html', 'html', 'html']);
    expect(['/', '/requests/x', '/ui/api/requests', '/ui/api', '/uix'].map(answerFormatOf)).toEqual(['json', 'json', 'json', 'json', 'json']);
    const refusal = apiError('METHOD_NOT_ALLOWED', 'POST is not allowed on /ui <here>');
    const json = errorAnswer(refusal, 'json', { headers: { allow: 'GET, HEAD' } });
    const page = errorAnswer(refusal, 'html', { headers: { allow: 'GET, HEAD' } });
    expect([json.status, page.status]).toEqual([405, 405]);
    expect([json.headers.allow, page.headers.allow]).toEqual(['GET, HEAD', 'GET, HEAD']);
    expect(JSON.parse(String(json.body))).toEqual({ error: { code: 'METHOD_NOT_ALLOWED', message: 'POST is not allowed on /ui <here>' } });
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(String(page.body)).toContain('METHOD_NOT_ALLOWED: POST is not allowed on /ui &lt;here&gt;');
  });
});
