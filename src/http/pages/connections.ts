// The page listing the signed-in user's connected third-party services.
import { remoteOAuthBackendOf } from "../../config/types.ts";
import { escapeHtml, hidden, layout, type SignedInAccount } from "./layout.ts";
import { timeHtml } from "./time.ts";

const STYLE = `
ul.connections{list-style:none;padding:0;margin:0}ul.connections li{padding:.8rem 0;border-top:1px solid #e4e6eb}
ul.connections h2{font-size:1.1rem;margin:0 0 .4rem}ul.connections form button{margin:0}
`;

/** The signed-in user's connected services (scope, expiry), each with a disconnect button. */
export function connectionsPage(
  options: {
    account: SignedInAccount;
    connections: readonly { service: string; scope: string; expiresAt?: number; updatedAt: number }[];
    /** Now, for "expires in 1 hour". */
    now: number;
    /** The zone times are shown in; by default the gateway's own. */
    timeZone?: string;
  },
): string {
  const { account } = options;
  const rows = options.connections.map((connection) => {
    const scopes = connection.scope.split(" ").filter(Boolean);
    // An OAuth-protected backend is kept as `backend:NAME`: shown by its name, as a server.
    const backend = remoteOAuthBackendOf(connection.service);
    const title = backend === undefined
      ? escapeHtml(connection.service)
      : `${escapeHtml(backend)} (MCP server)`;
    return `<li><h2>${title}</h2><dl><dt>Granted scope</dt>` +
      (scopes.length > 0
        ? `<dd>${scopes.map((scope) => `<code>${escapeHtml(scope)}</code>`).join(" ")}</dd>`
        : `<dd class="muted">none stated by the service</dd>`) +
      `<dt>Token expires</dt><dd>${
        connection.expiresAt === undefined
          ? `<span class="muted">no expiry given</span>`
          : timeHtml(connection.expiresAt, options)
      }</dd></dl>` +
      `<form method="post" action="/connections/${encodeURIComponent(connection.service)}/disconnect">${
        hidden({ csrf: account.csrf })
      }<button type="submit" class="secondary">Disconnect</button></form></li>`;
  }).join("");
  return layout(
    "Connections",
    `<h1>Your connections</h1>` +
      (rows
        ? `<p>Third-party services you connected: Gatehouse uses their tokens for your calls.</p>` +
          `<ul class="connections">${rows}</ul>`
        : "<p>No services connected.</p>"),
    { account, style: STYLE },
  );
}
