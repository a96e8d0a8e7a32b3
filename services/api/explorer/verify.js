// The offline verifier of a tx proof bundle, in the browser: a port of
// VerifyTxRecord (common/src/proof_bundle.cc) and VerifyCertificate
// (common/src/types.cc) on WebCrypto's Ed25519 and SHA-256. It trusts
// nothing but the genesis it is given: the bundle is the api's
// `proof.hex` (EncodeTxRecord). tests/browser/verify-vectors.json holds the
// vectors both verifiers are checked against (common/tests/
// verify_vectors_test.cc, tests/browser/explorer_test.mjs).
import { Decoder, DecodeError, Encoder, concat, equalBytes, fromHex, toHex } from './codec.js';

export const SUITE = 'ed25519-sha256';

// Limits of common/include/consortia/types.h.
const MAX_CHAIN_ID = 64, MAX_APP = 32, MAX_METHOD = 32, MAX_ARGS = 16;
const MAX_ARG = 64 * 1024, MAX_KEY = 128, MAX_SIG = 128, MAX_TX = 256 * 1024;
const MAX_LOG = 4096, MAX_VALIDATORS = 1024, MAX_PATH = 64;
const MAX_RECEIPT = 2 * MAX_LOG + 1024, MAX_CERT = 1024 * 1024;
const EXEC_CODES = ['ok', 'unknown_app', 'unknown_method', 'bad_args', 'not_owner',
  'duplicate', 'expired', 'not_found', 'unauthorized', 'invalid_state', 'exists'];
const PRECOMMIT = 2;

const utf8 = new TextEncoder();

export class Rejected extends Error {}

// ------------------------------------------------------------ decoding

function decodeTx(raw) {
  if (raw.length > MAX_TX) throw new DecodeError('transaction too large');
  const d = new Decoder(raw);
  const tx = {};
  tx.chain_id = d.bytes(MAX_CHAIN_ID);
  tx.nonce = d.u64();
  tx.valid_until = d.varint();
  tx.sender = d.bytes(MAX_KEY);
  tx.app = d.string(MAX_APP);
  tx.method = d.string(MAX_METHOD);
  const n = d.count(MAX_ARGS);
  tx.args = [];
  for (let i = 0; i < n; i++) tx.args.push(d.bytes(MAX_ARG));
  tx.body = raw.subarray(0, d.pos);  // what is signed, after the tag
  tx.signature = d.bytes(MAX_SIG);
  d.end();
  return tx;
}

function decodeHeader(d) {
  const start = d.pos;
  const h = {};
  h.chain_id = d.bytes(MAX_CHAIN_ID);
  h.height = d.varint();
  h.time_ms = d.varint();
  h.proposer = d.bytes(MAX_KEY);
  h.prev_hash = d.hash();
  h.tx_root = d.hash();
  h.state_root = d.hash();
  h.receipts_root = d.hash();
  h.encoded = d.in.subarray(start, d.pos);  // canonical: BlockHash hashes it
  return h;
}

function decodeNested(d, max, fn) {
  const inner = new Decoder(d.bytes(max));
  const v = fn(inner);
  inner.end();
  return v;
}

function decodeCert(d) {
  const c = {};
  c.height = d.varint();
  c.round = d.varint32('round');
  c.block_hash = d.hash();
  const n = d.count(MAX_VALIDATORS, 2);
  c.sigs = [];
  for (let i = 0; i < n; i++) {
    const index = d.varint32('validator index');
    if (i > 0 && index <= c.sigs[i - 1].validator_index) {
      d.fail('certificate signers not strictly increasing');
    }
    c.sigs.push({ validator_index: index, signature: d.bytes(MAX_SIG) });
  }
  return c;
}

function decodeReceipt(d) {
  const start = d.pos;
  const r = {};
  r.tx_hash = d.hash();
  const code = d.varint32('exec code');
  if (code >= EXEC_CODES.length) d.fail(`unknown exec code ${code}`);
  r.code = code;
  r.code_name = EXEC_CODES[code];
  r.log = d.string(MAX_LOG);
  r.encoded = d.in.subarray(start, d.pos);
  return r;
}

function decodeMerkleProof(d) {
  const p = {};
  p.index = d.varint();
  p.leaf_count = d.varint();
  if (p.index >= p.leaf_count) d.fail('merkle proof index not below leaf count');
  const n = d.count(MAX_PATH, 32);
  p.path = [];
  for (let i = 0; i < n; i++) p.path.push(d.hash());
  return p;
}

// EncodeTxRecord's layout (proof_bundle.cc).
export function decodeTxRecord(bytes) {
  const d = new Decoder(bytes);
  const r = {};
  r.raw_tx = d.bytes(MAX_TX);
  r.height = d.u64();
  r.index = d.u32();
  r.receipt = decodeNested(d, MAX_RECEIPT, decodeReceipt);
  r.inclusion = decodeMerkleProof(d);
  r.header = decodeHeader(d);
  r.cert = decodeNested(d, MAX_CERT, decodeCert);
  r.receipt_proof = decodeMerkleProof(d);
  r.next_header = d.bool() ? decodeHeader(d) : null;
  r.next_cert = d.bool() ? decodeNested(d, MAX_CERT, decodeCert) : null;
  d.end();
  return r;
}

// The genesis file's JSON (types.cc, ParseGenesisJson), as far as
// verification needs it.
export function parseGenesis(text) {
  const g = typeof text === 'string' ? JSON.parse(text) : text;
  if (typeof g !== 'object' || g === null) throw new Error('genesis: not an object');
  if (typeof g.chain_id !== 'string' || !g.chain_id) throw new Error('genesis: chain_id');
  if (typeof g.crypto_suite !== 'string') throw new Error('genesis: crypto_suite');
  if (!Array.isArray(g.validators) || g.validators.length === 0) {
    throw new Error('genesis: validators');
  }
  return {
    chain_id: g.chain_id,
    crypto_suite: g.crypto_suite,
    validators: g.validators.map((v, i) => {
      if (!Number.isSafeInteger(v.power) || v.power < 1) {
        throw new Error(`genesis: validators[${i}].power`);
      }
      return { name: String(v.name), public_key: fromHex(v.public_key), power: BigInt(v.power) };
    }),
  };
}

// ------------------------------------------------------------ crypto

async function sha256(...parts) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', concat(...parts)));
}

// False for any malformed key or signature, never an error (as
// CryptoSuite::Verify). One known difference with libsodium, which the C++
// suite uses: libsodium also refuses public keys and signature R points of
// small order, which Chromium's Ed25519 accepts. A certified tx cannot carry
// such a key (the mempool and every validator check with libsodium), and
// validator keys come from the genesis; a bundle made by a dishonest quorum
// is the case where the two verdicts could differ.
async function ed25519Verify(publicKey, message, signature) {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  try {
    const key = await crypto.subtle.importKey('raw', publicKey, { name: 'Ed25519' }, false,
      ['verify']);
    return await crypto.subtle.verify({ name: 'Ed25519' }, key, signature, message);
  } catch {
    return false;
  }
}

const LEAF = Uint8Array.of(0), NODE = Uint8Array.of(1);

// MerkleVerify (merkle.cc): the RFC 6962 audit path walk.
async function merkleVerify(root, leaf, proof) {
  if (proof.index >= proof.leaf_count || proof.path.length > MAX_PATH) return false;
  let node = proof.index;
  let last = proof.leaf_count - 1n;
  let h = await sha256(LEAF, leaf);
  for (const sibling of proof.path) {
    if (last === 0n) return false;
    if ((node & 1n) === 1n || node === last) {
      h = await sha256(NODE, sibling, h);
      if ((node & 1n) === 0n) {
        while ((node & 1n) === 0n && node !== 0n) { node >>= 1n; last >>= 1n; }
      }
    } else {
      h = await sha256(NODE, h, sibling);
    }
    node >>= 1n;
    last >>= 1n;
  }
  return last === 0n && equalBytes(h, root);
}

function voteSignBytes(chainId, cert, validatorIndex) {
  const e = new Encoder();
  e.string('consortia/vote/v1');
  e.string(chainId);
  e.u8(PRECOMMIT);
  e.varint(cert.height);
  e.varint(cert.round);
  e.raw(cert.block_hash);
  e.varint(validatorIndex);
  return e.take();
}

function txSignBytes(tx) {
  const e = new Encoder();
  e.string('consortia/tx/v1');
  e.raw(tx.body);
  return e.take();
}

// VerifyCertificate (types.cc); returns the signers' power and the total.
async function verifyCertificate(genesis, header, cert, what) {
  if (!equalBytes(header.chain_id, utf8.encode(genesis.chain_id))) {
    throw new Rejected(`${what}: header is for another chain`);
  }
  if (cert.height !== header.height) {
    throw new Rejected(`${what}: certificate is for height ${cert.height}, header is at ${header.height}`);
  }
  const hash = await sha256(header.encoded);
  if (!equalBytes(cert.block_hash, hash)) {
    throw new Rejected(`${what}: certificate is for block ${toHex(cert.block_hash)}, header hashes to ${toHex(hash)}`);
  }
  let total = 0n;
  for (const v of genesis.validators) total += v.power;
  let signed = 0n;
  for (let i = 0; i < cert.sigs.length; i++) {
    const s = cert.sigs[i];
    if (s.validator_index >= genesis.validators.length) {
      throw new Rejected(`${what}: certificate signer ${s.validator_index} is not a validator`);
    }
    if (i > 0 && s.validator_index <= cert.sigs[i - 1].validator_index) {
      throw new Rejected(`${what}: certificate signers not strictly increasing`);
    }
    const val = genesis.validators[s.validator_index];
    const msg = voteSignBytes(genesis.chain_id, cert, s.validator_index);
    if (!(await ed25519Verify(val.public_key, msg, s.signature))) {
      throw new Rejected(`${what}: bad precommit signature from validator ${s.validator_index} (${val.name})`);
    }
    signed += val.power;
  }
  if (3n * signed <= 2n * total) {
    throw new Rejected(`${what}: certificate signers hold ${signed} of ${total} voting power, not more than two thirds`);
  }
  return { signed, total, signers: cert.sigs.length };
}

// Checks the bundle (bytes of EncodeTxRecord) against the genesis (parsed)
// as VerifyTxRecord does. Resolves to {ok: true, steps, record, ...} or
// {ok: false, reason, steps}; {ok: false, unsupported: true} for a chain on
// another crypto suite (use `consortia verify`).
export async function verifyTxBundle(genesis, bundle, expectedHashHex) {
  const steps = [];
  const step = (s) => steps.push(s);
  if (genesis.crypto_suite !== SUITE) {
    return { ok: false, unsupported: true, steps,
      reason: `the chain's crypto suite is ${genesis.crypto_suite}; the browser checks ${SUITE} only` };
  }
  try {
    let r;
    try {
      r = decodeTxRecord(bundle);
    } catch (e) {
      throw new Rejected(`the bundle does not decode: ${e.message}`);
    }
    step(`decoded the bundle: tx ${r.index} of block ${r.height}`);
    let tx;
    try {
      tx = decodeTx(r.raw_tx);
    } catch (e) {
      throw new Rejected(`raw_tx: ${e.message}`);
    }
    const signBytes = txSignBytes(tx);
    const txHash = await sha256(signBytes);
    if (expectedHashHex && !/^0+$/.test(expectedHashHex) && toHex(txHash) !== expectedHashHex.toLowerCase()) {
      throw new Rejected(`tx hash is ${toHex(txHash)}, expected ${expectedHashHex}`);
    }
    step(`the tx hashes to ${toHex(txHash)}`);
    const chainId = utf8.encode(genesis.chain_id);
    if (!equalBytes(tx.chain_id, chainId)) throw new Rejected('tx belongs to another chain');
    if (!(await ed25519Verify(tx.sender, signBytes, tx.signature))) {
      throw new Rejected("the tx's signature does not verify for its sender key");
    }
    step(`the tx's signature verifies for sender ${toHex(tx.sender).slice(0, 16)}…`);
    if (!equalBytes(r.header.chain_id, chainId)) throw new Rejected('header belongs to another chain');
    if (r.header.height !== r.height) {
      throw new Rejected(`record height ${r.height} differs from header height ${r.header.height}`);
    }
    if (r.inclusion.index !== BigInt(r.index)) {
      throw new Rejected(`inclusion proof is for index ${r.inclusion.index}, record says ${r.index}`);
    }
    if (!(await merkleVerify(r.header.tx_root, r.raw_tx, r.inclusion))) {
      throw new Rejected("inclusion proof does not lead to the header's tx root");
    }
    step(`the Merkle path (${r.inclusion.path.length} hashes) leads to block ${r.height}'s tx root`);
    const c = await verifyCertificate(genesis, r.header, r.cert, `block ${r.height}`);
    step(`block ${r.height} is certified by ${c.signers} validators holding ${c.signed} of ${c.total} voting power`);
    if (r.next_header === null) {
      if (r.next_cert !== null) throw new Rejected('next_cert is present without next_header');
      step('the receipt is certified by the next block, not yet made');
      return { ok: true, steps, record: r, receiptCertified: false };
    }
    const next = r.next_header;
    if (!equalBytes(next.chain_id, chainId)) throw new Rejected('next header belongs to another chain');
    if (next.height !== r.header.height + 1n) {
      throw new Rejected(`next header has height ${next.height}, expected ${r.header.height + 1n}`);
    }
    if (!equalBytes(next.prev_hash, await sha256(r.header.encoded))) {
      throw new Rejected("next header's prev_hash is not the block's hash");
    }
    if (r.next_cert === null) throw new Rejected('next_header comes without next_cert');
    const nc = await verifyCertificate(genesis, next, r.next_cert, `block ${next.height}`);
    step(`block ${next.height} follows it and is certified by ${nc.signers} validators`);
    if (!equalBytes(r.receipt.tx_hash, txHash)) throw new Rejected('receipt is for another tx');
    if (r.receipt_proof.index !== BigInt(r.index) ||
        r.receipt_proof.leaf_count !== r.inclusion.leaf_count) {
      throw new Rejected("receipt proof is not at the tx's position");
    }
    if (!(await merkleVerify(next.receipts_root, r.receipt.encoded, r.receipt_proof))) {
      throw new Rejected("receipt proof does not lead to the next header's receipts root");
    }
    step(`receipt "${r.receipt.code_name}" is in block ${next.height}'s receipts root`);
    return { ok: true, steps, record: r, receiptCertified: true };
  } catch (e) {
    if (e instanceof Rejected) return { ok: false, reason: e.message, steps };
    throw e;
  }
}

// The shared vectors (tests/browser/verify-vectors.json): each one's verdict.
export async function runVectors(vectors) {
  const out = [];
  for (const v of vectors) {
    let verdict;
    try {
      const res = await verifyTxBundle(parseGenesis(v.genesis), fromHex(v.proof_hex), v.tx_hash);
      verdict = res.ok ? 'ok' : 'fail';
    } catch (e) {
      verdict = `error: ${e.message}`;
    }
    out.push({ name: v.name, expect: v.expect, got: verdict });
  }
  return out;
}

// The shared Merkle vectors (the "merkle" list of the same file).
export async function runMerkleVectors(vectors) {
  const out = [];
  for (const v of vectors) {
    const proof = { index: BigInt(v.index), leaf_count: BigInt(v.leaf_count), path: v.path.map(fromHex) };
    const ok = await merkleVerify(fromHex(v.root), fromHex(v.leaf_hex), proof);
    out.push({ leaf_count: v.leaf_count, index: v.index, expect: v.expect, got: ok ? 'ok' : 'fail' });
  }
  return out;
}
