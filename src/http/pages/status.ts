// The status page's HTML (no scripts, no outside assets, reloads itself).
import { escapeHtml, layout } from "./layout.ts";
import type { StatusEvent, StatusReport } from "../../status/status.ts";

/** The page reloads itself this often (seconds). */
export const STATUS_REFRESH_SECONDS = 15;

const STYLE = `
main.wide{max-width:60rem;margin:2vh auto;padding:1.2rem}
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #e4e6eb;vertical-align:top}
.scroll{overflow-x:auto}.state{font-weight:600;padding:.1rem .45rem;border-radius:4px}
.up{background:#dff5e3;color:#11652a}.down{background:#fde2e1;color:#9b1c1c}.starting{background:#fff4d6;color:#7a5300}.idle{background:#eceef2;color:#3d4452}
.muted{color:#5c6370}.problem{color:#9b1c1c;font-family:ui-monospace,monospace;font-size:.85rem;white-space:pre-wrap}
h2{font-size:1.05rem;margin:1.4rem 0 .4rem}
`;

function duration(seconds: number): string {
  const days = Math.floor(seconds / 86_400);
  const hours = Math.floor((seconds % 86_400) / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  if (days > 0) return `${days}d ${hours}h`;
  if (hours > 0) return `${hours}h ${minutes}m`;
  return `${minutes}m ${seconds % 60}s`;
}

const cell = (value: unknown) =>
  `<td>${value === null || value === undefined ? "–" : escapeHtml(String(value))}</td>`;

function eventTable(title: string, events: readonly StatusEvent[], empty: string): string {
  const rows = events.map((event) =>
    `<tr>${cell(event.at.replace("T", " ").slice(0, 19))}${cell(event.user)}${cell(event.backend)}${
      cell(event.message)
    }</tr>`
  ).join("");
  return `<h2>${escapeHtml(title)}</h2>` +
    (rows
      ? `<div class="scroll"><table><tr><th>When (UTC)</th><th>User</th><th>Backend</th><th>What</th></tr>${rows}</table></div>`
      : `<p class="muted">${escapeHtml(empty)}</p>`);
}

/** `/status`: server-rendered, no scripts or outside assets, readable on a phone, reloading itself. */
export function statusPage(report: StatusReport): string {
  const admin = report.viewer.admin;
  const header = `<h1>Gatehouse status</h1><p class="muted">Version ${escapeHtml(report.version)} · up ${
    duration(report.uptime_seconds)
  } · ${
    report.viewer.user ? `signed in as <strong>${escapeHtml(report.viewer.user)}</strong>` : "not signed in"
  }${admin ? " (admin)" : ""}</p>`;

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

  const backendRows = report.backends.map((backend) =>
    `<tr data-backend="${escapeHtml(backend.name)}"><td><strong>${escapeHtml(backend.name)}</strong></td>${
      cell(backend.transport)
    }` +
    `<td><span class="state ${escapeHtml(backend.state)}">${escapeHtml(backend.state)}</span></td>` +
    `${cell(backend.tools)}${cell(backend.latency_ms === null ? null : `${backend.latency_ms} ms`)}${
      cell(backend.processes)
    }` +
    (admin ? `<td class="problem">${escapeHtml(backend.last_error ?? "")}</td>` : "") + `</tr>`
  ).join("");
  const backends = `<h2>Backends</h2>` +
    (backendRows
      ? `<div class="scroll"><table><tr><th>Backend</th><th>Transport</th><th>State</th><th>Tools</th><th>Latency</th><th>Processes</th>${
        admin ? "<th>Last error</th>" : ""
      }</tr>${backendRows}</table></div>`
      : `<p class="muted">No backends you may use.</p>`);

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
                ? ` <span class="muted">token expires ${escapeHtml(connection.expires_at)}</span>`
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
  });
}
