// Runs the graphql-http server audit (every MUST, SHOULD and MAY of GraphQL over HTTP) against a
// running Facade and prints one JSON line per audit. Exits 1 when a MUST or SHOULD fails.
// Usage: node audit.mjs http://127.0.0.1:PORT/graphql
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs URL');
  process.exit(2);
}
const results = [];
for (const audit of serverAudits({ url })) {
  const result = await audit.fn();
  results.push({ id: audit.id, name: audit.name, status: result.status, reason: result.reason });
}
let failed = 0;
for (const r of results) {
  console.log(JSON.stringify(r));
  if (r.status !== 'ok' && (r.name.startsWith('MUST') || r.name.startsWith('SHOULD'))) {
    failed += 1;
  }
}
console.error(`${results.length} audits, ${failed} MUST/SHOULD failed`);
process.exit(failed === 0 ? 0 : 1);
