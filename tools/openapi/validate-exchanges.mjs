// Validates recorded HTTP exchanges against an OpenAPI 3.1 document (the
// contract test, tests/e2e/openapi_contract_test.cc, records them from a real
// node and runs this script).
//
//   node validate-exchanges.mjs OPENAPI.json EXCHANGES.json
//
// EXCHANGES.json is an array of
//   {"name", "method", "template" (a path of the document, or null for a path
//    of no route), "path" (as sent, with its query), "request_content_type",
//    "request_body", "status", "content_type", "headers" {lower-case name:
//    value}, "body"}
// Each must be described by the document: the status is listed for the
// operation (or, for a path of no route / a wrong method, is the 404 / 405 of
// `x-consortia-unmatched-requests`); the content type is one the response
// lists; the body is valid against its schema (Ajv, JSON Schema 2020-12;
// for text/event-stream each event's data against the schema of its event
// name, in the `$defs` of the stream's schema); every required header is
// there and every listed one valid; for a 2xx answer, the request body and
// query parameters are valid against the operation's. Prints one line per
// exchange and exits 1 when any fails.
import { readFileSync } from 'node:fs';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const [docPath, exchangesPath] = process.argv.slice(2);
if (!docPath || !exchangesPath) {
  console.error('usage: node validate-exchanges.mjs OPENAPI.json EXCHANGES.json');
  process.exit(2);
}
const doc = JSON.parse(readFileSync(docPath, 'utf8'));
const exchanges = JSON.parse(readFileSync(exchangesPath, 'utf8'));

const DOC_ID = 'https://consortia.dev/openapi.json';
// strict: false because the document, added whole, has keys that are not
// JSON Schema keywords (paths, components, ...); the schemas themselves are
// linted by Redocly (tools/openapi/lint.sh).
const ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
addFormats(ajv);
ajv.addSchema(doc, DOC_ID);

// JSON pointer tokens -> a URI fragment Ajv resolves in the document.
function fragment(tokens) {
  return '#' + tokens
    .map((t) => '/' + encodeURIComponent(String(t).replace(/~/g, '~0').replace(/\//g, '~1')))
    .join('');
}

// The object at `tokens`, following local $refs: [object, tokens of where it is].
function at(tokens) {
  let node = doc;
  for (const t of tokens) {
    if (node === undefined || node === null) return [undefined, tokens];
    node = node[t];
  }
  if (node && typeof node === 'object' && typeof node.$ref === 'string') {
    const ref = node.$ref;
    if (!ref.startsWith('#/')) throw new Error(`unsupported $ref ${ref}`);
    const next = ref.slice(2).split('/').map((t) => decodeURIComponent(t).replace(/~1/g, '/').replace(/~0/g, '~'));
    return at(next);
  }
  return [node, tokens];
}

const validators = new Map();
// Errors of `value` against the schema at `tokens` ([] when valid).
function schemaErrors(tokens, value) {
  const key = fragment(tokens);
  let v = validators.get(key);
  if (!v) {
    v = ajv.compile({ $ref: DOC_ID + key });
    validators.set(key, v);
  }
  if (v(value)) return [];
  return v.errors.map((e) => `${e.instancePath || '(root)'} ${e.message}${e.params && e.params.allowedValues ? ' ' + JSON.stringify(e.params.allowedValues) : ''}`);
}

// A header value against its schema: as the string, or as a number when the
// schema takes one.
function headerErrors(tokens, value) {
  const asString = schemaErrors(tokens, value);
  if (asString.length === 0) return [];
  if (/^-?[0-9]+$/.test(value) && schemaErrors(tokens, Number(value)).length === 0) return [];
  return asString;
}

function isJson(mediaType) {
  return mediaType === 'application/json' || mediaType.endsWith('+json');
}

// Server-Sent Events: [{event, data, id}] (comment lines skipped).
function parseSse(text) {
  const events = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    const ev = { event: 'message', data: [], id: undefined, lines: 0 };
    for (const line of block.split(/\r?\n/)) {
      if (line === '' || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      ev.lines++;
      if (field === 'event') ev.event = value;
      else if (field === 'data') ev.data.push(value);
      else if (field === 'id') ev.id = value;
    }
    if (ev.lines > 0) events.push({ event: ev.event, data: ev.data.join('\n'), id: ev.id });
  }
  return events;
}

function check(x) {
  const errs = [];
  const method = String(x.method).toLowerCase();
  let responseTokens;
  let opTokens;
  if (x.template === null) {
    responseTokens = ['x-consortia-unmatched-requests', '404'];
    if (x.status !== 404) errs.push(`a path of no route answered ${x.status}, not 404`);
  } else if (!doc.paths || !doc.paths[x.template]) {
    return [`the document has no path ${x.template}`];
  } else if (!doc.paths[x.template][method]) {
    responseTokens = ['x-consortia-unmatched-requests', '405'];
    if (x.status !== 405) errs.push(`${x.method} on ${x.template} (no such operation) answered ${x.status}, not 405`);
  } else {
    opTokens = ['paths', x.template, method];
    const responses = doc.paths[x.template][method].responses || {};
    const code = String(x.status);
    const listed = [code, `${code[0]}XX`, 'default'].find((c) => c in responses);
    if (listed === undefined) {
      return [`status ${x.status} is not listed for ${x.method.toUpperCase()} ${x.template} (lists ${Object.keys(responses).join(', ')})`];
    }
    responseTokens = ['paths', x.template, method, 'responses', listed];
  }
  const [response, rTokens] = at(responseTokens);
  if (!response) return errs.concat([`no response object at ${fragment(responseTokens)}`]);

  // Headers.
  const headers = Object.fromEntries(Object.entries(x.headers || {}).map(([k, v]) => [k.toLowerCase(), v]));
  for (const name of Object.keys(response.headers || {})) {
    const [h, hTokens] = at([...rTokens, 'headers', name]);
    const value = headers[name.toLowerCase()];
    if (value === undefined) {
      if (h.required) errs.push(`header ${name} is required but absent`);
      continue;
    }
    if (h.schema) {
      for (const e of headerErrors([...hTokens, 'schema'], value)) errs.push(`header ${name}: ${value}: ${e}`);
    }
  }

  // Content type and body.
  const mediaType = String(x.content_type || '').split(';')[0].trim().toLowerCase();
  const content = response.content || {};
  if (Object.keys(content).length === 0) {
    if (x.body) errs.push('the response lists no content, but a body came');
  } else if (!(mediaType in content)) {
    errs.push(`content type "${x.content_type}" is not listed (lists ${Object.keys(content).join(', ')})`);
  } else {
    const schemaTokens = [...rTokens, 'content', mediaType, 'schema'];
    if (isJson(mediaType)) {
      let body;
      try {
        body = JSON.parse(x.body);
      } catch (e) {
        errs.push(`body is not JSON: ${e.message}`);
      }
      if (body !== undefined) for (const e of schemaErrors(schemaTokens, body)) errs.push(`body ${e}`);
    } else if (mediaType === 'text/event-stream') {
      const [schema, sTokens] = at(schemaTokens);
      const defs = (schema && schema.$defs) || {};
      const events = parseSse(x.body || '');
      if (events.length === 0) errs.push('the event stream holds no event');
      for (const ev of events) {
        if (!(ev.event in defs)) {
          errs.push(`event "${ev.event}" is not in the stream schema's $defs (${Object.keys(defs).join(', ')})`);
          continue;
        }
        if (ev.id !== undefined) {
          for (const e of schemaErrors(['components', 'schemas', 'EventId'], ev.id)) errs.push(`event id ${ev.id}: ${e}`);
        }
        let data;
        try {
          data = JSON.parse(ev.data);
        } catch (e) {
          errs.push(`event ${ev.event}: data is not JSON: ${e.message}`);
          continue;
        }
        for (const e of schemaErrors([...sTokens, '$defs', ev.event], data)) errs.push(`event ${ev.event}: data ${e}`);
      }
    } else {
      const [schema] = at(schemaTokens);
      if (schema && schema.type === 'string' && typeof x.body !== 'string') errs.push('body is not text');
    }
  }

  // The request, for answers that accepted it.
  if (opTokens && x.status >= 200 && x.status < 300) {
    const [op] = at(opTokens);
    if (op.requestBody) {
      const [rb, rbTokens] = at([...opTokens, 'requestBody']);
      const reqType = String(x.request_content_type || '').split(';')[0].trim().toLowerCase();
      if (!(reqType in (rb.content || {}))) {
        errs.push(`request content type "${x.request_content_type}" is not listed`);
      } else {
        let reqBody;
        try {
          reqBody = JSON.parse(x.request_body);
        } catch (e) {
          errs.push(`request body is not JSON: ${e.message}`);
        }
        if (reqBody !== undefined) {
          for (const e of schemaErrors([...rbTokens, 'content', reqType, 'schema'], reqBody)) errs.push(`request body ${e}`);
        }
      }
    }
    const query = new URL(x.path, 'http://localhost').searchParams;
    const params = op.parameters || [];
    params.forEach((_, i) => {
      const [p, pTokens] = at([...opTokens, 'parameters', i]);
      if (p.in !== 'query' || !query.has(p.name)) return;
      for (const e of schemaErrors([...pTokens, 'schema'], query.get(p.name))) errs.push(`query ${p.name}: ${e}`);
    });
    for (const name of query.keys()) {
      const known = params.some((_, i) => {
        const [p] = at([...opTokens, 'parameters', i]);
        return p.in === 'query' && p.name === name;
      });
      if (!known) errs.push(`query parameter ${name} is not in the document`);
    }
  }
  return errs;
}

let failed = 0;
for (const x of exchanges) {
  let errs;
  try {
    errs = check(x);
  } catch (e) {
    errs = [`validator error: ${e.stack || e}`];
  }
  const what = `${x.method} ${x.path} -> ${x.status} (${x.name})`;
  if (errs.length === 0) {
    console.log(`ok   ${what}`);
  } else {
    failed++;
    console.log(`FAIL ${what}`);
    for (const e of errs) console.log(`       ${e}`);
  }
}
console.log(`openapi contract: ${exchanges.length - failed} exchanges valid, ${failed} not`);
process.exit(failed === 0 ? 0 : 1);
