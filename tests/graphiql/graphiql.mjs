// Drives Facade's GraphiQL page in Debian's chromium, headless: loads the page, sets the token in
// the Headers editor, runs an operation with the Run button and waits for the result pane.
// Every request to another origin is blocked and reported; so is every CSP violation.
// Usage: node graphiql.mjs http://127.0.0.1:PORT/graphql TOKEN '{ query }' 'expected text'
import { chromium } from 'playwright-core';

const [url, token, query, expected] = process.argv.slice(2);
const origin = new URL(url).origin;
const report = { ok: false, foreign: [], violations: [], result: '' };
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu'],
  headless: true,
});
try {
  const page = await browser.newPage();
  await page.route('**/*', (route) => {
    const u = route.request().url();
    if (u.startsWith(origin) || u.startsWith('data:')) return route.continue();
    report.foreign.push(u);
    return route.abort();
  });
  page.on('console', (msg) => {
    if (/Content Security Policy/i.test(msg.text())) report.violations.push(msg.text());
  });
  page.on('pageerror', (e) => report.violations.push(`page error: ${e.message}`));
  await page.goto(url, { waitUntil: 'load', timeout: 30000 });
  await page.waitForSelector('.graphiql-container', { timeout: 30000 });
  // The user's steps: the token in the Headers editor, the operation in the query editor.
  await page.evaluate(([headers, q]) => {
    // The Headers editor is the one holding the page's Authorization template.
    const editors = [...document.querySelectorAll('.CodeMirror')].map((el) => el.CodeMirror);
    editors.find((cm) => cm.getValue().includes('Authorization')).setValue(headers);
    document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(q);
  }, [JSON.stringify({ Authorization: `Bearer ${token}` }), query]);
  await page.click('.graphiql-execute-button');
  if (process.env.SCREENSHOT) {
    await page.waitForTimeout(3000);
    await page.screenshot({ path: process.env.SCREENSHOT });
  }
  await page.waitForFunction(
    (text) => (document.querySelector('.result-window')?.textContent || '').includes(text),
    expected,
    { timeout: 30000 },
  );
  report.result = await page.evaluate(() => document.querySelector('.result-window').textContent);
  report.ok = report.foreign.length === 0 && report.violations.length === 0;
} catch (e) {
  report.error = String(e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
process.exit(report.ok ? 0 : 1);
