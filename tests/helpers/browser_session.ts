/**
 * A scripted browser for sign-in flows: keeps cookies, follows nothing by itself, and fills the
 * gateway's login and consent forms the way a person would.
 */
export class ScriptedBrowser {
  readonly #cookies = new Map<string, string>();

  async fetch(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.#cookies.size > 0) {
      headers.set("cookie", [...this.#cookies].map(([name, value]) => `${name}=${value}`).join("; "));
    }
    const response = await fetch(url, { ...init, headers, redirect: "manual" });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const separator = pair!.indexOf("=");
      const name = pair!.slice(0, separator).trim();
      const value = pair!.slice(separator + 1).trim();
      if (value === "" || /max-age=0/i.test(line)) this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
    return response;
  }

  /** Posts a form the way a browser submits one. */
  post(url: string, fields: Record<string, string>): Promise<Response> {
    return this.fetch(url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(fields).toString(),
    });
  }
}

/** The hidden and named inputs of the first form in a page. */
export function formFields(html: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const match of html.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)) {
    fields[unescape(match[1]!)] = unescape(match[2]!);
  }
  return fields;
}

function unescape(value: string): string {
  return value.replaceAll("&quot;", '"').replaceAll("&#39;", "'").replaceAll("&lt;", "<").replaceAll(
    "&gt;",
    ">",
  )
    .replaceAll("&amp;", "&");
}

/**
 * Signs in at an authorization URL and approves the client; returns the URL the gateway sent the browser
 * back to (the client's redirect URI with `code`, `state` and `iss`).
 */
export async function signInAndApprove(
  browser: ScriptedBrowser,
  authorizationUrl: string,
  credentials: { username: string; password: string },
): Promise<URL> {
  const origin = new URL(authorizationUrl).origin;
  let response = await browser.fetch(authorizationUrl);
  let page = await response.text();
  if (page.includes('action="/login"')) {
    response = await browser.post(`${origin}/login`, { ...formFields(page), ...credentials });
    if (response.status !== 303) throw new Error(`sign-in failed: ${response.status}`);
    await response.body?.cancel();
    response = await browser.fetch(new URL(response.headers.get("location")!, origin).href);
    page = await response.text();
  }
  if (page.includes('action="/authorize/consent"')) {
    response = await browser.post(`${origin}/authorize/consent`, { ...formFields(page), decision: "allow" });
    await response.body?.cancel();
  }
  if (response.status !== 303) throw new Error(`authorization did not redirect: ${response.status} ${page}`);
  return new URL(response.headers.get("location")!);
}
