/**
 * A real, small file system for tests of a full or read-only store: a tmpfs of a fixed size, or, where
 * tmpfs cannot be mounted, an ext4 image on a loop device. Needs root (tests run as root in CI and the
 * sandbox); it throws, never skips, when neither can be mounted. Not a test file itself.
 */

export interface SmallFs {
  /** Where it is mounted. */
  readonly path: string;
  /** How: `tmpfs`, or `ext4 on a loop device`. */
  readonly kind: string;
  /** Remounts it read-only (`ro`) or writable again. */
  remount(mode: "ro" | "rw"): Promise<void>;
  /** Unmounts it (lazily if a process still holds it) and removes what the mount needed. */
  unmount(): Promise<void>;
}

async function run(command: string, args: string[]): Promise<{ ok: boolean; output: string }> {
  const result = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" }).output();
  const decoder = new TextDecoder();
  return { ok: result.success, output: decoder.decode(result.stdout) + decoder.decode(result.stderr) };
}

async function must(command: string, args: string[]): Promise<void> {
  const result = await run(command, args);
  if (!result.ok) throw new Error(`Cannot run ${command} ${args.join(" ")}: ${result.output.trim()}`);
}

/**
 * Mounts a file system of `sizeBytes` on the existing directory `path`, its root owned by the current
 * user with mode 0700 (as the gateway wants its data directory).
 */
export async function mountSmallFs(path: string, sizeBytes: number): Promise<SmallFs> {
  const uid = Deno.uid() ?? 0;
  const gid = Deno.gid() ?? 0;
  const remount = (mode: "ro" | "rw") => must("mount", ["-o", `remount,${mode}`, path]);
  const tmpfs = await run("mount", [
    "-t",
    "tmpfs",
    "-o",
    `size=${sizeBytes},mode=0700,uid=${uid},gid=${gid}`,
    "tmpfs",
    path,
  ]);
  if (tmpfs.ok) {
    return { path, kind: "tmpfs", remount, unmount: () => unmountAt(path) };
  }

  // No tmpfs here: an ext4 image of the same size on a loop device.
  const image = `${path}.img`;
  await must("fallocate", ["-l", String(Math.max(sizeBytes, 2 * 1024 * 1024)), image]);
  const loop = await run("mkfs.ext4", ["-q", "-F", "-m", "0", image]);
  const mounted = loop.ok ? await run("mount", ["-o", "loop", image, path]) : loop;
  if (!mounted.ok) {
    await Deno.remove(image).catch(() => {});
    throw new Error(
      `Cannot mount a small file system on ${path}: tmpfs said "${tmpfs.output.trim()}", ` +
        `a loop-mounted ext4 image said "${mounted.output.trim()}"`,
    );
  }
  await Deno.chmod(path, 0o700);
  await Deno.chown(path, uid, gid);
  // ext4 keeps lost+found at its root; the gateway does not mind, but leave the directory as it found it.
  await Deno.remove(`${path}/lost+found`, { recursive: true }).catch(() => {});
  return {
    path,
    kind: "ext4 on a loop device",
    remount,
    async unmount() {
      await unmountAt(path);
      await Deno.remove(image).catch(() => {});
    },
  };
}

async function unmountAt(path: string): Promise<void> {
  const result = await run("umount", [path]);
  if (!result.ok) await must("umount", ["-l", path]);
}

/**
 * Writes `filler` until the file system has no space left; returns the bytes written. The last write is
 * the one the kernel refused with ENOSPC, so nothing is left for anyone else.
 */
export async function fillDisk(filler: string): Promise<number> {
  const chunk = new Uint8Array(64 * 1024).fill(0x5a);
  const file = await Deno.open(filler, { create: true, write: true, append: true });
  let written = 0;
  try {
    for (;;) {
      try {
        written += await file.write(chunk);
      } catch (error) {
        if ((error as { code?: string }).code === "ENOSPC") break;
        throw error;
      }
    }
    // Less than a chunk may be left: fill it byte-sized pieces at a time.
    for (let size = 32 * 1024; size >= 1; size = Math.floor(size / 2)) {
      for (;;) {
        try {
          written += await file.write(chunk.subarray(0, size));
        } catch (error) {
          if ((error as { code?: string }).code === "ENOSPC") break;
          throw error;
        }
      }
    }
  } finally {
    file.close();
  }
  return written;
}

/** Free bytes on the file system holding `path`, for non-root users (statfs `bavail`). */
export async function freeBytes(path: string): Promise<number> {
  const { statfs } = await import("node:fs/promises");
  const stats = await statfs(path);
  return stats.bavail * stats.bsize;
}
