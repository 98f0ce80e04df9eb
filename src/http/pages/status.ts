// The status page's HTML (no scripts, no outside assets, reloads itself): tables on a wide screen, each
// row a stack of labelled fields on a phone.
import { escapeHtml, layout, type SignedInAccount } from "./layout.ts";
import { timeHtml } from "./time.ts";
import type { StatusEvent, StatusReport } from "../../status/status.ts";

/** The page reloads itself this often (seconds). */
export const STATUS_REFRESH_SECONDS = 15;

/** Below this width a table's rows become stacks of labelled fields (390 px phones, with room to spare). */
const STACK_BELOW = "40rem";

const STYLE = `
main.wide{max-width:60rem;margin:2vh auto;padding:1.2rem}
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #e4e6eb;vertical-align:top}
.state{font-weight:600;padding:.1rem .45rem;border-radius:4px}
.up{background:#dff5e3;color:#11652a}.down{background:#fde2e1;color:#9b1c1c}.starting{background:#fff4d6;color:#7a5300}.idle{background:#eceef2;color:#3d4452}
.problem{color:#9b1c1c;font-family:ui-monospace,monospace;font-size:.85rem;white-space:pre-wrap;overflow-wrap:anywhere}
h2{font-size:1.05rem;margin:1.4rem 0 .4rem}
td .label{display:none}
@media (max-width:${STACK_BELOW}){
main.wide{margin:0;border-radius:0;padding:1rem}
table.stack,table.stack tbody,table.stack tr{display:block}
table.stack thead{display:none}
table.stack tr{padding:.4rem 0;border-bottom:1px solid #c9ccd3}
table.stack td{display:grid;grid-template-columns:6.5rem minmax(0,1fr);gap:.5rem;border:0;padding:.15rem 0;overflow-wrap:anywhere}
table.stack td .label{display:block;font-weight:600;color:#3d4452;font-family:system-ui,sans-serif;font-size:.9rem;white-space:normal}
}
`;

function duration(seconds: number): string {
  const days = Math.floor(seconds / 86_400);
  const hours = Math.floor((seconds % 86_400) / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  if (days > 0) return `${days}d ${hours}h`;
  if (hours > 0) return `${hours}h ${minutes}m`;
  return `${minutes}m ${seconds % 60}s`;
}

/** A cell: its column's label (shown only when the row is stacked on a narrow screen), then the value. */
const cell = (label: string, value: unknown, options: { className?: string; html?: string } = {}) =>
  `<td${options.className ? ` class="${options.className}"` : ""}><span class="label">${
    escapeHtml(label)
  }</span><span>${
    options.html ?? (value === null || value === undefined ? "–" : escapeHtml(String(value)))
  }</span></td>`;

/** A table whose rows stack into labelled fields on a narrow screen. */
const stackingTable = (labels: readonly string[], rows: string) =>
  `<table class="stack"><thead><tr>${
    labels.map((label) => `<th scope="col">${escapeHtml(label)}</th>`).join("")
  }</tr></thead><tbody>${rows}</tbody></table>`;

const EVENT_LABELS = ["When (UTC)", "User", "Backend", "What"] as const;

function eventTable(title: string, events: readonly StatusEvent[], empty: string): string {
  const [when, user, backend, what] = EVENT_LABELS;
  const rows = events.map((event) =>
    `<tr>${cell(when, event.at.replace("T", " ").slice(0, 19))}${cell(user, event.user)}${
      cell(backend, event.backend)
    }${cell(what, event.message)}</tr>`
  ).join("");
  return `<h2>${escapeHtml(title)}</h2>` +
    (rows ? stackingTable(EVENT_LABELS, rows) : `<p class="muted">${escapeHtml(empty)}</p>`);
}

/**
 * `/status`: server-rendered, no scripts or outside assets, readable on a phone, reloading itself. A viewer
 * signed in at the gateway (`account`) is named at the top, with the sign-out button.
 */
export function statusPage(
  report: StatusReport,
  options: { now: number; timeZone?: string; account?: Omit<SignedInAccount, "note"> },
): string {
  const admin = report.viewer.admin;
  const account = options.account ? { ...options.account, note: admin ? "admin" : undefined } : undefined;
  // Without a session (`auth: none`, or a public page) the line says who the page is shown as.
  const viewer = account
    ? ""
    : ` · ${
      report.viewer.user ? `signed in as <strong>${escapeHtml(report.viewer.user)}</strong>` : "not signed in"
    }${admin ? " (admin)" : ""}`;
  const header = `<h1>Gatehouse status</h1><p class="muted">Version ${escapeHtml(report.version)} · up ${
    duration(report.uptime_seconds)
  }${viewer}</p>`;

  const failure = report.registry.last_error;
  const registry =
    `<h2>Registry</h2><p>Generation ${report.registry.generation}, loaded ${
      escapeHtml(report.registry.loaded_at.replace("T", " ").slice(0, 19))
    } UTC.</p>` + (failure
      ? `<p><strong>The last edit was rejected</strong> at ${
        escapeHtml(failure.at.replace("T", " ").slice(0, 19))
      } UTC; the registry above keeps serving.</p>` +
        (failure.problems ? `<div class="problem">${escapeHtml(failure.problems.join("\n"))}</div>` : "")
      : "");

  const labels = ["Backend", "Transport", "State", "Tools", "Latency", "Processes"];
  if (admin) labels.push("Last error");
  const backendRows = report.backends.map((backend) =>
    `<tr data-backend="${escapeHtml(backend.name)}">${
      cell("Backend", null, { html: `<strong>${escapeHtml(backend.name)}</strong>` })
    }${cell("Transport", backend.transport)}${
      cell("State", null, {
        html: `<span class="state ${escapeHtml(backend.state)}">${escapeHtml(backend.state)}</span>`,
      })
    }${cell("Tools", backend.tools)}${
      cell("Latency", backend.latency_ms === null ? null : `${backend.latency_ms} ms`)
    }${cell("Processes", backend.processes)}` +
    (admin ? cell("Last error", backend.last_error, { className: "problem" }) : "") + `</tr>`
  ).join("");
  const backends = `<h2>Backends</h2>` +
    (backendRows ? stackingTable(labels, backendRows) : `<p class="muted">No backends you may use.</p>`);

  const renamed = report.renamed.length > 0
    ? `<h2>Shortened names</h2><ul>${
      report.renamed.map((entry) =>
        `<li><code>${escapeHtml(entry.from)}</code> → <code>${escapeHtml(entry.to)}</code></li>`
      )
        .join("")
    }</ul>`
    : "";

  const sessions = report.sessions
    ? `<h2>Sessions</h2><p>${report.sessions.legacy} open 2025-era session${
      report.sessions.legacy === 1 ? "" : "s"
    }; ${report.sessions.modern_requests} 2026-07-28 request${
      report.sessions.modern_requests === 1 ? "" : "s"
    } since start.</p>`
    : "";

  const recent = report.recent
    ? eventTable("Recent errors", report.recent.errors, "None.") +
      eventTable("Recent denials", report.recent.denials, "None.") +
      eventTable("Recent consent requests", report.recent.consent_requests, "None.")
    : "";

  const connections = report.connections
    ? `<h2>Your connections</h2>` +
      (report.connections.length > 0
        ? `<ul>${
          report.connections.map((connection) =>
            `<li><strong>${escapeHtml(connection.service)}</strong>${
              connection.expires_at
                ? ` <span class="muted">token expires ${
                  timeHtml(Date.parse(connection.expires_at), options)
                }</span>`
                : ""
            }</li>`
          ).join("")
        }</ul><p><a href="/connections">Manage connections</a></p>`
        : `<p class="muted">No services connected.</p>`)
    : "";

  return layout("Status", header + registry + backends + renamed + sessions + recent + connections, {
    wide: true,
    refreshSeconds: STATUS_REFRESH_SECONDS,
    style: STYLE,
    account,
  });
}
