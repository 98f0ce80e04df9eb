// The benchmarks of product section 9 (proxy overhead, bridges side by side, memory, start-up and reload
// time) arrive with the proxy; until then there is nothing to measure.
// deno-lint-ignore no-console
console.log("not yet: the benchmarks arrive with the MCP proxy");
