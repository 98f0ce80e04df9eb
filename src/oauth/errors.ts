/** An RFC 6749 §5.2 error: `error` is the wire code, the message its `error_description`. */
export class OAuthError extends Error {
  readonly error: string;
  readonly status: number;

  constructor(error: string, description: string, status = 400) {
    super(description);
    this.name = "OAuthError";
    this.error = error;
    this.status = status;
  }

  toResponse(headers: Record<string, string> = {}): Response {
    return Response.json({ error: this.error, error_description: this.message }, {
      status: this.status,
      headers: { "cache-control": "no-store", ...headers },
    });
  }
}
