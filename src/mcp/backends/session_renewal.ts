// A Streamable HTTP backend that forgot its session (it restarted) gets one new session, and the calls
// that found the old one gone are sent once more on it.

/**
 * MCP 2025-11-25 basic/transports §Session Management: a server answers 404 to a session it no longer
 * knows, and the client must start a new session with a new initialize. The request never ran there, so
 * it is sent once more on the new one.
 */
export class SessionRenewal {
  /** Whether the connection has a session that could be renewed (an HTTP session, a way to a new one). */
  readonly #renewable: () => boolean;
  /** Starts the new session; rejects when there is none either. */
  readonly #reconnect: () => Promise<void>;
  /** Which backend session this is (1 for the first): a call knows whether its session was renewed. */
  #session = 1;
  #renewing: Promise<void> | undefined;

  constructor(options: { renewable: () => boolean; reconnect: () => Promise<void> }) {
    this.#renewable = options.renewable;
    this.#reconnect = options.reconnect;
  }

  /** Runs `send` on the current backend session, and once more on a new one if that one was gone. */
  async run<T>(send: () => Promise<T>): Promise<T> {
    // Calls arriving while a new session is being started wait for it rather than fail.
    await this.#renewing?.catch(() => {});
    const session = this.#session;
    try {
      return await send();
    } catch (error) {
      if (!this.#renewable() || !isSessionLost(error)) throw error;
      await this.#renew(session);
      return await send();
    }
  }

  /** Starts one new session for every call that found session `lost` gone. */
  #renew(lost: number): Promise<void> {
    if (this.#session === lost && !this.#renewing) {
      this.#session += 1;
      this.#renewing = this.#reconnect().finally(() => {
        this.#renewing = undefined;
      });
    }
    return this.#renewing ?? Promise.resolve();
  }
}

/** Whether a request failed because the backend no longer knows its session. */
export function isSessionLost(error: unknown): boolean {
  const status = (error as { status?: unknown } | null)?.status;
  return status === 404 || (error instanceof Error && /session not found/i.test(error.message));
}
