#!/usr/bin/env node
/**
 * pnpm dist: the self-contained release. One ES module per CLI that runs with
 * `node` alone (no node_modules, no network), the scripts they run beside them,
 * a CycloneDX SBOM from esbuild's metafile, and manifest.json listing every
 * file's SHA-256; signed with `ssh-keygen -Y sign -n trellis-release` when a key
 * is given. Reproducible: nothing depends on the directory, the clock or the
 * machine, only on the sources of the newest commit that changed them.
 *
 *   node scripts/dist/build.mjs [--out DIR] [--sign-key FILE] [--action DIR]
 *
 * The bundles are made from the TypeScript sources (pnpm dist type-checks them with tsc first).
 * --sign-key (or TRELLIS_RELEASE_KEY): the release key, an SSH private key (or a
 * public key whose private half is in ssh-agent). --action DIR also refreshes the
 * bundle the GitHub Action runs (committed under action/; docs/installing.md).
 */
import { execFile, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { isBuiltin } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SPDX } from '@cyclonedx/cyclonedx-library';
import { build } from 'esbuild';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NAMESPACE = 'trellis-release';

/** The CLIs; each bundle's `needs` ship beside it (installer.sh: dir, ssh and sealed installs run it). */
const CLIS = [
  { file: 'trellis-root.mjs', entry: 'packages/offline/src/main.ts', needs: [] },
  { file: 'trellis-ci.mjs', entry: 'packages/ci/src/main.ts', needs: ['installer.sh', 'mint-worker.mjs'] },
  { file: 'trellis-agent.mjs', entry: 'packages/agent/src/main.ts', needs: ['installer.sh'] },
  // The drill runs the real trellis-root and trellis-ci of the same release, beside it.
  {
    file: 'trellis-drill.mjs',
    entry: 'packages/drill/src/main.ts',
    needs: ['trellis-root.mjs', 'trellis-ci.mjs', 'installer.sh', 'mint-worker.mjs', 'drill-probe.mjs'],
  },
];
/**
 * Files that ship beside the bundles, as the code finds them (new URL('./name', import.meta.url)).
 * A worker thread script is added here as { file, entry } and bundled like a CLI; a copied one as { file, from }.
 */
const BESIDE = [
  { file: 'installer.sh', from: 'packages/agent/installer.sh' },
  // renew's leaf-signing threads (packages/ci/src/mint-pool.ts)
  { file: 'mint-worker.mjs', entry: 'packages/ci/src/mint-worker.ts' },
  // the drill's handshakes, run under libfaketime (packages/drill/src/probe-at.ts)
  { file: 'drill-probe.mjs', entry: 'packages/drill/src/probe.ts' },
];
/** What the bundles are made of: the newest commit touching these names the build (tests and docs do not count). */
const INPUTS = [
  'packages',
  ':(exclude)packages/*/test',
  'pnpm-lock.yaml',
  'tsconfig.base.json',
  'scripts/dist/build.mjs',
];
/** What the GitHub Action runs (action.yml): trellis-ci and what it needs. */
const ACTION_FILES = ['trellis-ci.mjs', 'installer.sh', 'mint-worker.mjs'];

const sha256 = (bytes) => crypto.createHash('sha256').update(bytes).digest('hex');
const git = (...args) =>
  execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();

/** The commit the sources are, and its date: the only clock this build reads. */
function sourceCommit() {
  try {
    if (git('rev-parse', '--is-shallow-repository') === 'true') {
      throw new Error(
        'a shallow clone cannot tell which commit last changed the sources: fetch the history (git fetch --unshallow)',
      );
    }
    const commit = git('log', '-1', '--format=%H', '--', ...INPUTS);
    const date = new Date(git('log', '-1', '--format=%cI', commit)).toISOString().replace(/\.000Z$/, 'Z');
    const dirty = git('status', '--porcelain', '--untracked-files=all', '--', ...INPUTS) !== '';
    return { commit: dirty ? `${commit}-dirty` : commit, date };
  } catch (e) {
    if (/shallow/.test(e.message)) throw e;
    throw new Error(`not a git checkout (${ROOT}): the build is named by the commit of its sources`);
  }
}

/**
 * The workspace packages by their TypeScript sources (tsc type-checks them; esbuild only strips types), each entry
 * point of @trellis/core by its own: an alias also rewrites subpaths, so `@trellis/core` alone would send
 * `@trellis/core/store` into `index.ts/store`.
 */
export const WORKSPACE_SOURCES = {
  '@trellis/core/leaf-template': './packages/core/src/x509/leaf-template.ts',
  '@trellis/core/store': './packages/core/src/store/index.ts',
  '@trellis/core/shell': './packages/core/src/shell/index.ts',
  '@trellis/core': './packages/core/src/index.ts',
  '@trellis/agent': './packages/agent/src/index.ts',
};

/** Resolves each import of fault-seam.js to fault-seam.release.ts beside it. */
const INERT_FAULT_SEAM = {
  name: 'inert-fault-seam',
  setup: (b) =>
    b.onResolve({ filter: /\/fault-seam\.js$/ }, (args) => ({
      path: path.join(args.resolveDir, args.path.replace(/fault-seam\.js$/, 'fault-seam.release.ts')),
    })),
};

/**
 * yargs' upward search for a package.json finds nothing in a bundle (packages/core/src/shell/no-find-up.release.ts).
 */
const NO_FIND_UP = {
  name: 'no-find-up',
  setup: (b) =>
    b.onResolve({ filter: /^escalade\/sync$/ }, () => ({
      path: path.join(ROOT, 'packages/core/src/shell/no-find-up.release.ts'),
    })),
};

/**
 * string-width builds Unicode tables when it loads (an Intl.Segmenter and property regexes: about 25 ms of every
 * start), yet only help and usage text measure widths: the ES modules that import it (yargs, cliui) get a stand-in
 * that loads it on first use. The CommonJS copy cli-progress requires is already loaded only when required.
 */
const LAZY_NAMESPACE = 'lazy-string-width';
const LAZY_STRING_WIDTH = {
  name: LAZY_NAMESPACE,
  setup: (b) => {
    b.onResolve({ filter: /^string-width$/ }, async (args) => {
      if (args.kind !== 'import-statement' || args.pluginData === 'real') return undefined;
      const real = await b.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, pluginData: 'real' });
      if (real.errors.length > 0) return { errors: real.errors };
      // Relative to the checkout, so no absolute path reaches the bundle.
      return { path: path.relative(ROOT, real.path), namespace: LAZY_NAMESPACE };
    });
    b.onLoad({ filter: /./, namespace: LAZY_NAMESPACE }, (args) => ({
      contents:
        `let width;\nexport default function stringWidth(text, options) {\n` +
        `  width ??= require(${JSON.stringify(`./${path.basename(args.path)}`)}).default;\n` +
        `  return width(text, options);\n}\n`,
      resolveDir: path.join(ROOT, path.dirname(args.path)),
    }));
  },
};

async function bundle(entry, outfile, info, { faultSeam = false } = {}) {
  const result = await build({
    absWorkingDir: ROOT, // paths in the output and the metafile are relative to it: the checkout's location never shows
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    // A package's ES module build where it ships one (@peculiar/*, asn1js, tsyringe): hoisted and tree-shaken rather
    // than wrapped as CommonJS, a bundle about 8 % smaller that starts faster.
    mainFields: ['module', 'main'],
    target: 'node20.19',
    charset: 'utf8',
    legalComments: 'eof', // the bundled packages' licence notices travel with them
    // Bundled CommonJS packages call require() for Node's built-ins; an ES module has none of its own.
    banner: {
      js:
        "import { createRequire as __trellisCreateRequire } from 'node:module';\n" +
        'const require = __trellisCreateRequire(import.meta.url);',
    },
    define: { TRELLIS_BUILD: JSON.stringify(info) },
    alias: WORKSPACE_SOURCES,
    // The test-only fault seam stays out of the release: its inert twin takes its place.
    plugins: faultSeam ? [NO_FIND_UP, LAZY_STRING_WIDTH] : [NO_FIND_UP, LAZY_STRING_WIDTH, INERT_FAULT_SEAM],
    metafile: true,
    write: false,
    logLevel: 'warning',
  });
  // Self-contained means every import left in the output is one of Node's own modules.
  for (const [out, o] of Object.entries(result.metafile.outputs)) {
    const outside = o.imports.filter((i) => i.external && !isBuiltin(i.path));
    const names = outside.map((i) => i.path).join(', ');
    if (outside.length) throw new Error(`${out} would import ${names} at run time: bundle it or ship it beside`);
  }
  // What is in the bundle: inputs with bytes in the output (a module reached only by an import() of code tree-shaken
  // away is an input of none).
  // Inputs named <...> are esbuild's own (the define, its runtime), not files.
  const [output] = Object.values(result.metafile.outputs);
  const inside = Object.entries(output.inputs)
    .filter(([i, o]) => o.bytesInOutput > 0 && !i.startsWith('<'))
    .map(([i]) => i);
  // The banner's import is not an input's, so the metafile does not list it.
  const imports = output.imports.filter((i) => i.kind === 'import-statement').length + 1;
  return { bytes: result.outputFiles[0].contents, inputs: inside.sort(), imports };
}

/**
 * A test CLI's script form, for scripts/dist/start-cached.cjs: the bundle as the body of an async function, its
 * `import … from "node:…"` lines made calls to the loader's `builtin` and hoisted to the first line (where the shebang
 * was, so every other line keeps its number), `import.meta` the loader's. A script, unlike a module, can have its code
 * cache made after it ran. `imports` is esbuild's count of import statements: every one must be matched, no other line.
 * @public imported by path (tests/start-cached.test.ts), which knip cannot follow.
 */
export function scriptForm(bytes, imports) {
  const hoisted = [];
  const IMPORT = /^import\s+(?:([\w$]+)|\{([^}]*)\})\s+from\s+(["'])([^"']+)\3;?$/gm;
  const body = Buffer.from(bytes)
    .toString('utf8')
    .replace(/^#!.*/, '')
    .replace(IMPORT, (line, name, named, _quote, id) => {
      const from = `__trellisBuiltin(${JSON.stringify(id)})`;
      const bindings = named?.replace(/\s+/g, ' ').replace(/ as /g, ': ');
      // A module's default export is module.exports; `{ default as x }` would need that said, and no bundle has one.
      if (/\bdefault\b/.test(bindings ?? '')) throw new Error(`${line}: a named default import`);
      hoisted.push(name ? `const ${name} = ${from};` : `const {${bindings}} = ${from};`);
      return '\n'.repeat(line.split('\n').length - 1);
    })
    .replace(/\bimport\.meta\b/g, '__trellisImportMeta');
  if (hoisted.length !== imports) {
    throw new Error(`script form: ${hoisted.length} imports matched, esbuild made ${imports}`);
  }
  const head = '(async function (__trellisBuiltin, __trellisImportMeta) {"use strict";';
  return Buffer.from(`${head} ${hoisted.join(' ')}${body}\n})`);
}

/** A shipped script without its test-only fault seam: the lines between its markers become inert definitions. */
export function withoutFaultSeam(text) {
  const m = /^# fault-seam:begin.*\n[\s\S]*?^# fault-seam:end\n/m.exec(text);
  const stray = 'a shipped script reads TRELLIS_FAULT outside its fault-seam markers';
  if (!m && /TRELLIS_FAULT/.test(text)) throw new Error(stray);
  const out = m ? text.replace(m[0], 'point() { :; }\nfault_report() { :; }\n') : text;
  if (/TRELLIS_FAULT/.test(out)) throw new Error(stray);
  return Buffer.from(out);
}

/**
 * The package an input file belongs to: its nearest package.json with a name. A plugin's stand-in
 * (`lazy-string-width:PATH`) belongs to the package of the file it stands in for.
 */
function packageOf(input, cache) {
  const source = input.startsWith(`${LAZY_NAMESPACE}:`) ? input.slice(LAZY_NAMESPACE.length + 1) : input;
  let dir = path.dirname(path.join(ROOT, source));
  while (dir.startsWith(ROOT) && dir !== ROOT) {
    if (cache.has(dir)) return cache.get(dir);
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8'));
      if (pkg.name && pkg.version) {
        const license = typeof pkg.license === 'string' ? pkg.license : pkg.license?.type;
        const workspace = !path.relative(ROOT, dir).startsWith('node_modules');
        const found = { name: pkg.name, version: pkg.version, license, workspace };
        cache.set(dir, found);
        return found;
      }
    }
    dir = path.dirname(dir);
  }
  throw new Error(`${input}: no package.json with a name and version above it`);
}

const purl = (p) => `pkg:npm/${p.name.replace(/^@/, '%40')}@${p.version}`;

/** CycloneDX 1.5: each bundle an application, the packages inside it libraries, and which went into which. */
function sbom(info, artifacts, contents) {
  const packages = new Map();
  const dependencies = [];
  for (const a of artifacts.filter((x) => contents.has(x.file))) {
    const inside = [...contents.get(a.file)].sort((x, y) => purl(x).localeCompare(purl(y)));
    for (const p of inside) packages.set(purl(p), p);
    dependencies.push({ ref: a.file, dependsOn: [...new Set(inside.map(purl))] });
  }
  // An SPDX id as an id, an SPDX expression as one, anything else by name (the schema accepts only listed ids).
  const license = (p) => {
    if (!p.license) return undefined;
    if (SPDX.isSupportedSpdxId(p.license)) return [{ license: { id: p.license } }];
    return /\s(OR|AND|WITH)\s/.test(p.license) ? [{ expression: p.license }] : [{ license: { name: p.license } }];
  };
  return {
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    version: 1,
    metadata: {
      timestamp: info.date,
      tools: {
        components: [
          { type: 'application', name: 'trellis scripts/dist/build.mjs' },
          { type: 'application', name: 'esbuild', version: esbuildVersion() },
        ],
      },
      component: { type: 'application', 'bom-ref': 'trellis', name: 'trellis', version: info.commit },
    },
    components: [
      ...artifacts
        .filter((a) => contents.has(a.file))
        .map((a) => ({
          type: 'application',
          'bom-ref': a.file,
          name: a.file,
          version: info.commit,
          hashes: [{ alg: 'SHA-256', content: a.sha256 }],
        })),
      ...[...packages.entries()]
        .sort(([x], [y]) => x.localeCompare(y))
        .map(([ref, p]) => ({
          type: 'library',
          'bom-ref': ref,
          name: p.name,
          version: p.version,
          purl: ref,
          licenses: license(p),
          ...(p.workspace ? { description: 'trellis workspace package' } : {}),
        })),
    ],
    dependencies: [{ ref: 'trellis', dependsOn: dependencies.map((d) => d.ref) }, ...dependencies],
  };
}

function esbuildVersion() {
  return JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules/esbuild/package.json'), 'utf8')).version;
}

const json = (v) => `${JSON.stringify(v, null, 2)}\n`;

/**
 * Builds the release into `out`; returns the manifest.
 * @public imported by path (scripts/bench), which knip cannot follow.
 */
export async function buildRelease(out, { info = sourceCommit() } = {}) {
  // Replaces an earlier release, never anything else (--out . or --out ~ must not empty a directory).
  if (fs.existsSync(out) && fs.readdirSync(out).length && !fs.existsSync(path.join(out, 'manifest.json'))) {
    throw new Error(`${out}: not empty and not a release (no manifest.json): choose an empty or new directory`);
  }
  if (!path.relative(out, ROOT).startsWith('..')) throw new Error(`${out}: holds the checkout itself`);
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true });
  const files = new Map(); // name → bytes
  const contents = new Map(); // bundle → its packages
  for (const cli of [...CLIS, ...BESIDE.filter((b) => b.entry)]) {
    const b = await bundle(cli.entry, path.join(out, cli.file), info);
    files.set(cli.file, b.bytes);
    const cache = new Map();
    contents.set(cli.file, new Set(b.inputs.map((i) => packageOf(i, cache))));
  }
  for (const b of BESIDE.filter((x) => x.from)) {
    files.set(b.file, withoutFaultSeam(fs.readFileSync(path.join(ROOT, b.from), 'utf8')));
  }
  const needs = Object.fromEntries(CLIS.map((c) => [c.file, c.needs]));
  const artifacts = [...files.entries()]
    .sort(([x], [y]) => (x < y ? -1 : 1))
    .map(([file, bytes]) => ({
      file,
      sha256: sha256(bytes),
      bytes: bytes.length,
      ...(needs[file] ? { run: `node ${file}`, needs: needs[file] } : {}),
    }));
  files.set('sbom.cdx.json', Buffer.from(json(sbom(info, artifacts, contents))));
  const bom = files.get('sbom.cdx.json');
  artifacts.push({ file: 'sbom.cdx.json', sha256: sha256(bom), bytes: bom.length });
  const manifest = { format: 'trellis-release/1', commit: info.commit, date: info.date, node: '>=20.19', artifacts };
  const mode = (file) => (file.endsWith('.mjs') || file.endsWith('.sh') ? 0o755 : 0o644);
  for (const [file, bytes] of files) fs.writeFileSync(path.join(out, file), bytes, { mode: mode(file) });
  fs.writeFileSync(path.join(out, 'manifest.json'), json(manifest));
  // The same hashes in the form sha256sum -c reads, manifest included: a custodian checks with standard tools alone.
  const manifestHash = sha256(fs.readFileSync(path.join(out, 'manifest.json')));
  const sums = [...artifacts, { file: 'manifest.json', sha256: manifestHash }];
  fs.writeFileSync(path.join(out, 'SHA256SUMS'), sums.map((a) => `${a.sha256}  ${a.file}\n`).join(''));
  return manifest;
}

/**
 * The tests' build: the release's layout and bundles, but with the test-only fault seam in (the crash tests drive it)
 * and no manifest. A bundle starts in half the time the workspace's thousand files do, and the suite spawns thousands.
 * @public imported by path (tests/helpers/global-setup.ts), which knip cannot follow.
 */
export async function buildTestCli(out) {
  const info = { commit: 'test-build', date: '1970-01-01T00:00:00Z' };
  fs.mkdirSync(out, { recursive: true });
  await Promise.all(
    [...CLIS, ...BESIDE.filter((b) => b.entry)].map(async (cli) => {
      const b = await bundle(cli.entry, path.join(out, cli.file), info, { faultSeam: true });
      writeIfChanged(path.join(out, cli.file), b.bytes);
      if (CLIS.includes(cli)) await codeCache(path.join(out, cli.file), scriptForm(b.bytes, b.imports));
    }),
  );
  for (const b of BESIDE.filter((x) => x.from)) {
    writeIfChanged(path.join(out, b.file), fs.readFileSync(path.join(ROOT, b.from)));
  }
  // The PKCS#11 binding installed beside the bundle, as docs/root-on-token.md has an operator do.
  const binding = path.join(ROOT, 'packages/offline/node_modules/pkcs11js');
  const beside = path.join(out, 'node_modules/pkcs11js');
  if (fs.existsSync(binding) && !fs.existsSync(beside)) {
    fs.mkdirSync(path.dirname(beside), { recursive: true });
    fs.symlinkSync(fs.realpathSync(binding), beside);
  }
}

/**
 * Writes a test CLI's script form beside it and, unless the cache there is whole and made from these bytes, runs the
 * CLI's `version` through start-cached.cjs once to make it: the functions every start compiles are then in it.
 */
async function codeCache(cli, script) {
  const file = cli.replace(/\.mjs$/, '.script.js');
  writeIfChanged(file, script);
  const cache = fs.existsSync(`${file}.cache`) ? fs.readFileSync(`${file}.cache`) : Buffer.alloc(0);
  const digest = crypto.createHash('sha256').update(script).update(cache.subarray(32)).digest();
  if (cache.subarray(0, 32).equals(digest)) return;
  const start = path.join(ROOT, 'scripts/dist/start-cached.cjs');
  await new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [start, cli, 'version'],
      {
        env: { PATH: process.env.PATH, TRELLIS_TEST_CODE_CACHE: 'produce' },
      },
      (e) => (e ? reject(new Error(`${cli} version, started from its script form: ${e.message}`)) : resolve()),
    );
  });
}

/** Rewrites only what changed: a test file already running a bundle keeps reading the bytes it started with. */
function writeIfChanged(file, bytes) {
  if (fs.existsSync(file) && Buffer.compare(fs.readFileSync(file), bytes) === 0) return;
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, bytes, { mode: 0o755 });
  fs.renameSync(tmp, file);
}

/** The two signed views, manifest.json.sig and SHA256SUMS.sig: SSH signatures in the trellis-release namespace. */
const SIGNED = ['manifest.json', 'SHA256SUMS'];
function signRelease(out, key) {
  for (const f of SIGNED) fs.rmSync(path.join(out, `${f}.sig`), { force: true });
  const files = SIGNED.map((f) => path.join(out, f));
  execFileSync('ssh-keygen', ['-q', '-Y', 'sign', '-f', key, '-n', NAMESPACE, ...files], {
    stdio: ['inherit', 'ignore', 'inherit'],
  });
}

/** The action's copy: the same bytes as the release's, and a manifest of just those. */
function copyForAction(out, actionDir, manifest) {
  fs.mkdirSync(actionDir, { recursive: true });
  for (const f of ACTION_FILES) fs.copyFileSync(path.join(out, f), path.join(actionDir, f));
  const artifacts = manifest.artifacts.filter((a) => ACTION_FILES.includes(a.file));
  fs.writeFileSync(path.join(actionDir, 'manifest.json'), json({ ...manifest, artifacts }));
}

function flag(args, name) {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  if (!args[i + 1] || args[i + 1].startsWith('--')) throw new Error(`${name} needs a value`);
  return args[i + 1];
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  try {
    const known = ['--out', '--sign-key', '--action'];
    const unknown = args.filter((a, i) => a.startsWith('--') && !known.includes(a) && !known.includes(args[i - 1]));
    if (unknown.length) throw new Error(`unknown flag ${unknown[0]} (known: --out DIR, --sign-key FILE, --action DIR)`);
    const out = path.resolve(flag(args, '--out') ?? path.join(ROOT, 'dist'));
    const key = flag(args, '--sign-key') ?? (process.env.TRELLIS_RELEASE_KEY || undefined);
    const manifest = await buildRelease(out);
    if (key) signRelease(out, key);
    const action = flag(args, '--action');
    if (action) copyForAction(out, path.resolve(action), manifest);
    for (const a of manifest.artifacts) process.stdout.write(`${a.sha256}  ${a.file}\n`);
    const signed = key ? ', manifest signed' : ', manifest not signed (no --sign-key or TRELLIS_RELEASE_KEY)';
    const where = path.relative(process.cwd(), out) || '.';
    process.stdout.write(`${where}: ${manifest.artifacts.length} files of commit ${manifest.commit}${signed}\n`);
  } catch (e) {
    process.stderr.write(`pnpm dist: ${e.message}\n`);
    process.exit(1);
  }
}
