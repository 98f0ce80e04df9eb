/** The gateway's version, reported by `gatehouse version`, /readyz and the status page. */
export const VERSION = "0.1.0";
