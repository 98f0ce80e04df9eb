// The page listing the signed-in user's connected third-party services.
import { escapeHtml, hidden, layout } from "./layout.ts";

/** The signed-in user's connected services, each with a disconnect button. */
export function connectionsPage(
  options: {
    user: string;
    csrf: string;
    connections: readonly { service: string; scope: string; expiresAt?: number; updatedAt: number }[];
  },
): string {
  const rows = options.connections.map((connection) =>
    `<li><strong>${escapeHtml(connection.service)}</strong>` +
    (connection.scope ? ` <span>(${escapeHtml(connection.scope)})</span>` : "") +
    `<br><small>${
      connection.expiresAt
        ? `token expires ${escapeHtml(new Date(connection.expiresAt).toISOString())}`
        : "no expiry given"
    }</small>` +
    `<form method="post" action="/connections/${encodeURIComponent(connection.service)}/disconnect">${
      hidden({ csrf: options.csrf })
    }<button type="submit" class="secondary">Disconnect</button></form></li>`
  ).join("");
  return layout(
    "Connections",
    `<h1>Your connections</h1><p>Signed in as <strong>${escapeHtml(options.user)}</strong>.</p>` +
      (rows ? `<ul>${rows}</ul>` : "<p>No services connected.</p>"),
  );
}
