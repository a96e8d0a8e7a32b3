// The explorer page: latest blocks and txs (live from GET /v1/events, or by
// polling GET /v1/blocks when the event stream is not there), a block, a tx
// with its receipt and the verify panel, and a state key lookup. Plain DOM:
// every value from the api goes in as text, never as markup.
import { fromHex } from './codec.js';
import { SUITE, parseGenesis, verifyTxBundle } from './verify.js';

const MAX_BLOCKS = 20;
const MAX_TXS = 50;
const POLL_MS = 1000;

// ------------------------------------------------------------ helpers

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const short = (hex) => (hex && hex.length > 20 ? `${hex.slice(0, 10)}…${hex.slice(-8)}` : hex);
const txLink = (hash) => el('a', { href: `#/tx/${hash}`, class: 'mono', title: hash }, short(hash));
const blockLink = (h) => el('a', { href: `#/block/${h}` }, String(h));

function timeText(b) {
  if (b.time) return b.time;
  if (b.time_ms !== undefined) return new Date(Number(b.time_ms)).toISOString();
  return '';
}

function apiKey() { return sessionStorage.getItem('consortia.api_key') || ''; }

async function api(path) {
  const headers = {};
  if (apiKey()) headers.Authorization = `Bearer ${apiKey()}`;
  const res = await fetch(path, { headers });
  let body = null;
  try { body = await res.json(); } catch { body = null; }
  return { status: res.status, body };
}

function problemText(r) {
  if (r.body && r.body.title) return `${r.status} ${r.body.title}: ${r.body.detail || ''}`;
  return `HTTP ${r.status}`;
}

function table(head, rows) {
  return el('table', {}, el('thead', {}, el('tr', {}, head.map((h) => el('th', {}, h)))),
    el('tbody', {}, rows));
}

function kv(pairs) {
  return el('table', { class: 'kv' }, el('tbody', {},
    pairs.map(([k, v]) => el('tr', {}, el('th', {}, k),
      v instanceof Node ? el('td', {}, v) : el('td', { class: 'mono' }, v === undefined ? '' : String(v))))));
}

// ------------------------------------------------------------ the feed

const feed = {
  blocks: [],  // newest first: {height, hash, time, tx_count}
  txs: [],     // newest first: {height, index, tx_hash, app, method, result}
  next: 1,     // the next height not seen yet
  mode: 'connecting',
  listeners: new Set(),
};

function changed() { for (const f of feed.listeners) f(); }

function setMode(mode) {
  feed.mode = mode;
  const badge = document.getElementById('live');
  badge.textContent = { live: 'live', poll: 'polling', connecting: 'connecting…', reconnecting: 'reconnecting…' }[mode] || mode;
  badge.className = `badge ${mode === 'live' ? 'live' : mode === 'poll' ? 'poll' : ''}`;
  badge.dataset.mode = mode;
}

function addBlock(b) {
  const height = Number(b.height);
  if (feed.blocks.some((x) => x.height === height)) return;
  feed.blocks.unshift({ height, hash: b.hash || b.block_hash, time: timeText(b.header || b) || timeText(b),
    tx_count: b.tx_count, fresh: b.fresh !== false });
  feed.blocks.sort((a, c) => c.height - a.height);
  feed.blocks.length = Math.min(feed.blocks.length, MAX_BLOCKS);
  feed.next = Math.max(feed.next, height + 1);
  changed();
}

function addTx(t) {
  if (feed.txs.some((x) => x.tx_hash === t.tx_hash)) return;
  feed.txs.unshift({ ...t, fresh: t.fresh !== false });
  feed.txs.sort((a, c) => (c.height - a.height) || (c.index - a.index));
  feed.txs.length = Math.min(feed.txs.length, MAX_TXS);
  changed();
}

// The txs of a block, for the polling fallback and the first page (the
// event stream sends them itself).
async function loadBlockTxs(height) {
  const r = await api(`/v1/blocks/${height}`);
  if (r.status !== 200) return;
  const hashes = r.body.tx_hashes || [];
  await Promise.all(hashes.slice(-MAX_TXS).map(async (hash, i) => {
    const t = await api(`/v1/txs/${hash}`);
    const tx = t.status === 200 ? t.body.tx : {};
    addTx({ height, index: i, tx_hash: hash, app: tx.app, method: tx.method, sender: tx.sender,
      result: t.status === 200 ? t.body.receipt : null });
  }));
}

async function pollOnce() {
  const r = await api(`/v1/blocks?from=${feed.next}&limit=${MAX_BLOCKS}`);
  if (r.status !== 200) return;
  for (const b of r.body.blocks) {
    addBlock(b);
    if (b.tx_count > 0) await loadBlockTxs(b.height);
  }
}

function startPolling() {
  setMode('poll');
  const tick = async () => {
    try { await pollOnce(); } catch { /* the next tick tries again */ }
    setTimeout(tick, POLL_MS);
  };
  tick();
}

// GET /v1/events (Server-Sent Events). The browser reconnects by itself
// after a cutoff or a dropped connection, sending Last-Event-ID, so the
// stream resumes without a gap. Only a stream that cannot be had at all
// (the route answers an error: the EventSource is closed) falls back to
// polling /v1/blocks.
function startEvents() {
  const es = new EventSource(`/v1/events?from_height=${feed.next}`);
  es.addEventListener('open', () => setMode('live'));
  es.addEventListener('block', (e) => addBlock(JSON.parse(e.data)));
  es.addEventListener('tx', (e) => addTx(JSON.parse(e.data)));
  es.addEventListener('cutoff', () => setMode('reconnecting'));
  es.addEventListener('error', () => {
    if (es.readyState === EventSource.CLOSED) {
      es.close();
      startPolling();
    } else {
      setMode('reconnecting');
    }
  });
}

async function startFeed() {
  try {
    const latest = await api('/v1/blocks/latest');
    const tip = latest.status === 200 ? latest.body.height : 0;
    if (tip > 0) {
      const from = Math.max(1, tip - MAX_BLOCKS + 1);
      const page = await api(`/v1/blocks?from=${from}&limit=${MAX_BLOCKS}`);
      if (page.status === 200) {
        for (const b of page.body.blocks) addBlock({ ...b, fresh: false });
        const withTxs = page.body.blocks.filter((b) => b.tx_count > 0).slice(-5);
        for (const b of withTxs) await loadBlockTxs(b.height);
      }
    }
    feed.next = Math.max(feed.next, tip + 1);
  } catch { /* the stream or the polling fills the lists */ }
  if ('EventSource' in window && !apiKey()) startEvents(); else startPolling();
}

// ------------------------------------------------------------ views

function homeView(view) {
  const render = () => {
    const blocks = table(['height', 'hash', 'txs', 'time'], feed.blocks.map((b) =>
      el('tr', { class: b.fresh ? 'new' : '', 'data-height': b.height },
        el('td', {}, blockLink(b.height)), el('td', { class: 'mono', title: b.hash || '' }, short(b.hash || '')),
        el('td', {}, String(b.tx_count ?? '')), el('td', {}, b.time || ''))));
    const txs = table(['tx', 'block', 'call', 'result'], feed.txs.map((t) =>
      el('tr', { class: t.fresh ? 'new' : '', 'data-tx': t.tx_hash },
        el('td', {}, txLink(t.tx_hash)), el('td', {}, blockLink(t.height)),
        el('td', {}, t.app ? `${t.app}.${t.method}` : ''),
        el('td', {}, t.result ? (t.result.code_name || t.result.status || String(t.result.code ?? '')) : ''))));
    feed.blocks.forEach((b) => { b.fresh = false; });
    feed.txs.forEach((t) => { t.fresh = false; });
    view.replaceChildren(el('div', { class: 'columns' },
      el('section', { id: 'blocks' }, el('h2', {}, 'Latest blocks'), blocks),
      el('section', { id: 'txs' }, el('h2', {}, 'Latest transactions'), txs)));
  };
  feed.listeners.add(render);
  render();
  return () => feed.listeners.delete(render);
}

async function blockView(view, height) {
  const r = await api(`/v1/blocks/${encodeURIComponent(height)}`);
  if (r.status !== 200) {
    view.replaceChildren(el('section', {}, el('h2', {}, `Block ${height}`), el('p', { class: 'error' }, problemText(r))));
    return;
  }
  const b = r.body;
  const h = b.header;
  const cert = b.certificate;
  view.replaceChildren(
    el('section', { id: 'block' }, el('h2', {}, `Block ${b.height}`),
      el('p', {}, b.height > 1 ? el('a', { href: `#/block/${b.height - 1}` }, '← previous') : null, ' ',
        el('a', { href: `#/block/${b.height + 1}` }, 'next →')),
      kv([['block hash', b.block_hash], ['chain', h.chain_id], ['time', timeText(h)],
        ['proposer', h.proposer], ['prev hash', h.prev_hash], ['tx root', h.tx_root],
        ['state root', h.state_root], ['receipts root', h.receipts_root], ['txs', b.tx_count]])),
    el('section', {}, el('h2', {}, 'Transactions'),
      b.tx_hashes.length === 0 ? el('p', { class: 'muted' }, 'none')
        : el('ol', { start: 0 }, b.tx_hashes.map((x) => el('li', { 'data-tx': x }, txLink(x))))),
    el('section', {}, el('h2', {}, 'Commit certificate'),
      cert === null ? el('p', { class: 'muted' }, 'not yet stored')
        : table(['validator', 'signature'], cert.signatures.map((s) =>
          el('tr', {}, el('td', {}, String(s.validator_index)), el('td', { class: 'mono' }, short(s.signature)))))));
}

// `changes`: the answer's validator_changes (absent while the validator set
// never changed below the tx's block).
function verifyPanel(hash, proofHex, changes) {
  const genesis = el('textarea', { id: 'genesis', rows: 6,
    placeholder: 'the chain\'s genesis.json: paste it, or pick the file below' });
  genesis.value = localStorage.getItem('consortia.genesis') || '';
  const file = el('input', { id: 'genesis-file', type: 'file', accept: '.json,application/json' });
  file.addEventListener('change', async () => {
    if (file.files.length > 0) genesis.value = await file.files[0].text();
  });
  const hashIn = el('input', { id: 'verify-hash', class: 'mono', size: 70, value: hash || '' });
  const proof = el('textarea', { id: 'verify-proof', rows: 4, placeholder: 'proof.hex of GET /v1/txs/{hash}' });
  proof.value = proofHex || '';
  const result = el('div', { id: 'verify-result' });
  const run = async () => {
    result.replaceChildren(el('p', { class: 'muted' }, 'checking…'));
    let g;
    try {
      g = parseGenesis(genesis.value);
      localStorage.setItem('consortia.genesis', genesis.value);
    } catch (e) {
      result.replaceChildren(el('p', { class: 'error', 'data-verdict': 'error' }, `genesis: ${e.message}`));
      return;
    }
    const cli = `consortia verify --api ${location.origin} --genesis genesis.json ${hashIn.value.trim()}`;
    if (g.crypto_suite !== SUITE) {
      result.replaceChildren(el('div', { 'data-verdict': 'unsupported' },
        el('p', {}, `This chain uses ${g.crypto_suite}; the browser checks ${SUITE} only. Check the proof with the CLI:`),
        el('pre', {}, cli)));
      return;
    }
    if (Array.isArray(changes) && changes.length > 0) {
      // Certificates from the change on are signed by a later set, which
      // the browser does not follow: no verdict here rather than a false
      // "invalid" (or a genesis-set quorum taken for proof).
      result.replaceChildren(el('div', { 'data-verdict': 'unsupported' },
        el('p', {}, `This chain's validator set changed ${changes.length} time(s) before this block; the browser ` +
          'checks certificates against the genesis validators only. Check the proof with the CLI, which follows the changes:'),
        el('pre', {}, cli)));
      return;
    }
    let bytes;
    try { bytes = fromHex(proof.value.trim()); } catch {
      result.replaceChildren(el('p', { class: 'verdict bad', 'data-verdict': 'fail' }, '✘ the proof is not hex'));
      return;
    }
    const v = await verifyTxBundle(g, bytes, hashIn.value.trim());
    result.replaceChildren(
      el('p', { class: `verdict ${v.ok ? 'ok' : 'bad'}`, 'data-verdict': v.ok ? 'ok' : 'fail' },
        v.ok ? '✔ the proof verifies against the genesis' : `✘ ${v.reason}`),
      el('ol', { class: 'steps' }, v.steps.map((s) => el('li', {}, s))),
      el('p', { class: 'muted' }, 'The same check offline: ', el('code', {}, cli)));
  };
  return el('section', { id: 'verify' }, el('h2', {}, 'Verify the proof'),
    el('p', { class: 'muted' }, 'Checked here, in the browser, trusting nothing but the genesis: the tx\'s signature, ' +
      'its Merkle path to the block\'s tx root, the commit certificate (signatures and a two-thirds quorum), and the ' +
      'receipt in the next block.'),
    el('label', {}, 'Genesis', genesis), file,
    el('label', {}, 'Tx hash ', hashIn),
    el('label', {}, 'Proof bundle (hex)', proof),
    el('p', {}, el('button', { id: 'verify-run', type: 'button', onclick: run }, 'Verify')),
    result);
}

async function txView(view, hash) {
  const r = await api(`/v1/txs/${encodeURIComponent(hash)}`);
  if (r.status !== 200) {
    view.replaceChildren(el('section', {}, el('h2', {}, 'Transaction'), el('p', { class: 'mono' }, hash),
      el('p', { class: 'error' }, problemText(r)),
      el('p', {}, el('button', { type: 'button', onclick: () => txView(view, hash) }, 'Ask again'))));
    return;
  }
  const t = r.body;
  view.replaceChildren(
    el('section', { id: 'tx' }, el('h2', {}, 'Transaction'),
      kv([['hash', t.tx_hash], ['block', blockLink(t.height)], ['index', t.index], ['block hash', t.block_hash],
        ['app.method', `${t.tx.app}.${t.tx.method}`], ['sender', t.tx.sender], ['nonce', t.tx.nonce],
        ['valid until', t.tx.valid_until], ['args', el('pre', {}, JSON.stringify(t.tx.args, null, 1))]])),
    el('section', { id: 'receipt' }, el('h2', {}, 'Receipt'),
      kv([['code', `${t.receipt.code} (${t.receipt.code_name})`], ['log', t.receipt.log]])),
    verifyPanel(t.tx_hash, t.proof.hex, t.validator_changes));
}

function stateView(view, params) {
  const app = el('input', { id: 'state-app', value: params.get('app') || 'kv', size: 10 });
  const key = el('input', { id: 'state-key', value: params.get('key') || '', size: 30 });
  const height = el('input', { id: 'state-height', value: params.get('height') || '', size: 8, placeholder: 'latest' });
  const out = el('div', { id: 'state-result' });
  const lookup = async (ev) => {
    if (ev) ev.preventDefault();
    const q = height.value.trim() ? `?height=${encodeURIComponent(height.value.trim())}` : '';
    const r = await api(`/v1/state/${encodeURIComponent(app.value)}/${encodeURIComponent(key.value)}${q}`);
    const b = r.body || {};
    const cli = `consortia verify --api ${location.origin} --genesis genesis.json --state ${app.value} ${key.value}`;
    if (r.status === 200) {
      out.replaceChildren(kv([['value', b.value], ['value encoding', b.value_encoding], ['owner', b.owner],
        ['height', b.height], ['state root', b.state_root], ['certified', String(b.certified)]]),
      el('p', { class: 'muted' }, 'Check it offline: ', el('code', {}, cli)));
    } else if (r.status === 404 && b.state_root) {
      out.replaceChildren(el('p', {}, `No value for ${app.value}/${key.value} after block ${b.height}; the answer carries a proof of absence.`),
        kv([['state root', b.state_root], ['certified', String(b.certified)]]));
    } else {
      out.replaceChildren(el('p', { class: 'error' }, problemText(r)));
    }
  };
  view.replaceChildren(el('section', { id: 'state' }, el('h2', {}, 'State lookup'),
    el('form', { class: 'inline', onsubmit: lookup },
      el('label', {}, 'app', app), el('label', {}, 'key', key), el('label', {}, 'height', height),
      el('button', { type: 'submit' }, 'Look up')), out));
  if (key.value) lookup();
}

// ------------------------------------------------------------ routing

let leave = null;

async function route() {
  if (leave) { leave(); leave = null; }
  const view = document.getElementById('view');
  const hash = location.hash.replace(/^#\/?/, '');
  const [path, query] = hash.split('?');
  const parts = path.split('/');
  try {
    if (parts[0] === 'block' && parts[1]) await blockView(view, parts[1]);
    else if (parts[0] === 'tx' && parts[1]) await txView(view, parts[1]);
    else if (parts[0] === 'state') stateView(view, new URLSearchParams(query || ''));
    else if (parts[0] === 'verify') view.replaceChildren(verifyPanel(parts[1] || '', ''));
    else leave = homeView(view);
  } catch (e) {
    view.replaceChildren(el('p', { class: 'error' }, `error: ${e.message}`));
  }
}

function init() {
  const key = document.getElementById('api-key');
  key.value = apiKey();
  key.addEventListener('change', () => sessionStorage.setItem('consortia.api_key', key.value.trim()));
  document.getElementById('search').addEventListener('submit', (e) => {
    e.preventDefault();
    const q = document.getElementById('search-input').value.trim();
    if (/^[0-9]+$/.test(q)) location.hash = `#/block/${q}`;
    else if (/^[0-9a-fA-F]{64}$/.test(q)) location.hash = `#/tx/${q.toLowerCase()}`;
  });
  window.addEventListener('hashchange', route);
  route();
  startFeed();
  document.body.dataset.ready = 'true';
}

init();
