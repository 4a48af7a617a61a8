import { isIP } from 'node:net';

/**
 * What an address range means for fetching a video from it: `refuse` it with a reason, judge
 * the IPv4 address it embeds (`embedded`, at byte `v4At`), or `allow` it.
 */
export interface AddressRange {
  cidr: string;
  action: 'refuse' | 'embedded' | 'allow';
  reason: string;
  /** Where the range is defined. */
  source: string;
  /** For `embedded`: the byte offset of the IPv4 address inside the IPv6 one. */
  v4At?: number;
}

/**
 * Every IPv4 range that is not public unicast: the IANA IPv4 Special-Purpose Address Registry
 * (https://www.iana.org/assignments/iana-ipv4-special-registry), plus multicast and the
 * reserved class E block. All of them are refused, even the few the registry marks globally
 * reachable (anycast relays, AS112): none of them serves videos. First match wins.
 */
export const IPV4_RANGES: readonly AddressRange[] = [
  { cidr: '0.0.0.0/8', action: 'refuse', reason: 'unspecified ("this network")', source: 'RFC 791' },
  { cidr: '10.0.0.0/8', action: 'refuse', reason: 'private', source: 'RFC 1918' },
  { cidr: '100.64.0.0/10', action: 'refuse', reason: 'carrier-grade NAT (shared address space)', source: 'RFC 6598' },
  { cidr: '127.0.0.0/8', action: 'refuse', reason: 'loopback', source: 'RFC 1122' },
  { cidr: '169.254.0.0/16', action: 'refuse', reason: 'link-local (cloud metadata)', source: 'RFC 3927' },
  { cidr: '172.16.0.0/12', action: 'refuse', reason: 'private', source: 'RFC 1918' },
  { cidr: '192.0.0.0/24', action: 'refuse', reason: 'reserved (IETF protocol assignments)', source: 'RFC 6890' },
  { cidr: '192.0.2.0/24', action: 'refuse', reason: 'documentation (TEST-NET-1)', source: 'RFC 5737' },
  { cidr: '192.31.196.0/24', action: 'refuse', reason: 'reserved (AS112-v4)', source: 'RFC 7535' },
  { cidr: '192.52.193.0/24', action: 'refuse', reason: 'reserved (AMT)', source: 'RFC 7450' },
  { cidr: '192.88.99.0/24', action: 'refuse', reason: 'reserved (deprecated 6to4 relay anycast)', source: 'RFC 7526' },
  { cidr: '192.168.0.0/16', action: 'refuse', reason: 'private', source: 'RFC 1918' },
  { cidr: '192.175.48.0/24', action: 'refuse', reason: 'reserved (AS112 direct delegation)', source: 'RFC 7534' },
  { cidr: '198.18.0.0/15', action: 'refuse', reason: 'reserved (benchmarking)', source: 'RFC 2544' },
  { cidr: '198.51.100.0/24', action: 'refuse', reason: 'documentation (TEST-NET-2)', source: 'RFC 5737' },
  { cidr: '203.0.113.0/24', action: 'refuse', reason: 'documentation (TEST-NET-3)', source: 'RFC 5737' },
  { cidr: '224.0.0.0/4', action: 'refuse', reason: 'multicast', source: 'RFC 5771' },
  { cidr: '240.0.0.0/4', action: 'refuse', reason: 'reserved (future use, limited broadcast)', source: 'RFC 1112, RFC 919' },
];

/**
 * IPv6, from the IANA IPv6 Special-Purpose Address Registry
 * (https://www.iana.org/assignments/iana-ipv6-special-registry) and the IPv6 Address Space
 * registry (https://www.iana.org/assignments/ipv6-address-space): global unicast is 2000::/3,
 * everything outside it is refused (the last two rows). The well-known NAT64 prefix and 6to4
 * carry an IPv4 address and are judged by it. First match wins.
 */
export const IPV6_RANGES: readonly AddressRange[] = [
  { cidr: '::/128', action: 'refuse', reason: 'unspecified', source: 'RFC 4291' },
  { cidr: '::1/128', action: 'refuse', reason: 'loopback', source: 'RFC 4291' },
  { cidr: '::ffff:0:0/96', action: 'refuse', reason: 'IPv4-mapped', source: 'RFC 4291' },
  { cidr: '::ffff:0:0:0/96', action: 'refuse', reason: 'IPv4-translated', source: 'RFC 6145' },
  { cidr: '::/96', action: 'refuse', reason: 'IPv4-compatible (deprecated)', source: 'RFC 4291' },
  { cidr: '64:ff9b::/96', action: 'embedded', v4At: 12, reason: 'NAT64 well-known prefix', source: 'RFC 6052' },
  { cidr: '64:ff9b:1::/48', action: 'refuse', reason: 'NAT64 local-use prefix', source: 'RFC 8215' },
  { cidr: '100::/64', action: 'refuse', reason: 'discard-only', source: 'RFC 6666' },
  { cidr: '2001::/32', action: 'refuse', reason: 'Teredo', source: 'RFC 4380' },
  { cidr: '2001::/23', action: 'refuse', reason: 'reserved (IETF protocol assignments)', source: 'RFC 2928' },
  { cidr: '2001:db8::/32', action: 'refuse', reason: 'documentation', source: 'RFC 3849' },
  { cidr: '2002::/16', action: 'embedded', v4At: 2, reason: '6to4', source: 'RFC 3056' },
  { cidr: '2620:4f:8000::/48', action: 'refuse', reason: 'reserved (AS112 direct delegation)', source: 'RFC 7534' },
  { cidr: '3fff::/20', action: 'refuse', reason: 'documentation', source: 'RFC 9637' },
  { cidr: '2000::/3', action: 'allow', reason: 'global unicast', source: 'RFC 4291' },
  { cidr: 'fc00::/7', action: 'refuse', reason: 'private (unique local)', source: 'RFC 4193' },
  { cidr: 'fe80::/10', action: 'refuse', reason: 'link-local', source: 'RFC 4291' },
  { cidr: 'fec0::/10', action: 'refuse', reason: 'private (site-local, deprecated)', source: 'RFC 3879' },
  { cidr: 'ff00::/8', action: 'refuse', reason: 'multicast', source: 'RFC 4291' },
  { cidr: '::/0', action: 'refuse', reason: 'reserved (outside global unicast 2000::/3)', source: 'IANA IPv6 Address Space' },
];

interface Compiled {
  range: AddressRange;
  prefix: number[];
  bits: number;
}

function compile(ranges: readonly AddressRange[], parse: (address: string) => number[] | null): Compiled[] {
  return ranges.map((range) => {
    const [address, bits] = range.cidr.split('/') as [string, string];
    const prefix = parse(address);
    if (!prefix) throw new Error(`bad range ${range.cidr}`);
    return { range, prefix, bits: Number(bits) };
  });
}

function inRange(bytes: readonly number[], prefix: readonly number[], bits: number): boolean {
  for (let i = 0; i < bits; i += 8) {
    const take = Math.min(8, bits - i);
    const mask = (0xff << (8 - take)) & 0xff;
    if (((bytes[i / 8] ?? 0) & mask) !== ((prefix[i / 8] ?? 0) & mask)) return false;
  }
  return true;
}

/**
 * Why an address must not be fetched from (loopback, private, link-local, CGNAT, documentation,
 * multicast, reserved…), or null for a public one.
 */
export function classifyAddress(address: string): string | null {
  const v4 = parseIPv4(address);
  if (v4) {
    const hit = V4.find(({ prefix, bits }) => inRange(v4, prefix, bits));
    return hit && hit.range.action === 'refuse' ? hit.range.reason : null;
  }
  const v6 = parseIPv6(address);
  if (!v6) return 'unparseable';
  const hit = V6.find(({ prefix, bits }) => inRange(v6, prefix, bits));
  if (!hit || hit.range.action === 'allow') return null;
  if (hit.range.action === 'embedded') {
    const at = hit.range.v4At ?? 12;
    const inner = classifyAddress(v6.slice(at, at + 4).join('.'));
    return inner ? `${inner} (inside ${hit.range.reason})` : null;
  }
  return hit.range.reason;
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

const V4 = compile(IPV4_RANGES, parseIPv4);
const V6 = compile(IPV6_RANGES, parseIPv6);

/**
 * Cloud metadata services outside the link-local ranges: AWS's IPv6 endpoint (inside the unique
 * local fc00::/7) and Alibaba Cloud's (inside carrier-grade NAT).
 */
export const METADATA_ADDRESSES: readonly string[] = ['fd00:ec2::254', '100.100.100.200'];

/**
 * Why an address is link-local or a cloud metadata service (what the CLI refuses even though it
 * fetches from loopback and private addresses), or null. IPv4-mapped IPv6 is judged by its IPv4.
 */
export function linkLocalOrMetadata(address: string): string | null {
  const v6 = parseIPv6(address);
  if (v6 && v6.slice(0, 10).every((b) => b === 0) && v6[10] === 0xff && v6[11] === 0xff) return linkLocalOrMetadata(v6.slice(12).join('.'));
  const canonical = v6 ? v6.join(',') : address;
  const metadata = METADATA_ADDRESSES.some((m) => (parseIPv6(m)?.join(',') ?? m) === canonical);
  if (metadata) return 'cloud metadata';
  const reason = classifyAddress(address);
  return reason !== null && reason.includes('link-local') ? reason : null;
}
