/** An RFC 6749 §5.2 error: `error` is the wire code, the message its `error_description`. */
export class OAuthError extends Error {
  readonly error: string;
  readonly status: number;
  /** Extra response headers, such as the WWW-Authenticate of a failed client authentication. */
  readonly headers: Record<string, string>;

  constructor(error: string, description: string, status = 400, headers: Record<string, string> = {}) {
    super(description);
    this.name = "OAuthError";
    this.error = error;
    this.status = status;
    this.headers = headers;
  }

  toResponse(headers: Record<string, string> = {}): Response {
    return Response.json({ error: this.error, error_description: this.message }, {
      status: this.status,
      headers: { "cache-control": "no-store", ...this.headers, ...headers },
    });
  }
}
