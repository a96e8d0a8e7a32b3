// Validates Kubernetes manifests (multi-document YAML files, e.g. the output
// of `helm template`) against the Kubernetes API schemas, rejecting unknown
// fields as `kubectl apply --validate=strict` does:
//   1. kubernetes-models (and @kubernetes-models/prometheus-operator for
//      ServiceMonitor and PrometheusRule): JSON-schema validation of each
//      object (types, required fields, enums, formats);
//   2. unknown fields: each core object is read into the typed models of
//      @kubernetes/client-node (generated from the same OpenAPI document) and
//      written back; a field that the API does not define does not survive
//      the round trip and is reported with its path.
// A kind that neither package knows is an error. client-node has no models
// for the CRDs (monitoring.coreos.com): their fields are read from
// @kubernetes-models/prometheus-operator's type declarations
// (crd-fields.mjs).
// Usage: node validate-manifests.mjs FILE...   exit 0: all valid; 1: problems
// (one line each: file, kind/name, path, message).
import fs from 'node:fs';
import yaml from 'js-yaml';
import { ObjectSerializer } from '@kubernetes/client-node/dist/gen/models/ObjectSerializer.js';
import { crdUnknownFields } from './crd-fields.mjs';

async function modelClass(apiVersion, kind) {
  const pkg = apiVersion.startsWith('monitoring.coreos.com/')
    ? '@kubernetes-models/prometheus-operator'
    : 'kubernetes-models';
  try {
    return (await import(`${pkg}/${apiVersion}/${kind}`))[kind];
  } catch {
    return undefined;
  }
}

// client-node's type name: V1StatefulSet for apps/v1 StatefulSet.
function clientType(apiVersion, kind) {
  if (apiVersion.startsWith('monitoring.coreos.com/')) return undefined;
  const version = apiVersion.split('/').pop();
  const name = version.charAt(0).toUpperCase() + version.slice(1) + kind;
  return typeMapHas(name) ? name : undefined;
}

function typeMapHas(name) {
  try {
    const round = ObjectSerializer.deserialize({}, name);
    return round !== undefined && typeof round === 'object' && round.constructor.name === name;
  } catch {
    return false;
  }
}

// Paths of `orig` that are missing from `round`.
function unknownFields(orig, round, path, out) {
  if (orig === null || typeof orig !== 'object') return;
  if (Array.isArray(orig)) {
    orig.forEach((v, i) => unknownFields(v, round?.[i], `${path}[${i}]`, out));
    return;
  }
  for (const [k, v] of Object.entries(orig)) {
    if (round === null || typeof round !== 'object' || !(k in round)) {
      out.push(`${path}.${k}: unknown field`);
      continue;
    }
    unknownFields(v, round[k], `${path}.${k}`, out);
  }
}

// Unknown fields of a core-typed value inside a CRD (client-node's model
// `type`; values of a type it does not have are not checked further).
function coreUnknownFields(type, value, where, out) {
  if (!typeMapHas(type)) return;
  const round = ObjectSerializer.serialize(ObjectSerializer.deserialize(value, type), type);
  unknownFields(value, round, where, out);
}

const problems = [];
let count = 0;
for (const file of process.argv.slice(2)) {
  let docs;
  try {
    docs = yaml.loadAll(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    problems.push(`${file}: not YAML: ${e.message}`);
    continue;
  }
  for (const doc of docs) {
    if (doc === null || doc === undefined) continue;
    count++;
    const where = `${file}: ${doc.kind}/${doc.metadata?.name}`;
    if (typeof doc.apiVersion !== 'string' || typeof doc.kind !== 'string') {
      problems.push(`${where}: no apiVersion or kind`);
      continue;
    }
    const Model = await modelClass(doc.apiVersion, doc.kind);
    if (!Model) {
      problems.push(`${where}: unknown kind ${doc.apiVersion} ${doc.kind}`);
      continue;
    }
    try {
      new Model(doc).validate();
    } catch (e) {
      const details = (e.errors ?? []).map(
        (x) => `${x.instancePath || '/'} ${x.message}${x.params ? ' ' + JSON.stringify(x.params) : ''}`);
      problems.push(`${where}: ${details.length ? details.join('; ') : e.message}`);
    }
    const type = clientType(doc.apiVersion, doc.kind);
    if (type) {
      const round = ObjectSerializer.serialize(ObjectSerializer.deserialize(doc, type), type);
      const out = [];
      unknownFields(doc, round, '', out);
      for (const o of out) problems.push(`${where}: ${o}`);
    } else if (doc.apiVersion.startsWith('monitoring.coreos.com/')) {
      for (const o of crdUnknownFields(doc, coreUnknownFields)) problems.push(`${where}: ${o}`);
    } else {
      problems.push(`${where}: no strict model for ${doc.apiVersion} ${doc.kind}`);
    }
  }
}
for (const p of problems) console.log(p);
console.log(`${count} objects, ${problems.length} problems`);
process.exit(problems.length === 0 && count > 0 ? 0 : 1);
