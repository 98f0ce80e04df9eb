// Classifies IP addresses for requests made on a stranger's behalf (SSRF): public unicast, or the
// special-purpose range it lies in (RFC 6890; IANA IPv4 and IPv6 special-purpose address registries).

/** Parses strict dotted-decimal IPv4 (four decimal octets, no leading zeros) into a 32-bit number. */
export function parseIPv4(text: string): number | undefined {
  const octets = text.split(".");
  if (octets.length !== 4) return undefined;
  let value = 0;
  for (const octet of octets) {
    // 0x7f, 010 and 1e2 are other parsers' spellings; only plain decimal is an address here.
    if (!/^(?:0|[1-9]\d{0,2})$/.test(octet) || Number(octet) > 255) return undefined;
    value = value * 256 + Number(octet);
  }
  return value;
}

/**
 * Parses IPv6 text (RFC 4291 §2.2) into its 8 16-bit groups: `::` at most once, a dotted IPv4 tail,
 * optional brackets (RFC 3986 §3.2.2). A zone id (`%eth0`, RFC 6874) names a local interface: refused.
 */
export function parseIPv6(text: string): number[] | undefined {
  let body = text;
  if (body.startsWith("[") || body.endsWith("]")) {
    if (!body.startsWith("[") || !body.endsWith("]")) return undefined;
    body = body.slice(1, -1);
  }
  if (!/^[0-9a-f:.]+$/i.test(body)) return undefined;
  const halves = body.split("::");
  if (halves.length > 2) return undefined;
  const head = parseGroups(halves[0]!, halves.length === 1);
  const tail = halves.length === 2 ? parseGroups(halves[1]!, true) : [];
  if (!head || !tail) return undefined;
  if (halves.length === 1) return head.length === 8 ? head : undefined;
  // `::` stands for at least one group of zeros.
  if (head.length + tail.length > 7) return undefined;
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

function parseGroups(part: string, ipv4TailAllowed: boolean): number[] | undefined {
  if (part === "") return [];
  const pieces = part.split(":");
  const groups: number[] = [];
  for (const [index, piece] of pieces.entries()) {
    if (ipv4TailAllowed && index === pieces.length - 1 && piece.includes(".")) {
      const ipv4 = parseIPv4(piece);
      if (ipv4 === undefined) return undefined;
      groups.push(ipv4 >>> 16, ipv4 & 0xffff);
    } else if (/^[0-9a-f]{1,4}$/i.test(piece)) {
      groups.push(parseInt(piece, 16));
    } else {
      return undefined;
    }
  }
  return groups;
}

interface Range<Address> {
  readonly base: Address;
  readonly prefixLength: number;
  readonly name: string;
}

function ipv4Range(cidr: string, name: string): Range<number> {
  const [base, length] = cidr.split("/");
  return { base: parseIPv4(base!)!, prefixLength: Number(length), name };
}

function ipv6Range(cidr: string, name: string): Range<bigint> {
  const [base, length] = cidr.split("/");
  return { base: ipv6Value(parseIPv6(base!)!), prefixLength: Number(length), name };
}

const ipv6Value = (groups: readonly number[]) =>
  groups.reduce((value, group) => value << 16n | BigInt(group), 0n);

/** IPv4 ranges no outbound request for a stranger may reach (RFC 6890 §2.2.2 and its updates). */
const IPV4_SPECIAL_RANGES: readonly Range<number>[] = [
  ipv4Range("0.0.0.0/8", "this network (RFC 791)"),
  ipv4Range("10.0.0.0/8", "private (RFC 1918)"),
  ipv4Range("100.64.0.0/10", "carrier-grade NAT (RFC 6598)"),
  ipv4Range("127.0.0.0/8", "loopback (RFC 1122)"),
  ipv4Range("169.254.0.0/16", "link-local (RFC 3927)"),
  ipv4Range("172.16.0.0/12", "private (RFC 1918)"),
  ipv4Range("192.0.0.0/24", "IETF protocol assignments (RFC 6890)"),
  ipv4Range("192.0.2.0/24", "documentation (RFC 5737)"),
  ipv4Range("192.88.99.0/24", "6to4 relay anycast (RFC 7526)"),
  ipv4Range("192.168.0.0/16", "private (RFC 1918)"),
  ipv4Range("198.18.0.0/15", "benchmarking (RFC 2544)"),
  ipv4Range("198.51.100.0/24", "documentation (RFC 5737)"),
  ipv4Range("203.0.113.0/24", "documentation (RFC 5737)"),
  ipv4Range("224.0.0.0/4", "multicast (RFC 5771)"),
  ipv4Range("240.0.0.0/4", "reserved (RFC 1112)"),
];

/** IPv6 ranges refused outright, most specific first; 6to4 is checked by its embedded IPv4 address. */
const IPV6_SPECIAL_RANGES: readonly Range<bigint>[] = [
  ipv6Range("::/128", "unspecified (RFC 4291 §2.5.2)"),
  ipv6Range("::1/128", "loopback (RFC 4291 §2.5.3)"),
  ipv6Range("::ffff:0:0/96", "IPv4-mapped (RFC 4291 §2.5.5.2)"),
  ipv6Range("::/96", "IPv4-compatible (RFC 4291 §2.5.5.1)"),
  ipv6Range("64:ff9b::/96", "NAT64 (RFC 6052)"),
  ipv6Range("64:ff9b:1::/48", "local NAT64 (RFC 8215)"),
  ipv6Range("100::/64", "discard-only (RFC 6666)"),
  ipv6Range("2001::/32", "Teredo (RFC 4380)"),
  ipv6Range("2001:db8::/32", "documentation (RFC 3849)"),
  ipv6Range("2001::/23", "IETF protocol assignments (RFC 2928)"),
  ipv6Range("3fff::/20", "documentation (RFC 9637)"),
  ipv6Range("5f00::/16", "SRv6 SIDs (RFC 9602)"),
  ipv6Range("fc00::/7", "unique-local (RFC 4193)"),
  ipv6Range("fe80::/10", "link-local (RFC 4291 §2.5.6)"),
  ipv6Range("fec0::/10", "site-local (RFC 3879)"),
  ipv6Range("ff00::/8", "multicast (RFC 4291 §2.7)"),
];

const SIX_TO_FOUR = ipv6Range("2002::/16", "6to4 (RFC 3056)");
/** Only 2000::/3 is allocated for global unicast; the rest of the space is reserved (RFC 4291 §2.4). */
const GLOBAL_UNICAST = ipv6Range("2000::/3", "global unicast (RFC 4291 §2.4)");

const inIPv4Range = (address: number, range: Range<number>) =>
  range.prefixLength === 0 ||
  (address >>> (32 - range.prefixLength)) === (range.base >>> (32 - range.prefixLength));

const inIPv6Range = (address: bigint, range: Range<bigint>) =>
  (address >> BigInt(128 - range.prefixLength)) === (range.base >> BigInt(128 - range.prefixLength));

/**
 * The special-purpose range `address` (IPv4 dotted-decimal or IPv6, bracketed or not) lies in, named with
 * its RFC; "not an IP address" when it does not parse; undefined only for a public unicast address.
 */
export function specialPurposeRange(address: string): string | undefined {
  const ipv4 = parseIPv4(address);
  if (ipv4 !== undefined) return IPV4_SPECIAL_RANGES.find((range) => inIPv4Range(ipv4, range))?.name;
  const groups = parseIPv6(address);
  if (!groups) return "not an IP address";
  const ipv6 = ipv6Value(groups);
  const special = IPV6_SPECIAL_RANGES.find((range) => inIPv6Range(ipv6, range));
  if (special) return special.name;
  if (inIPv6Range(ipv6, SIX_TO_FOUR)) {
    // 2002:VVVV:VVVV::/48 is the site behind IPv4 gateway V (RFC 3056 §2): as public as V is.
    const embedded = specialPurposeRange(
      `${groups[1]! >> 8}.${groups[1]! & 255}.${groups[2]! >> 8}.${groups[2]! & 255}`,
    );
    return embedded && `${SIX_TO_FOUR.name} of ${embedded}`;
  }
  return inIPv6Range(ipv6, GLOBAL_UNICAST) ? undefined : "reserved (RFC 4291 §2.4)";
}

/** True only for an address that parses and lies in no special-purpose range. */
export function isPublicAddress(address: string): boolean {
  return specialPurposeRange(address) === undefined;
}
