import { describe, expect, it } from 'vitest';
import { classifyAddress, IPV4_RANGES, IPV6_RANGES, type AddressRange } from '../src/input/addresses.ts';
import { checkVideoUri } from '../src/server/validate.ts';

/** The first and the last address of a range, as text. */
function ends(range: AddressRange): [string, string] {
  const [address, bitsText] = range.cidr.split('/') as [string, string];
  const bits = Number(bitsText);
  if (address.includes('.')) {
    const n = address.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
    const size = 2 ** (32 - bits);
    const text = (v: number) => [24, 16, 8, 0].map((shift) => Math.floor(v / 2 ** shift) % 256).join('.');
    return [text(n), text(n + size - 1)];
  }
  const url = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  const groups = url.split('::');
  const head = groups[0] ? groups[0].split(':') : [];
  const tail = groups[1] ? groups[1].split(':') : [];
  const full = [...head, ...new Array<string>(8 - head.length - tail.length).fill('0'), ...tail].map((g) => parseInt(g, 16));
  const value = full.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
  const last = value | ((1n << BigInt(128 - bits)) - 1n);
  const text = (v: bigint) => Array.from({ length: 8 }, (_, i) => ((v >> BigInt(16 * (7 - i))) & 0xffffn).toString(16)).join(':');
  return [text(value), text(last)];
}

const refused = [...IPV4_RANGES, ...IPV6_RANGES].filter((r) => r.action === 'refuse' && r.cidr !== '::/0');

describe('reserved address ranges (IANA special-purpose registries)', () => {
  it.each(refused.map((r) => [r.cidr, r] as const))('refuses %s', (_cidr, range) => {
    const [first, last] = ends(range);
    // A more specific range listed before may name the first address differently; refused all the same.
    expect(classifyAddress(first), first).not.toBeNull();
    expect(classifyAddress(last), last).toBe(range.reason);
  });

  it('refuses IPv6 outside global unicast, and judges NAT64 and 6to4 by the IPv4 address inside', () => {
    expect(classifyAddress('4000::1')).toMatch(/outside global unicast/);
    expect(classifyAddress('64:ff9b::a00:1')).toBe('private (inside NAT64 well-known prefix)');
    expect(classifyAddress('64:ff9b::808:808')).toBeNull();
    expect(classifyAddress('2002:c000:0201::1')).toBe('documentation (TEST-NET-1) (inside 6to4)');
    expect(classifyAddress('2002:808:808::1')).toBeNull();
    expect(classifyAddress('2606:4700:4700::1111')).toBeNull();
    expect(classifyAddress('1.1.1.1')).toBeNull();
  });

  it('refuses the ranges an attack got through, as video_uri hosts', async () => {
    const never = async () => {
      throw new Error('an address literal is not looked up');
    };
    for (const host of ['192.0.2.10', '198.51.100.7', '203.0.113.99', '[2001:db8::5]', '[::ffff:8.8.8.8]', '[64:ff9b:1::a00:1]', '[2001:0:4136:e378:8000:63bf:3fff:fdd2]']) {
      const refusal = await checkVideoUri(`http://${host}/v.mp4`, false, never);
      expect(refusal, host).toMatchObject({ status: 400, field: 'video_uri' });
    }
  });
});
