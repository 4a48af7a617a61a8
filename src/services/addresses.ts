import { isIP } from 'node:net';

type Range = [prefix: number[], bits: number, reason: string];

const V4_RANGES: Range[] = [
  [[0, 0, 0, 0], 8, 'unspecified ("this network")'],
  [[10, 0, 0, 0], 8, 'private'],
  [[100, 64, 0, 0], 10, 'carrier-grade NAT'],
  [[127, 0, 0, 0], 8, 'loopback'],
  [[169, 254, 0, 0], 16, 'link-local (cloud metadata)'],
  [[172, 16, 0, 0], 12, 'private'],
  [[192, 0, 0, 0], 24, 'reserved (IETF protocol assignments)'],
  [[192, 168, 0, 0], 16, 'private'],
  [[198, 18, 0, 0], 15, 'reserved (benchmarking)'],
  [[224, 0, 0, 0], 4, 'multicast'],
  [[240, 0, 0, 0], 4, 'reserved'],
];

const V6_RANGES: Range[] = [
  [[0xfc], 7, 'private (unique local)'],
  [[0xfe, 0x80], 10, 'link-local'],
  [[0xfe, 0xc0], 10, 'private (site-local)'],
  [[0xff], 8, 'multicast'],
];

function inRange(bytes: readonly number[], prefix: readonly number[], bits: number): boolean {
  for (let i = 0; i < bits; i += 8) {
    const take = Math.min(8, bits - i);
    const mask = (0xff << (8 - take)) & 0xff;
    if (((bytes[i / 8] ?? 0) & mask) !== ((prefix[i / 8] ?? 0) & mask)) return false;
  }
  return true;
}

/**
 * Why an address must not be fetched from (loopback, private, link-local, CGNAT, unspecified,
 * multicast, reserved), or null for a public one. IPv6 forms that embed an IPv4 address
 * (mapped, compatible, NAT64, 6to4) are judged by that IPv4 address.
 */
export function classifyAddress(address: string): string | null {
  const v4 = parseIPv4(address);
  if (v4) return V4_RANGES.find(([prefix, bits]) => inRange(v4, prefix, bits))?.[2] ?? null;
  const v6 = parseIPv6(address);
  if (!v6) return 'unparseable';
  const zeros = (from: number, to: number) => v6.slice(from, to).every((b) => b === 0);
  if (zeros(0, 16)) return 'unspecified';
  if (zeros(0, 15) && v6[15] === 1) return 'loopback';
  const embedded =
    zeros(0, 10) && v6[10] === 0xff && v6[11] === 0xff ? v6.slice(12) // ::ffff:a.b.c.d
    : zeros(0, 12) ? v6.slice(12) // ::a.b.c.d (deprecated compatible form)
    : inRange(v6, [0x00, 0x64, 0xff, 0x9b], 96) ? v6.slice(12) // 64:ff9b::/96 NAT64
    : inRange(v6, [0x20, 0x02], 16) ? v6.slice(2, 6) // 2002::/16 6to4
    : null;
  if (embedded) return classifyAddress(embedded.join('.'));
  return V6_RANGES.find(([prefix, bits]) => inRange(v6, prefix, bits))?.[2] ?? null;
}

function parseIPv4(address: string): number[] | null {
  const parts = address.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p))) return null;
  const bytes = parts.map(Number);
  return bytes.every((b) => b <= 255) ? bytes : null;
}

function parseIPv6(input: string): number[] | null {
  const address = input.replace(/%.*$/, '');
  if (isIP(address) !== 6) return null;
  const [head = '', tail] = address.split('::') as [string, string | undefined];
  const groups = (part: string): number[] | null => {
    if (part === '') return [];
    const out: number[] = [];
    for (const piece of part.split(':')) {
      const v4 = piece.includes('.') ? parseIPv4(piece) : null;
      if (v4) out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      else out.push(parseInt(piece, 16));
    }
    return out.every((n) => Number.isInteger(n) && n >= 0 && n <= 0xffff) ? out : null;
  };
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  if (!left || !right) return null;
  const fill = tail === undefined ? [] : new Array<number>(8 - left.length - right.length).fill(0);
  const all = [...left, ...fill, ...right];
  if (all.length !== 8) return null;
  return all.flatMap((g) => [g >> 8, g & 0xff]);
}
