// Check KQL with Microsoft's own Kusto parser and binder (Kusto.Language, npm @kusto/language-service-next).
//
// Reads one JSON document from stdin:
//   {"schemas": {"AzureDiagnostics": {"TimeGenerated": "datetime", ...}, ...},
//    "queries": [{"name": "requests_by_status", "text": "AzureDiagnostics | ..."}, ...]}
// and writes one JSON document to stdout:
//   {"results": {"requests_by_status": [{"code", "severity", "message", "start", "length"}, ...], ...}}
// with every diagnostic the analyser reports (callers filter on severity == "Error").
// A problem with the input itself (bad JSON, an unknown column type) is reported as
//   {"error": "..."} with exit code 2.
//
// The package is a Bridge.NET build of the .NET library: bridge.js installs the runtime on `global`, then
// Kusto.Language.Bridge.js defines the `Kusto` namespace. Loading both takes about half a second, so one
// process checks many queries.

import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));
const pkgDir = process.env.KQL_CHECK_PACKAGE_DIR || join(here, "..", "node_modules", "@kusto", "language-service-next");

function fail(message) {
  process.stdout.write(JSON.stringify({ error: message }) + "\n");
  process.exit(2);
}

let input;
try {
  input = JSON.parse(readFileSync(0, "utf8"));
} catch (e) {
  fail(`stdin is not JSON: ${e.message}`);
}
const schemas = input.schemas || {};
const queries = input.queries || [];
if (typeof schemas !== "object" || !Array.isArray(queries)) {
  fail('expected {"schemas": {table: {column: type}}, "queries": [{"name", "text"}]}');
}

try {
  require(join(pkgDir, "bridge.js"));
  require(join(pkgDir, "Kusto.Language.Bridge.js"));
} catch (e) {
  fail(`cannot load @kusto/language-service-next from ${pkgDir} (run \`npm ci\` or \`make test\`): ${e.message}`);
}

/* global Kusto, System */
const Symbols = Kusto.Language.Symbols;

function tableSymbol(name, columns) {
  const cols = [];
  for (const [col, typeName] of Object.entries(columns)) {
    const type = Symbols.ScalarTypes.GetSymbol(typeName);
    if (type == null) {
      fail(`table ${name}: column ${col} has unknown Kusto type ${JSON.stringify(typeName)}`);
    }
    cols.push(new Symbols.ColumnSymbol.ctor(col, type, null, null, null, null));
  }
  return new Symbols.TableSymbol.$ctor4(name, cols);
}

const tables = Object.entries(schemas).map(([name, cols]) => tableSymbol(name, cols));
const database = new Symbols.DatabaseSymbol.ctor("workspace", tables);
const globals = Kusto.Language.GlobalState.Default.WithDatabase(database);

function diagnostics(text) {
  const code = Kusto.Language.KustoCode.ParseAndAnalyze(text, globals);
  const list = code.GetDiagnostics();
  const n = System.Array.getCount(list, Kusto.Language.Diagnostic);
  const out = [];
  for (let i = 0; i < n; i++) {
    const d = System.Array.getItem(list, i, Kusto.Language.Diagnostic);
    out.push({ code: d.Code, severity: d.Severity, message: d.Message, start: d.Start, length: d.Length });
  }
  return out;
}

const results = {};
for (const q of queries) {
  if (!q || typeof q.name !== "string" || typeof q.text !== "string") {
    fail(`each query needs a string "name" and "text": ${JSON.stringify(q)}`);
  }
  results[q.name] = diagnostics(q.text);
}
process.stdout.write(JSON.stringify({ results }) + "\n");
