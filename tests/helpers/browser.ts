/**
 * Real-browser helpers: Debian's Chromium driven by Playwright (never a browser Playwright downloads),
 * a loopback server standing in for an OAuth client's redirect URI, and PKCE values.
 */
import type { BrowserContext, BrowserType, Page } from "npm:playwright-core@1.65.1";
import { within } from "./mcp_clients.ts";

/** Debian's Chromium; `.ci/run` installs it on a fresh machine. */
export const CHROMIUM_PATH = "/usr/bin/chromium";

/**
 * Headless, no sandbox (tests run as root), and no traffic of its own: without the background-networking
 * flags Chromium calls out to Google's hosts at every start. The resolver rule makes every name but
 * 127.0.0.1 unresolvable, so a page cannot reach past loopback either.
 */
export const CHROMIUM_ARGS: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
];

/** Bound on every Playwright action and navigation, so a stuck page fails the test instead of hanging it. */
export const BROWSER_TIMEOUT_MS = 10_000;

export interface LocalBrowser {
  /** A fresh profile (its own --user-data-dir), removed on close. */
  readonly context: BrowserContext;
  /** Every request the browser made to anything but 127.0.0.1 (a test should expect none). */
  readonly offLoopbackRequests: readonly string[];
  /** Console messages of every page, for failure messages. */
  readonly consoleMessages: readonly string[];
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

let loading: Promise<BrowserType> | undefined;

/** playwright-core's Chromium, loaded once, when a test first needs it. */
function loadChromium(): Promise<BrowserType> {
  loading ??= import("npm:playwright-core@1.65.1").then((module) => module.chromium);
  return loading;
}

/** Starts headless Chromium on a new empty profile. */
export async function launchChromium(): Promise<LocalBrowser> {
  try {
    await Deno.stat(CHROMIUM_PATH);
  } catch {
    throw new Error(`Cannot start Chromium: "${CHROMIUM_PATH}" is missing (apt-get install chromium)`);
  }
  const chromium = await loadChromium();
  const profileDir = await Deno.makeTempDir({ prefix: "gatehouse-chromium-" });
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: [...CHROMIUM_ARGS],
      timeout: 30_000,
      viewport: { width: 800, height: 700 },
    });
  } catch (error) {
    await Deno.remove(profileDir, { recursive: true });
    throw error;
  }
  context.setDefaultTimeout(BROWSER_TIMEOUT_MS);
  context.setDefaultNavigationTimeout(BROWSER_TIMEOUT_MS);
  const offLoopbackRequests: string[] = [];
  const consoleMessages: string[] = [];
  context.on("request", (request) => {
    const url = new URL(request.url());
    if (["http:", "https:", "ws:", "wss:"].includes(url.protocol) && url.hostname !== "127.0.0.1") {
      offLoopbackRequests.push(request.url());
    }
  });
  const watch = (page: Page) => page.on("console", (message) => consoleMessages.push(message.text()));
  context.pages().forEach(watch);
  context.on("page", watch);
  return {
    context,
    offLoopbackRequests,
    consoleMessages,
    newPage: () => context.newPage(),
    async close() {
      try {
        await within(15_000, context.close(), "Chromium shutdown");
      } finally {
        await Deno.remove(profileDir, { recursive: true }).catch(() => {});
      }
    },
  };
}

/** A loopback HTTP server playing an OAuth client's redirect URI, and serving pages a test gives it. */
export interface CallbackServer {
  /** `http://127.0.0.1:PORT` */
  readonly origin: string;
  /** `http://127.0.0.1:PORT/callback` */
  readonly redirectUri: string;
  /** Every URL `/callback` was called with, in order. */
  readonly callbacks: readonly URL[];
  /** Serves `html` at `path` (GET). */
  page(path: string, html: string): void;
  close(): Promise<void>;
}

export function startCallbackServer(): CallbackServer {
  const callbacks: URL[] = [];
  const pages = new Map<string, string>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const url = new URL(request.url);
    if (url.pathname === "/callback") {
      callbacks.push(url);
      return new Response("<!doctype html><title>Callback</title><p>Back at the client.</p>", {
        headers: { "content-type": "text/html; charset=utf-8" },
      });
    }
    const html = pages.get(url.pathname);
    if (html !== undefined) {
      return new Response(html, { headers: { "content-type": "text/html; charset=utf-8" } });
    }
    return new Response("not found", { status: 404 });
  });
  const origin = `http://127.0.0.1:${server.addr.port}`;
  return {
    origin,
    redirectUri: `${origin}/callback`,
    callbacks,
    page: (path, html) => void pages.set(path, html),
    close: () => within(5_000, server.shutdown(), "callback server shutdown"),
  };
}

/** Base64url without padding (RFC 7636 Appendix A). */
function base64Url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** A PKCE verifier and its S256 challenge (RFC 7636 §4.1, §4.2). */
export async function pkcePair(): Promise<{ verifier: string; challenge: string }> {
  const verifier = base64Url(crypto.getRandomValues(new Uint8Array(32)));
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return { verifier, challenge: base64Url(new Uint8Array(digest)) };
}

/** The two widths every page is looked at: a laptop, and a phone (390 CSS px, an iPhone 12 to 15). */
export const VIEWPORTS = {
  desktop: { width: 1280, height: 800 },
  phone: { width: 390, height: 844 },
} as const;

/**
 * Run in the page: the elements that reach past the right edge of the viewport (tag, class, right edge and
 * text, for the failure message), and whether the page scrolls sideways. A string, as this module is
 * type-checked without the DOM's types.
 */
const OVERFLOW_SCRIPT = `(() => {
  const width = document.documentElement.clientWidth;
  const elements = [];
  for (const element of document.body.querySelectorAll("*")) {
    const box = element.getBoundingClientRect();
    if (box.width > 0 && box.right > width + 0.5) {
      const text = (element.textContent ?? "").trim().slice(0, 40);
      elements.push("<" + element.tagName.toLowerCase() + ' class="' + element.className + '"> ' +
        Math.round(box.right) + "px: " + text);
    }
  }
  return { scrollsSideways: document.documentElement.scrollWidth > width, elements };
})()`;

/** What of the page reaches past the viewport's right edge; a page that fits has nothing there. */
export async function overflowOf(page: Page): Promise<{ scrollsSideways: boolean; elements: string[] }> {
  return await page.evaluate(OVERFLOW_SCRIPT) as { scrollsSideways: boolean; elements: string[] };
}

/** Asserts that nothing of the page is wider than the viewport, and that it does not scroll sideways. */
export async function assertFitsViewport(page: Page, what: string): Promise<void> {
  const overflow = await overflowOf(page);
  if (overflow.scrollsSideways || overflow.elements.length > 0) {
    throw new Error(
      `${what}: wider than the ${page.viewportSize()?.width} px viewport:\n${overflow.elements.join("\n")}`,
    );
  }
}

/** Run in the page: the computed value of a CSS property of the first element `selector` matches. */
export async function computedStyle(page: Page, selector: string, property: string): Promise<string> {
  return await page.locator(selector).first().evaluate(
    (element, name) =>
      // deno-lint-ignore no-explicit-any
      (globalThis as any).getComputedStyle(element).getPropertyValue(name) as string,
    property,
  );
}
