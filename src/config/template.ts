/** Fields of the calling user that `${user:...}` may reference. */
export const USER_FIELDS = ["id", "name", "email", "groups"] as const;
export type UserField = typeof USER_FIELDS[number];

/**
 * One piece of a backend `env` or `headers` value: literal text (with `${env:}` and `${secret:}`
 * already substituted at load), or a placeholder filled per request.
 */
export type TemplatePart =
  | { readonly kind: "text"; readonly text: string; readonly source: string }
  | { readonly kind: "service"; readonly service: string }
  | { readonly kind: "user"; readonly field: UserField };

/** What a per-request placeholder is filled with. */
export interface TemplateContext {
  readonly user: {
    readonly id: string;
    readonly name: string;
    readonly email?: string;
    readonly groups: readonly string[];
  };
  /** The user's current access token for a third-party service. */
  serviceToken(service: string): string;
}

/**
 * A backend `env` or `headers` value. Serialises to its source form (`Bearer ${secret:x}`), so a
 * resolved registry can be logged or snapshotted without revealing what its references hold.
 */
export class Template {
  readonly parts: readonly TemplatePart[];

  constructor(parts: readonly TemplatePart[]) {
    this.parts = Object.freeze(parts.map((part) => Object.freeze({ ...part })));
    Object.freeze(this);
  }

  /** True when the value differs per user (uses `${service:...}` or `${user:...}`). */
  get perUser(): boolean {
    return this.parts.some((part) => part.kind !== "text");
  }

  /** The services this value needs a token for. */
  get services(): string[] {
    return this.parts.flatMap((part) => part.kind === "service" ? [part.service] : []);
  }

  /** The value for a request; only templates without placeholders render without a context. */
  render(context?: TemplateContext): string {
    return this.parts.map((part) => {
      if (part.kind === "text") return part.text;
      if (!context) throw new TypeError("Cannot render template: it needs a user context");
      if (part.kind === "service") return context.serviceToken(part.service);
      const value = context.user[part.field];
      return Array.isArray(value) ? value.join(",") : String(value ?? "");
    }).join("");
  }

  /** A fingerprint that changes whenever the rendered value would (used to diff registries). */
  identity(): string {
    return JSON.stringify(this.parts.map((part) => part.kind === "text" ? ["t", part.text] : part));
  }

  toJSON(): string {
    return this.parts.map((part) => {
      if (part.kind === "text") return part.source;
      return part.kind === "service" ? `\${service:${part.service}}` : `\${user:${part.field}}`;
    }).join("");
  }
}
