/**
 * Docs that cannot drift: every shell block in README.md and docs/ is marked,
 * on the line before it, `<!-- doc-test: run … -->` or `<!-- doc-test: illustrative … -->`.
 * The run ones are executed here in a scratch directory as a reader would
 * (the CLIs on PATH, a clean environment, no CI variable), with the machine's
 * paths and port filled in: the quickstart first, against a real nginx on
 * 127.0.0.1, then the blocks that run in its store or in the checkout. A block
 * `run by=tests/x.test.ts` is run by that test, which must read its page.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execSync } from 'node:child_process';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_DIR, REPO } from './helpers/cli.js';
import { freePort } from './helpers/servers.js';

interface DocBlock {
  file: string;
  line: number;
  lang: string;
  marker:
    | { kind: 'run' | 'illustrative'; id?: string; in?: string; by?: string; exit?: string; output?: string }
    | undefined;
  body: string;
}

const SHELL = new Set(['sh', 'bash', 'console', 'shell', 'zsh']);

/** The pages a reader is pointed at: the README and every page under docs/. */
function docPages(): string[] {
  const walk = (d: string): string[] =>
    fs
      .readdirSync(path.join(REPO, d), { withFileTypes: true })
      .flatMap((e) =>
        e.isDirectory() ? walk(path.join(d, e.name)) : e.name.endsWith('.md') ? [path.join(d, e.name)] : [],
      );
  return ['README.md', ...walk('docs').sort()];
}

/** Every fenced shell block of a page, with the marker on the line before it. */
function shellBlocks(file: string): DocBlock[] {
  const lines = fs.readFileSync(path.join(REPO, file), 'utf8').split('\n');
  const out: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,})(\S*)/.exec(lines[i]!);
    if (!open) continue;
    const end = lines.findIndex((l, j) => j > i && l.trim() === open[2]);
    const close = end < 0 ? lines.length : end;
    const lang = open[3]!.split(/[\s{,]/)[0]!;
    if (SHELL.has(lang)) {
      const m = /^\s*<!-- doc-test: (run|illustrative)\b([^>]*)-->\s*$/.exec(lines[i - 1] ?? '');
      const attrs = Object.fromEntries([...(m?.[2] ?? '').matchAll(/(\w+)=(\S+)/g)].map((a) => [a[1], a[2]]));
      out.push({
        file,
        line: i + 1,
        lang,
        marker: m ? { kind: m[1] as 'run' | 'illustrative', ...(m[1] === 'run' ? attrs : {}) } : undefined,
        body: lines
          .slice(i + 1, close)
          .map((l) => l.slice(open[1]!.length))
          .join('\n'),
      });
    }
    i = close;
  }
  return out;
}

const blocks = docPages().flatMap(shellBlocks);
const where = (b: DocBlock) => `${b.file}:${b.line}`;

describe('every shell block is marked', () => {
  it('as run or illustrative, on the line before it', () => {
    expect(blocks.length).toBeGreaterThan(20);
    expect(blocks.filter((b) => !b.marker).map(where)).toEqual([]);
  });
  it('a block run by another test names a test file that reads its page', () => {
    const by = blocks.filter((b) => b.marker?.by);
    expect(by.length).toBeGreaterThan(0);
    for (const b of by) {
      const test = path.join(REPO, b.marker!.by!);
      expect(fs.existsSync(test), `${where(b)}: ${b.marker!.by}`).toBe(true);
      expect(fs.readFileSync(test, 'utf8'), `${where(b)}: ${b.marker!.by} reads ${b.file}`).toContain(b.file);
    }
  });
  it('every run block says where it runs: the quickstart, the store it leaves, the checkout, or another test', () => {
    for (const b of blocks.filter((x) => x.marker?.kind === 'run')) {
      const m = b.marker!;
      expect(m.id === 'quickstart' || ['quickstart', 'repo'].includes(m.in ?? '') || !!m.by, where(b)).toBe(true);
    }
    expect(blocks.filter((b) => b.marker?.id === 'quickstart').map(where)).toEqual([
      `README.md:${blocks.find((b) => b.marker?.id === 'quickstart')!.line}`,
    ]);
  });
  it('the quickstart takes at most 12 commands', () => {
    const q = blocks.find((b) => b.marker?.id === 'quickstart')!.body;
    // A heredoc is one command with its text.
    const commands = q
      .replace(/<<'(\w+)'\n[\s\S]*?\n\1(\n|$)/g, '\n')
      .split('\n')
      .filter((l) => l.trim() && !l.trim().startsWith('#'));
    expect(commands.length).toBeLessThanOrEqual(12);
  });
});

describe('the docs speak to users', () => {
  it('no word about issues, deliverables or the contract', () => {
    const found: string[] = [];
    for (const f of [...docPages(), 'BENCHMARKS.md']) {
      fs.readFileSync(path.join(REPO, f), 'utf8')
        .split('\n')
        .forEach((l, i) => {
          if (/\bissues? #?\d+|\bthe issue\b|\bdeliverables?\b|\bthe contract\b|\bcontract's\b/i.test(l))
            found.push(`${f}:${i + 1}: ${l.trim().slice(0, 80)}`);
        });
    }
    expect(found).toEqual([]);
  });
  it('every page under docs/ is linked from the index the README links', () => {
    const index = fs.readFileSync(path.join(REPO, 'docs/README.md'), 'utf8');
    expect(fs.readFileSync(path.join(REPO, 'README.md'), 'utf8')).toContain('(docs/README.md)');
    const pages = docPages().filter((f) => f.startsWith('docs/') && f !== path.join('docs', 'README.md'));
    expect(pages.filter((f) => !index.includes(`](${path.relative('docs', f)})`))).toEqual([]);
  });
  it('the README stays short', () => {
    expect(fs.readFileSync(path.join(REPO, 'README.md'), 'utf8').split('\n').length).toBeLessThanOrEqual(300);
  });
});

/**
 * A scratch machine: the CLIs on PATH (the built packages), and an nginx laid
 * out as Debian's (a main nginx.conf including conf.d/*.conf) under the
 * scratch directory, started and reloaded through a wrapper named nginx.
 */
interface Machine {
  dir: string;
  env: Record<string, string>;
  port: number;
  fill: (s: string) => string;
  stop: () => Promise<void>;
}

function scratchMachine(): Machine {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-doc-'));
  const bin = path.join(dir, 'bin');
  const nginx = path.join(dir, 'nginx');
  for (const d of [
    bin,
    path.join(nginx, 'conf.d'),
    path.join(dir, 'etc'),
    path.join(dir, 'home'),
    path.join(dir, 'work'),
  ])
    fs.mkdirSync(d, { recursive: true });
  const cli = (name: string) =>
    fs.writeFileSync(path.join(bin, name), `#!/bin/sh\nexec node ${path.join(CLI_DIR, `${name}.mjs`)} "$@"\n`, {
      mode: 0o755,
    });
  for (const name of ['trellis-root', 'trellis-ci', 'trellis-agent', 'trellis-drill']) cli(name);
  fs.writeFileSync(
    path.join(nginx, 'nginx.conf'),
    `pid ${nginx}/nginx.pid;\nerror_log ${nginx}/error.log info;\nevents {}\nhttp {\n  access_log off;\n  ` +
      `include ${nginx}/conf.d/*.conf;\n}\n`,
  );
  fs.writeFileSync(
    path.join(bin, 'nginx'),
    `#!/bin/sh\nexec /usr/sbin/nginx -p ${nginx}/ -c ${nginx}/nginx.conf -e ${nginx}/error.log "$@"\n`,
    { mode: 0o755 },
  );
  // The checkout beside the store, as the CI route has it.
  fs.symlinkSync(REPO, path.join(dir, 'work', 'trellis'));
  const port = freePort();
  const fill = (s: string) =>
    s
      .replaceAll('/etc/nginx/conf.d', path.join(nginx, 'conf.d'))
      .replaceAll('/etc/trellis', path.join(dir, 'etc', 'trellis'))
      .replaceAll(':8443', `:${port}`);
  const env = { PATH: `${bin}:${process.env.PATH}`, HOME: path.join(dir, 'home'), LANG: 'C.UTF-8' };
  return {
    dir,
    env,
    port,
    fill,
    stop: async () => void (await execa(path.join(bin, 'nginx'), ['-s', 'stop'], { reject: false })),
  };
}

async function runBlock(m: Machine, b: DocBlock, cwd: string) {
  const r = await execa('bash', ['-euo', 'pipefail', '-c', m.fill(b.body)], {
    cwd,
    env: m.env,
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
    timeout: 90_000,
  });
  return {
    code: r.exitCode,
    stdout: String(r.stdout),
    stderr: String(r.stderr),
    out: `${where(b)}\n${r.stdout}\n${r.stderr}`,
  };
}

const hasNginx = fs.existsSync('/usr/sbin/nginx');
const hasPromtool = (() => {
  try {
    return execSync('command -v promtool', { shell: '/bin/sh', encoding: 'utf8' }).trim() !== '';
  } catch {
    return false;
  }
})();

describe.skipIf(!hasNginx)('the run blocks, as a reader runs them', () => {
  let m: Machine;
  const store = () => path.join(m.dir, 'work', 'mesh');
  beforeAll(() => void (m = scratchMachine()));
  afterAll(async () => {
    await m.stop();
    fs.rmSync(m.dir, { recursive: true, force: true });
  });

  it("the quickstart reaches a real mTLS handshake through nginx: a leaf of the region gets through, another region's is refused", async () => {
    const q = blocks.find((b) => b.marker?.id === 'quickstart')!;
    const r = await runBlock(m, q, path.join(m.dir, 'work'));
    expect(r.code, r.out).toBe(0);
    expect(r.stdout.trim().split('\n').slice(-2), r.out).toEqual(['200', '400']);
    // nginx itself refused the other region's certificate (not a client-side failure).
    expect(fs.readFileSync(path.join(m.dir, 'nginx', 'error.log'), 'utf8')).toMatch(
      /client SSL certificate verify error/,
    );
    // The server block came from bundle --server-block, pointing at the release deploy installed.
    const conf = fs.readFileSync(path.join(m.dir, 'nginx', 'conf.d', 'trellis-api.conf'), 'utf8');
    expect(conf).toMatch(/^server \{\n {4}listen +127\.0\.0\.1:\d+ ssl;/);
    expect(conf).toContain(path.join(m.dir, 'etc', 'trellis', 'api', 'current', 'crl.pem'));
  }, 120_000);

  for (const b of blocks.filter((x) => x.marker?.kind === 'run' && x.marker.in === 'quickstart')) {
    it(`${where(b)} runs in the quickstart's store`, async () => {
      expect(fs.existsSync(path.join(store(), 'trellis.yaml')), 'the quickstart ran first').toBe(true);
      const r = await runBlock(m, b, store());
      // exit=N: the block ends in a refusal the page describes; output=a-b: its words, dashes for spaces.
      expect(r.code, r.out).toBe(Number(b.marker!.exit ?? 0));
      if (b.marker!.output) expect(r.stdout + r.stderr, r.out).toContain(b.marker!.output.replaceAll('-', ' '));
      else if (/openssl verify/.test(b.body)) expect(r.stdout, r.out).toMatch(/: OK$/m);
    }, 60_000);
  }

  for (const b of blocks.filter((x) => x.marker?.kind === 'run' && x.marker.in === 'repo')) {
    it.skipIf(/^\s*promtool\b/m.test(b.body) && !hasPromtool)(
      `${where(b)} runs in the checkout`,
      async () => {
        const r = await runBlock(m, b, REPO);
        expect(r.code, r.out).toBe(0);
      },
      60_000,
    );
  }
});
