import assert from "node:assert/strict";
import { addressNetwork, clientAddress, parseAddressRange } from "../../src/core/addresses.ts";
import { problemsOf, registryOf, yaml } from "../config/_helpers.ts";

Deno.test("clientAddress() is the peer when the peer is not a trusted proxy", () => {
  assert.equal(clientAddress("192.0.2.10", "203.0.113.5", []), "192.0.2.10");
  assert.equal(clientAddress("192.0.2.10", "203.0.113.5", ["10.0.0.0/8"]), "192.0.2.10");
  assert.equal(clientAddress("192.0.2.10", null, ["192.0.2.10"]), "192.0.2.10");
});

Deno.test("clientAddress() takes the rightmost X-Forwarded-For hop that is not a trusted proxy", () => {
  const trusted = ["127.0.0.1", "10.0.0.0/8"];
  // A client can write anything on the left; each proxy appends what it saw.
  assert.equal(clientAddress("127.0.0.1", "6.6.6.6, 203.0.113.5", trusted), "203.0.113.5");
  assert.equal(clientAddress("127.0.0.1", "6.6.6.6, 203.0.113.5, 10.1.2.3", trusted), "203.0.113.5");
  // Every hop trusted: the leftmost one.
  assert.equal(clientAddress("127.0.0.1", "10.0.0.7, 10.1.2.3", trusted), "10.0.0.7");
  // A hop that is not an address ends the walk at the last good one.
  assert.equal(clientAddress("127.0.0.1", "203.0.113.5, unknown", trusted), "127.0.0.1");
  assert.equal(clientAddress("127.0.0.1", "unknown, 10.1.2.3", trusted), "10.1.2.3");
});

Deno.test("clientAddress() normalises IPv6 and IPv4-mapped addresses", () => {
  assert.equal(clientAddress("::ffff:192.0.2.10", null, []), "192.0.2.10");
  assert.equal(clientAddress("2001:DB8:0:0:0:0:0:1", null, []), "2001:db8::1");
  assert.equal(clientAddress("::1", "[2001:db8::7]", ["::1"]), "2001:db8::7");
  assert.equal(clientAddress("::ffff:127.0.0.1", "2001:db8::7", ["127.0.0.0/8"]), "2001:db8::7");
  assert.equal(clientAddress("fd00::1", "2001:db8::7", ["fd00::/8"]), "2001:db8::7");
  assert.equal(clientAddress(undefined, "203.0.113.5", ["127.0.0.1"]), undefined, "no peer, no guess");
});

Deno.test("parseAddressRange() accepts addresses and CIDR ranges and nothing else", () => {
  for (const good of ["127.0.0.1", "10.0.0.0/8", "0.0.0.0/0", "::1", "fd00::/8", "::ffff:10.0.0.1", "::/0"]) {
    assert.ok(parseAddressRange(good), good);
  }
  for (
    const bad of ["", "localhost", "10.0.0", "10.0.0.256", "10.0.0.0/33", "::1/129", "1::2::3", "10.0.0.0/x"]
  ) {
    assert.equal(parseAddressRange(bad), undefined, bad);
  }
});

Deno.test("addressNetwork() is the address for IPv4 and the /64 for IPv6", () => {
  assert.equal(addressNetwork("203.0.113.5"), "203.0.113.5");
  assert.equal(addressNetwork("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
  assert.equal(addressNetwork("2001:db8:1:2::9"), addressNetwork("2001:db8:1:2:ffff::1"));
});

Deno.test("loadRegistry() rejects a trusted_proxies entry that is not an address or range", async () => {
  const problems = await problemsOf({
    files: { "registry.yaml": yaml("gateway:", "  trusted_proxies: [10.0.0.0/8, proxy.internal]") },
  });
  assert.deepEqual(problems.map((problem) => [problem.line, problem.message]), [
    [2, "gateway.trusted_proxies[1]: expected an IP address or a CIDR range such as 10.0.0.0/8"],
  ]);
  const registry = await registryOf({
    files: { "registry.yaml": yaml("gateway:", "  trusted_proxies: [10.0.0.0/8, '::1']") },
  });
  assert.deepEqual(registry.gateway.trustedProxies, ["10.0.0.0/8", "::1"]);
});
