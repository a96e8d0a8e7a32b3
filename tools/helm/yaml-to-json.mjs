// Reads multi-document YAML (files, or standard input) and prints one JSON
// array of its documents (nulls dropped), for tests/helm's Python scripts.
import fs from 'node:fs';
import yaml from 'js-yaml';

const files = process.argv.slice(2);
const texts = files.length ? files.map((f) => fs.readFileSync(f, 'utf8')) : [fs.readFileSync(0, 'utf8')];
const docs = texts.flatMap((t) => yaml.loadAll(t)).filter((d) => d !== null && d !== undefined);
process.stdout.write(JSON.stringify(docs));
