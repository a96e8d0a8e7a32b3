// The explorer in a real browser: Debian's chromium, headless, driven by
// playwright-core. Started by tests/e2e/explorer_test.cc with a JSON config
// file (argv[2]) once its one-validator node is ready:
//   {"base": "http://127.0.0.1:PORT", "genesis_file", "vectors_file",
//    "tx_json": <body of POST /v1/txs>, "tx_hash", "state_app", "state_key",
//    "state_value", "screenshots_dir" (optional), "chromium"}
// Checks, in order: the page loads; a tx submitted now appears in the latest
// txs; its proof verifies in the verify panel against the genesis; a tampered
// proof fails; an answer with validator_changes gets no verdict but the CLI
// command; the state lookup finds the tx's value; and verify.js gives
// every shared vector (tests/browser/verify-vectors.json) the verdict the C++
// verifier gives it. Prints one line per check and "N passed, N failed";
// exits non-zero on any failure.
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const TIMEOUT = 20000;
let passed = 0;
let failed = 0;

async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok: ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAILED: ${name}: ${e.stack || e}`);
  }
}

function expect(cond, what) {
  if (!cond) throw new Error(what);
}

async function screenshot(page, name) {
  if (!config.screenshots_dir) return;
  await page.screenshot({ path: path.join(config.screenshots_dir, `${name}.png`), fullPage: true });
}

const browser = await chromium.launch({
  executablePath: config.chromium || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // A refused inline script or style would show up here as a CSP report.
    if (m.type() === 'error' && /Content Security Policy/.test(m.text())) problems.push(m.text());
  });
  page.setDefaultTimeout(TIMEOUT);

  await check('the page loads with its modules under the CSP', async () => {
    const res = await page.goto(`${config.base}/explorer`);
    expect(res.status() === 200, `status ${res.status()}`);
    expect(/default-src 'none'/.test(res.headers()['content-security-policy'] || ''), 'no CSP header');
    await page.waitForSelector('body[data-ready="true"]');
    await page.waitForSelector('#blocks tbody tr');
    const mode = await page.getAttribute('#live', 'data-mode');
    // 'poll' while this api has no /v1/events; 'live' once it has.
    console.log(`  feed mode: ${mode}`);
    expect(problems.length === 0, problems.join('; '));
  });

  await check('a tx submitted now appears in the latest txs', async () => {
    const res = await fetch(`${config.base}/v1/txs`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(config.tx_json),
    });
    expect(res.status === 202 || res.status === 200, `submit answered ${res.status}`);
    await page.waitForSelector(`#txs tr[data-tx="${config.tx_hash}"]`);
    // Wait for the block after it too, so that its receipt is certified.
    const row = await page.$(`#txs tr[data-tx="${config.tx_hash}"]`);
    const height = Number(await row.$eval('td:nth-child(2)', (td) => td.textContent));
    await page.waitForSelector(`#blocks tr[data-height="${height + 1}"]`);
    await screenshot(page, 'explorer-latest');
  });

  const genesis = fs.readFileSync(config.genesis_file, 'utf8');
  await check("the tx's proof verifies in the verify panel", async () => {
    await page.click(`#txs tr[data-tx="${config.tx_hash}"] a`);
    await page.waitForSelector('#verify-run');
    expect((await page.inputValue('#verify-hash')) === config.tx_hash, 'the panel has another hash');
    await page.fill('#genesis', genesis);
    await page.click('#verify-run');
    await page.waitForSelector('#verify-result [data-verdict]');
    const verdict = await page.getAttribute('#verify-result [data-verdict]', 'data-verdict');
    const text = await page.textContent('#verify-result');
    expect(verdict === 'ok', `verdict ${verdict}: ${text}`);
    expect(/receipt "ok" is in block/.test(text), `the receipt was not checked: ${text}`);
    await screenshot(page, 'explorer-tx-verify');
  });

  await check('a tampered proof fails in the verify panel', async () => {
    const hex = await page.inputValue('#verify-proof');
    // A hex digit inside the tx's signature (raw_tx comes first).
    const at = 2 * 100;
    const flipped = hex.slice(0, at) + (hex[at] === '0' ? '1' : '0') + hex.slice(at + 1);
    await page.fill('#verify-proof', flipped);
    await page.click('#verify-run');
    await page.waitForFunction(() => {
      const v = document.querySelector('#verify-result [data-verdict]');
      return v && v.dataset.verdict !== 'ok';
    });
    const verdict = await page.getAttribute('#verify-result [data-verdict]', 'data-verdict');
    expect(verdict === 'fail', `verdict ${verdict}`);
    await screenshot(page, 'explorer-tx-tampered');
  });

  await check('a chain whose validator set changed is sent to the CLI', async () => {
    // The answer as the api gives it once the set changed below the block.
    await page.route(`**/v1/txs/${config.tx_hash}`, async (route) => {
      const res = await route.fetch();
      const body = await res.json();
      body.validator_changes = ['00'];
      await route.fulfill({ response: res, json: body });
    });
    await page.goto(`${config.base}/explorer#/tx/${config.tx_hash}`);
    await page.reload();  // the same URL would not render the view again
    await page.waitForSelector('#verify-run');
    await page.fill('#genesis', genesis);
    await page.click('#verify-run');
    await page.waitForSelector('#verify-result [data-verdict]');
    const verdict = await page.getAttribute('#verify-result [data-verdict]', 'data-verdict');
    const text = await page.textContent('#verify-result');
    expect(verdict === 'unsupported', `verdict ${verdict}: ${text}`);
    expect(/consortia verify/.test(text), text);
    await page.unroute(`**/v1/txs/${config.tx_hash}`);
  });

  await check('the block page shows the tx and its certificate', async () => {
    const height = await page.$eval('#tx a[href^="#/block/"]', (a) => a.textContent);
    await page.click('#tx a[href^="#/block/"]');
    await page.waitForSelector(`#block`);
    await page.waitForSelector(`li[data-tx="${config.tx_hash}"]`);
    const title = await page.textContent('#block h2');
    expect(title === `Block ${height}`, title);
    await screenshot(page, 'explorer-block');
  });

  await check('the state lookup finds the value the tx set', async () => {
    await page.goto(`${config.base}/explorer#/state?app=${encodeURIComponent(config.state_app)}&key=${encodeURIComponent(config.state_key)}`);
    await page.waitForSelector('#state-result table');
    const text = await page.textContent('#state-result');
    expect(text.includes(config.state_value), text);
    await screenshot(page, 'explorer-state');
  });

  await check('verify.js gives every shared vector its verdict', async () => {
    const file = JSON.parse(fs.readFileSync(config.vectors_file, 'utf8'));
    const results = await page.evaluate(async ({ vectors, merkle }) => {
      const m = await import('/explorer/verify.js');
      return { bundles: await m.runVectors(vectors), merkle: await m.runMerkleVectors(merkle) };
    }, file);
    expect(results.bundles.length === file.vectors.length, 'not every bundle vector ran');
    expect(results.merkle.length === file.merkle.length, 'not every Merkle vector ran');
    const wrong = [...results.bundles, ...results.merkle].filter((r) => r.got !== r.expect);
    expect(wrong.length === 0, `wrong verdicts: ${JSON.stringify(wrong)}`);
    console.log(`  ${results.bundles.length} bundle vectors, ${results.merkle.length} Merkle vectors`);
  });

  // The live path as the contract of GET /v1/events specifies it, whether or
  // not this api serves the stream yet: the page's requests for it are
  // answered by the test (block and tx events), everything else by the node.
  await check('the page follows the event stream (contract of /v1/events)', async () => {
    const live = await context.newPage();
    live.on('pageerror', (e) => problems.push(`page error (live): ${e.message}`));
    const asked = [];
    const fakeHash = 'ab'.repeat(32);
    await live.route(/\/v1\/events/, async (route) => {
      asked.push({ url: route.request().url() });
      const body = asked.length === 1
        ? 'retry: 200\n\n' +
          'id: 9000000-0\nevent: block\ndata: {"height":9000000,"hash":"' + 'cd'.repeat(32) +
            '","time":"2026-01-01T00:00:00Z","tx_count":1}\n\n' +
          ': heartbeat\n\n' +
          'id: 9000000-1\nevent: tx\ndata: {"height":9000000,"index":0,"tx_hash":"' + fakeHash +
            '","app":"kv","method":"set","sender":"00","result":{"code":0,"code_name":"ok","log":""}}\n\n'
        : 'retry: 60000\n\n';
      await route.fulfill({ status: 200, headers: { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' }, body });
    });
    await live.goto(`${config.base}/explorer`);
    await live.waitForSelector(`#txs tr[data-tx="${fakeHash}"]`);
    await live.waitForSelector('#blocks tr[data-height="9000000"]');
    const result = await live.textContent(`#txs tr[data-tx="${fakeHash}"] td:nth-child(4)`);
    expect(result === 'ok', `result cell ${result}`);
    expect(/from_height=\d+/.test(asked[0].url), `asked ${asked[0].url}`);
    // The end of the stream is not an error that stops it: the browser
    // reconnects (sending Last-Event-ID itself, which the interception here
    // does not show), and the page does not poll.
    for (let i = 0; i < 100 && asked.length < 2; i++) await live.waitForTimeout(100);
    expect(asked.length >= 2, 'the page did not reconnect to the stream');
    expect((await live.getAttribute('#live', 'data-mode')) !== 'poll', 'the page fell back to polling');
    await live.close();
  });

  await check('no page error and no CSP refusal all along', async () => {
    expect(problems.length === 0, problems.join('; '));
  });
} finally {
  await browser.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
