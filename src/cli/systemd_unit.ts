/** `gatehouse systemd-unit`: prints a hardened systemd unit for this installation. */
import { type Command, parseCommandArgs } from "./args.ts";

/** A hardened unit: no fixed user, state in /var/lib/gatehouse, read-only system, secrets as credentials. */
export function systemdUnit(options: { binary: string; registry: string }): string {
  return `[Unit]
Description=Gatehouse MCP gateway
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart=${options.binary} serve --registry ${options.registry} --data \${STATE_DIRECTORY}
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=2s
TimeoutStopSec=30s

# A fresh unprivileged user on every start; its state lives in /var/lib/gatehouse (mode 0700).
DynamicUser=yes
StateDirectory=gatehouse
StateDirectoryMode=0700
ConfigurationDirectory=gatehouse
# stdio backends started through npx need a writable home for their cache.
Environment=HOME=%S/gatehouse
UMask=0077
# Room for many connections and backend processes (each takes file descriptors).
LimitNOFILE=65536

# Secrets: each LoadCredential=NAME:FILE is readable as \${secret:NAME} in registry.yaml.
#LoadCredential=github:/etc/gatehouse/secrets/github
#LoadCredential=vault_key:/etc/gatehouse/secrets/vault_key

NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RemoveIPC=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
SystemCallArchitectures=native
CapabilityBoundingSet=
AmbientCapabilities=
# MemoryDenyWriteExecute is left off: the JavaScript engine's JIT needs it.

[Install]
WantedBy=multi-user.target
`;
}

export const systemdUnitCommand: Command = {
  help: `Usage: gatehouse systemd-unit [--binary PATH] [--registry PATH]

Prints a hardened systemd service unit (DynamicUser, StateDirectory, ProtectSystem=strict,
NoNewPrivileges, LoadCredential for secrets). Install it with:

  gatehouse systemd-unit | sudo tee /etc/systemd/system/gatehouse.service
  sudo systemctl daemon-reload && sudo systemctl enable --now gatehouse

Options:
  --binary PATH     where the gatehouse binary is installed (default: /usr/local/bin/gatehouse)
  --registry PATH   the registry file (default: /etc/gatehouse/registry.yaml)
  -h, --help        show this help`,
  run(args, io) {
    const { values } = parseCommandArgs(args, { binary: { type: "string" }, registry: { type: "string" } });
    io.stdout(systemdUnit({
      binary: values.binary ?? "/usr/local/bin/gatehouse",
      registry: values.registry ?? "/etc/gatehouse/registry.yaml",
    }));
    return Promise.resolve(0);
  },
};
