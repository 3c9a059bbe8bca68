/**
 * Test-only: `node start-cached.cjs BUNDLE ARGS...` runs a test CLI (build/test-cli) as `node BUNDLE ARGS...` does,
 * from its script form (BUNDLE with .script.js for .mjs, written by buildTestCli) and V8's code cache, so the suite's
 * thousands of CLI runs skip parsing and compiling the same 2 MB each time (docs/decisions.md, "The suite starts its
 * CLIs from V8's code cache"). The release never contains this file.
 *
 * The cache is used only when its first 32 bytes are the SHA-256 of the script it was made from and of the rest of the
 * cache: V8 itself checks only the source's length, and a damaged cache crashes it. A cache not used costs time, never
 * behaviour.
 * TRELLIS_TEST_CODE_CACHE=produce writes the cache when the run ends (buildTestCli, once per build).
 */
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const { isBuiltin } = require('node:module');
const path = require('node:path');
const { pathToFileURL } = require('node:url');
const vm = require('node:vm');

const bundle = path.resolve(process.argv[2]);
process.argv.splice(1, 2, bundle); // the CLI sees the argv `node BUNDLE ARGS...` gives it
const scriptFile = bundle.replace(/\.mjs$/, '.script.js');
const cacheFile = `${scriptFile}.cache`;
const source = fs.readFileSync(scriptFile);
const digest = (v8data) => crypto.createHash('sha256').update(source).update(v8data).digest();
let cachedData;
try {
  const cache = fs.readFileSync(cacheFile);
  if (cache.subarray(0, 32).equals(digest(cache.subarray(32)))) cachedData = cache.subarray(32);
} catch {}
// The bundle's name, so stack traces read as they do when node runs it (buildTestCli keeps its line numbers).
const script = new vm.Script(source.toString('utf8'), { filename: bundle, cachedData });
if (process.env.TRELLIS_TEST_CODE_CACHE === 'produce') {
  // At exit: the functions the run compiled are in the cache too, not only the top level.
  process.on('exit', () => {
    const tmp = `${cacheFile}.${process.pid}.tmp`;
    const v8data = script.createCachedData();
    fs.writeFileSync(tmp, Buffer.concat([digest(v8data), v8data]));
    fs.renameSync(tmp, cacheFile);
  });
}

const url = pathToFileURL(bundle).href;
const importMeta = {
  url,
  filename: bundle,
  dirname: path.dirname(bundle),
  resolve() {
    throw new Error('import.meta.resolve: not available to a test CLI started from its script form');
  },
};
// What the bundle's `import … from "node:…"` lines become; the build allows Node's own modules and nothing else.
const builtin = (id) => {
  if (!isBuiltin(id)) throw new Error(`${id}: not one of Node's own modules`);
  return require(id);
};
let settled = false;
script
  .runInThisContext()(builtin, importMeta)
  .then(
    () => {
      settled = true;
    },
    (e) => {
      settled = true;
      // As an ES module's rejected top level: an uncaught error, printed, exit code 1.
      process.nextTick(() => {
        throw e;
      });
    },
  );
// As Node does for an ES module whose top-level await never settles: exit code 13 unless one was set.
process.on('exit', () => {
  if (!settled) process.exitCode ??= 13;
});
