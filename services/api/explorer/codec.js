// The canonical binary encodings of common/include/consortia/codec.h and
// types.h, as far as the explorer's verifier needs them: a strict decoder
// (the same refusals as the C++ Decoder: truncation, non-canonical varints,
// trailing bytes) and the few encoders whose output gets signed or hashed.
// Integers that may exceed 2^53 are BigInts.

export function fromHex(hex) {
  if (typeof hex !== 'string' || hex.length % 2 !== 0 || /[^0-9a-fA-F]/.test(hex)) {
    throw new Error('not hex');
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(2 * i, 2), 16);
  return out;
}

export function toHex(bytes) {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function concat(...parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

const utf8 = new TextEncoder();

export class Encoder {
  constructor() { this.parts = []; }
  u8(v) { this.parts.push(Uint8Array.of(v)); }
  varint(v) {
    let x = BigInt(v);
    const out = [];
    while (x >= 0x80n) { out.push(Number((x & 0x7fn) | 0x80n)); x >>= 7n; }
    out.push(Number(x));
    this.parts.push(Uint8Array.from(out));
  }
  raw(bytes) { this.parts.push(bytes); }
  bytes(bytes) { this.varint(bytes.length); this.raw(bytes); }
  string(s) { this.bytes(typeof s === 'string' ? utf8.encode(s) : s); }
  take() { return concat(...this.parts); }
}

export class DecodeError extends Error {}

export class Decoder {
  constructor(bytes) { this.in = bytes; this.pos = 0; }
  remaining() { return this.in.length - this.pos; }
  fail(what) { throw new DecodeError(`${what} at offset ${this.pos}`); }
  need(n, what) { if (this.remaining() < n) this.fail(`truncated ${what}`); }
  u8() { this.need(1, 'u8'); return this.in[this.pos++]; }
  bool() {
    const b = this.u8();
    if (b > 1) this.fail('bad bool');
    return b === 1;
  }
  u32() {
    this.need(4, 'u32');
    let r = 0;
    for (let i = 3; i >= 0; i--) r = r * 256 + this.in[this.pos + i];
    this.pos += 4;
    return r;
  }
  u64() {
    this.need(8, 'u64');
    let r = 0n;
    for (let i = 7; i >= 0; i--) r = (r << 8n) | BigInt(this.in[this.pos + i]);
    this.pos += 8;
    return r;
  }
  varint() {
    const start = this.pos;
    let r = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.in.length) { this.pos = start; this.fail('truncated varint'); }
      const b = this.in[this.pos++];
      if (i === 9 && b > 1) { this.pos = start; this.fail('varint overflows 64 bits'); }
      r |= BigInt(b & 0x7f) << BigInt(7 * i);
      if ((b & 0x80) === 0) {
        if (b === 0 && i > 0) { this.pos = start; this.fail('non-canonical varint'); }
        return r;
      }
    }
    return this.fail('varint longer than 10 bytes');
  }
  varint32(what) {
    const v = this.varint();
    if (v > 0xffffffffn) this.fail(`${what} does not fit in 32 bits`);
    return Number(v);
  }
  // A count of elements of at least minSize bytes each that the rest of the
  // input can hold.
  count(max, minSize = 1) {
    const n = this.varint();
    if (n > BigInt(max)) this.fail(`count ${n} over ${max}`);
    if (n * BigInt(minSize) > BigInt(this.remaining())) this.fail(`count ${n} over the input`);
    return Number(n);
  }
  raw(n) {
    this.need(n, `${n} bytes`);
    const out = this.in.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  bytes(max) {
    const n = this.varint();
    if (n > BigInt(max)) this.fail(`length ${n} over ${max}`);
    if (n > BigInt(this.remaining())) this.fail('truncated bytes');
    return this.raw(Number(n));
  }
  string(max) { return new TextDecoder().decode(this.bytes(max)); }
  hash() { return this.raw(32); }
  end() { if (this.remaining() !== 0) this.fail('trailing bytes'); }
}
