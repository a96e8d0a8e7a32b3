// Unknown fields of a Prometheus-operator object (ServiceMonitor,
// PrometheusRule, ...). @kubernetes-models/prometheus-operator's compiled
// validators accept any extra field, so the fields each type defines are
// read from the package's own type declarations (monitoring.coreos.com/v1/
// KIND.d.ts: `declare class KIND { "field"?: Type; ... }`, inherited fields
// included), and core types they use (ObjectMeta, LabelSelector,
// SecretKeySelector, ...) are checked with client-node's typed round trip
// (validate-manifests.mjs). Scalars and aliases of scalars (Duration,
// Quantity, IntOrString) take any value here; the compiled validators check
// their form.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const PKG = path.join(path.dirname(fileURLToPath(import.meta.url)),
  'node_modules', '@kubernetes-models', 'prometheus-operator');

const classes = new Map(); // file -> {imports, members} | {alias}

function load(file) {
  if (classes.has(file)) return classes.get(file);
  const text = fs.readFileSync(file, 'utf8').replace(/\/\*\*[\s\S]*?\*\//g, '');
  const imports = {};
  for (const m of text.matchAll(/import \{ (\w+) \} from "([^"]+)";/g)) imports[m[1]] = m[2];
  let entry;
  const cls = text.match(/export declare class \w+ extends [^{]*\{([\s\S]*?)\n    (?:constructor|static)/);
  if (cls) {
    entry = { imports, members: parseMembers(cls[1]) };
  } else {
    const alias = text.match(/export type I\w+ = ([^;]+);/);
    entry = { imports, alias: alias ? parseType(alias[1].trim()) : { kind: 'any' } };
  }
  entry.dir = path.dirname(file);
  classes.set(file, entry);
  return entry;
}

// Members of a class or inline object body: "name"?: Type; or [key: string]: Type;
function parseMembers(body) {
  const members = {};
  let index = null;
  let i = 0;
  while (i < body.length) {
    const m = body.slice(i).match(/^\s*(?:"([^"]+)"\??|\[key: string\]):\s*/);
    if (!m) break;
    i += m[0].length;
    const end = typeEnd(body, i);
    const type = parseType(body.slice(i, end).trim());
    if (m[1] !== undefined) members[m[1]] = type; else index = type;
    i = end + 1;
  }
  return { members, index };
}

// Index of the `;` that ends the type starting at i (depth 0).
function typeEnd(s, i) {
  let depth = 0;
  for (; i < s.length; i++) {
    const c = s[i];
    if (c === '{' || c === '<' || c === '(') depth++;
    else if (c === '}' || c === '>' || c === ')') depth--;
    else if (c === ';' && depth === 0) return i;
  }
  return s.length;
}

function parseType(t) {
  if (t.includes('|') && !t.startsWith('{')) return { kind: 'any' };
  let m;
  if ((m = t.match(/^Array<([\s\S]*)>$/))) return { kind: 'array', of: parseType(m[1].trim()) };
  if ((m = t.match(/^([\s\S]*)\[\]$/))) return { kind: 'array', of: parseType(m[1].trim()) };
  if (t.startsWith('{')) return { kind: 'object', ...parseMembers(t.slice(1, -1)) };
  if (/^I\w+$/.test(t)) return { kind: 'ref', name: t };
  return { kind: 'any' }; // string, number, boolean, literals
}

// `check(obj, type, ctx, where, out)`; ctx: the declaring file's entry.
function check(v, type, ctx, where, out, core) {
  if (v === null || v === undefined) return;
  switch (type.kind) {
    case 'array':
      if (Array.isArray(v)) v.forEach((x, i) => check(x, type.of, ctx, `${where}[${i}]`, out, core));
      return;
    case 'object':
      if (typeof v !== 'object' || Array.isArray(v)) return;
      for (const [k, x] of Object.entries(v)) {
        const t = type.members[k] ?? type.index;
        if (!t) out.push(`${where}.${k}: unknown field`);
        else check(x, t, ctx, `${where}.${k}`, out, core);
      }
      return;
    case 'ref': {
      const from = ctx.imports[type.name];
      if (!from) return;
      if (from.startsWith('./')) {
        const entry = load(path.join(ctx.dir, from.replace(/\.js$/, '.d.ts')));
        if (entry.alias) return check(v, entry.alias, entry, where, out, core);
        return check(v, { kind: 'object', ...entry.members }, entry, where, out, core);
      }
      // A core type: V1ObjectMeta, V1LabelSelector, ... by client-node.
      const m = type.name.match(/(V\d+(?:alpha\d+|beta\d+)?)([A-Z]\w*)$/);
      if (m) core(`${m[1]}${m[2]}`, v, where, out);
      return;
    }
    default:
  }
}

export function crdUnknownFields(doc, core) {
  const file = path.join(PKG, doc.apiVersion, `${doc.kind}.d.ts`);
  if (!fs.existsSync(file)) return [`no type declarations for ${doc.apiVersion} ${doc.kind}`];
  const entry = load(file);
  const out = [];
  check(doc, { kind: 'object', ...entry.members }, entry, '', out, core);
  return out;
}
