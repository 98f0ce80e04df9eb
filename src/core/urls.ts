/** URLs that point at this machine, and where plain http is therefore allowed. */

/** The names a URL's hostname has when it points at this machine (RFC 8252 §7.3), as `URL` spells them. */
export const LOOPBACK_URL_HOSTNAMES: ReadonlySet<string> = new Set(["127.0.0.1", "[::1]", "localhost"]);

/**
 * Plain http is allowed only to a server on this machine (tests, or a local identity provider or service);
 * anything else must be https.
 */
export function insecureAllowed(url: string | undefined): boolean {
  if (!url) return false;
  const { protocol, hostname } = new URL(url);
  return protocol === "http:" && LOOPBACK_URL_HOSTNAMES.has(hostname);
}
