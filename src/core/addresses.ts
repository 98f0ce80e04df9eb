/**
 * Who is at the other end of a request: the TCP peer, or, when the peer is one of `gateway.trusted_proxies`,
 * the nearest `X-Forwarded-For` hop that is not a trusted proxy itself.
 */

/** An IP address as 16 bytes (IPv4 as IPv4-mapped IPv6, RFC 4291 §2.5.5.2), or a range of them. */
interface AddressRange {
  readonly bytes: Uint8Array;
  readonly prefixBits: number;
}

function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const bytes = new Uint8Array(4);
  for (const [index, part] of parts.entries()) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return undefined;
    bytes[index] = Number(part);
  }
  return bytes;
}

function parseIpv6(text: string): Uint8Array | undefined {
  // An embedded IPv4 address in the last 32 bits (::ffff:192.0.2.1) becomes two hex groups.
  const lastColon = text.lastIndexOf(":");
  if (text.includes(".", lastColon)) {
    const ipv4 = parseIpv4(text.slice(lastColon + 1));
    if (!ipv4) return undefined;
    const hex = (high: number, low: number) => ((high << 8) | low).toString(16);
    text = `${text.slice(0, lastColon + 1)}${hex(ipv4[0]!, ipv4[1]!)}:${hex(ipv4[2]!, ipv4[3]!)}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (part: string) => part === "" ? [] : part.split(":");
  const left = groups(halves[0]!);
  const right = halves.length === 2 ? groups(halves[1]!) : [];
  if ([...left, ...right].some((group) => !/^[0-9a-fA-F]{1,4}$/.test(group))) return undefined;
  const missing = 8 - left.length - right.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const words = [...left, ...new Array<string>(missing).fill("0"), ...right].map((group) =>
    parseInt(group, 16)
  );
  const bytes = new Uint8Array(16);
  for (const [index, word] of words.entries()) {
    bytes[index * 2] = word >> 8;
    bytes[index * 2 + 1] = word & 0xff;
  }
  return bytes;
}

/** 16 bytes for an IPv4 or IPv6 address (with or without brackets or a zone), else undefined. */
function addressBytes(text: string): Uint8Array | undefined {
  const bare = text.trim().replace(/^\[(.*)\]$/, "$1").replace(/%.*$/, "");
  const ipv4 = parseIpv4(bare);
  if (ipv4) return new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...ipv4]);
  return bare.includes(":") ? parseIpv6(bare) : undefined;
}

function isIpv4Mapped(bytes: Uint8Array): boolean {
  return bytes.slice(0, 10).every((byte) => byte === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
}

/** The canonical text of an address: dotted IPv4 (also for IPv4-mapped IPv6), else RFC 5952 IPv6. */
function formatAddress(bytes: Uint8Array): string {
  if (isIpv4Mapped(bytes)) return [...bytes.slice(12)].join(".");
  const words = Array.from({ length: 8 }, (_, index) => (bytes[index * 2]! << 8) | bytes[index * 2 + 1]!);
  // RFC 5952 §4.2: the longest run of two or more zero words becomes "::" (the first, on a tie).
  let bestStart = -1;
  let bestLength = 1;
  for (let start = 0; start < 8;) {
    let end = start;
    while (end < 8 && words[end] === 0) end++;
    if (end - start > bestLength) [bestStart, bestLength] = [start, end - start];
    start = end === start ? start + 1 : end;
  }
  const hex = words.map((word) => word.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}

/** An address or CIDR range as written in `trusted_proxies` (`10.0.0.1`, `10.0.0.0/8`, `fd00::/8`). */
export function parseAddressRange(text: string): AddressRange | undefined {
  const [address, prefix, ...rest] = text.trim().split("/");
  if (rest.length > 0) return undefined;
  const bytes = addressBytes(address ?? "");
  if (!bytes) return undefined;
  const ipv4 = parseIpv4(address!.trim()) !== undefined;
  const maxBits = ipv4 ? 32 : 128;
  if (prefix !== undefined && !/^\d{1,3}$/.test(prefix)) return undefined;
  const bits = prefix === undefined ? maxBits : Number(prefix);
  if (bits > maxBits) return undefined;
  return { bytes, prefixBits: ipv4 ? bits + 96 : bits };
}

function inRange(bytes: Uint8Array, range: AddressRange): boolean {
  for (let bit = 0; bit < range.prefixBits; bit += 8) {
    const index = bit / 8;
    const take = Math.min(8, range.prefixBits - bit);
    const mask = (0xff << (8 - take)) & 0xff;
    if ((bytes[index]! & mask) !== (range.bytes[index]! & mask)) return false;
  }
  return true;
}

const parsedRanges = new WeakMap<readonly string[], readonly AddressRange[]>();

/** The parsed form of a (frozen) `trusted_proxies` list, kept for as long as the list lives. */
function rangesOf(trustedProxies: readonly string[]): readonly AddressRange[] {
  let ranges = parsedRanges.get(trustedProxies);
  if (!ranges) {
    ranges = trustedProxies.map(parseAddressRange).filter((range) => range !== undefined);
    parsedRanges.set(trustedProxies, ranges);
  }
  return ranges;
}

/**
 * The client's address, in canonical form. `peer` is the TCP peer (undefined when unknown, as for requests
 * made in-process); `forwardedFor` the `X-Forwarded-For` header (every occurrence, comma-joined).
 *
 * The header is read only when the peer is a trusted proxy, and then from the right: each trusted proxy
 * appends the address it received the request from, so the rightmost hop that is not a trusted proxy is the
 * first one no client could have written. A hop that is not an address ends the walk at the last good one.
 */
export function clientAddress(
  peer: string | undefined,
  forwardedFor: string | null | undefined,
  trustedProxies: readonly string[],
): string | undefined {
  const peerBytes = peer === undefined ? undefined : addressBytes(peer);
  if (!peerBytes) return peer;
  const ranges = rangesOf(trustedProxies);
  const trusted = (bytes: Uint8Array) => ranges.some((range) => inRange(bytes, range));
  let client = peerBytes;
  if (forwardedFor && trusted(peerBytes)) {
    const hops = forwardedFor.split(",");
    for (let index = hops.length - 1; index >= 0 && trusted(client); index--) {
      const hop = addressBytes(hops[index]!);
      if (!hop) break;
      client = hop;
    }
  }
  return formatAddress(client);
}

/** The TCP peer's address of a request served by `Deno.serve` (the app gets `{ info }` as its env). */
export function peerAddress(env: unknown): string | undefined {
  const info = (env as { info?: Deno.ServeHandlerInfo } | undefined)?.info;
  const remote = info?.remoteAddr;
  return remote && "hostname" in remote ? remote.hostname : undefined;
}

/**
 * The network a client address counts against for throttling: the address itself for IPv4, its /64 for
 * IPv6 (one site usually holds a whole /64, RFC 6177, so single addresses cost an attacker nothing).
 */
export function addressNetwork(address: string): string {
  const bytes = addressBytes(address);
  if (!bytes || isIpv4Mapped(bytes)) return address;
  const network = new Uint8Array(16);
  network.set(bytes.slice(0, 8));
  return `${formatAddress(network)}/64`;
}

/** Whether a peer address is one of `trusted_proxies`. */
export function isTrustedProxy(address: string, trustedProxies: readonly string[]): boolean {
  const bytes = addressBytes(address);
  return bytes !== undefined && rangesOf(trustedProxies).some((range) => inRange(bytes, range));
}
