/**
 * The names of the gateway's cookies: `__Host-` over https (the browser then enforces Secure, no Domain, and
 * path /), and the port of a base URL that names one. Browsers keep cookies per host name, whatever the port:
 * without it, two gateways on one host (`localhost:8740` and `localhost:8741`, as when trying out two
 * chained gateways) would overwrite each other's sessions.
 */
export function gatewayCookieName(name: string, baseUrl: string): string {
  const url = new URL(baseUrl);
  return `${url.protocol === "https:" ? "__Host-" : ""}${name}${url.port === "" ? "" : `_${url.port}`}`;
}
