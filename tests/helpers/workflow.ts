/**
 * Runs a GitHub Actions workflow's jobs on this machine, step by step, as a
 * runner would: `run:` steps in bash with GITHUB_OUTPUT and the env the
 * workflow sets, outputs passed between steps and jobs, `if:` honoured.
 * Three kinds of `uses:` step are stood in for, and nothing else is accepted:
 * actions/checkout (a clone of the local origin at the requested ref),
 * actions/upload-artifact (a copy of `path` into <artifacts>/<name>) and the
 * repository's own action `./` (trellis-ci run with the same `args` in its
 * `working-directory`, the `ci-identity` input as TRELLIS_CI_IDENTITY).
 * Expressions: context paths, index syntax (secrets[matrix.secret]), ||,
 * fromJSON(), == between a path and a string, always() and !cancelled(); a
 * matrix of one axis or of `include` combinations; anything else is an error, so a template using
 * more fails here instead of passing untested.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { CI_BIN, nodeArgs, noteCliRun } from './cli.js';

interface Step {
  id?: string;
  name?: string;
  if?: string;
  uses?: string;
  run?: string;
  with?: Record<string, string>;
  env?: Record<string, string>;
}
export interface Job {
  needs?: string | string[];
  if?: string;
  env?: Record<string, string>;
  outputs?: Record<string, string>;
  strategy?: { matrix?: Record<string, unknown> };
  steps: Step[];
}
export interface Workflow {
  jobs: Record<string, Job>;
}

export interface Context {
  github: Record<string, string>;
  secrets: Record<string, string>;
  needs: Record<string, { outputs: Record<string, string>; result: string }>;
  matrix?: Record<string, string>;
  steps?: Record<string, { outputs: Record<string, string> }>;
}

interface StepLog {
  job: string;
  step: string;
  kind: 'run' | 'checkout' | 'upload' | 'action' | 'skipped';
  command?: string;
  code: number;
  stdout: string;
  stderr: string;
  /** The `ci-identity` the action step was given (what a test asserts a job held); unset when none. */
  identity?: string;
}

export interface JobResult {
  outputs: Record<string, string>;
  result: 'success' | 'failure';
  log: StepLog[];
}

function lookup(ctx: Context, ref: string): unknown {
  let v: unknown = ctx;
  for (const k of ref.split('.')) {
    if (v === undefined || v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

/** `expr` cut at each `||` outside parentheses and brackets. */
function alternatives(expr: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let from = 0;
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i];
    if (c === '(' || c === '[') depth++;
    else if (c === ')' || c === ']') depth--;
    else if (c === '|' && expr[i + 1] === '|' && depth === 0) {
      out.push(expr.slice(from, i));
      from = i + 2;
      i++;
    }
  }
  return [...out, expr.slice(from)];
}

function evaluate(expr: string, ctx: Context): unknown {
  const e = expr.trim();
  if (e === 'always()' || e === '!cancelled()') return true;
  // a || b: the first truthy value, as GitHub's operator returns it (a missing secret is '').
  const alts = alternatives(e);
  if (alts.length > 1) return alts.map((a) => evaluate(a, ctx)).find(Boolean) ?? '';
  // Index syntax with an expression inside: secrets[matrix.secret].
  const index = e.match(/^([A-Za-z_][\w-]*(?:\.[\w-]+)*)\[([^\]]+)\]$/);
  if (index) {
    const base = lookup(ctx, index[1]!);
    const key = String(evaluate(index[2]!, ctx) ?? '');
    return base && typeof base === 'object' ? (base as Record<string, unknown>)[key] : undefined;
  }
  const json = e.match(/^fromJSON\((.*)\)$/);
  if (json) return JSON.parse(String(evaluate(json[1]!, ctx)));
  const eq = e.match(/^([\w.-]+)\s*==\s*'([^']*)'$/);
  if (eq) return String(lookup(ctx, eq[1]!) ?? '') === eq[2];
  if (/^[A-Za-z_][\w-]*(\.[\w-]+)+$/.test(e)) return lookup(ctx, e);
  throw new Error(`expression not understood by the local runner: ${e}`);
}

/** A string with every ${{ }} replaced. */
function interpolate(s: string, ctx: Context): string {
  return s.replace(/\$\{\{(.*?)\}\}/g, (_m, inner: string) => String(evaluate(inner, ctx) ?? ''));
}

function condition(cond: string | undefined, ctx: Context): boolean {
  if (cond === undefined) return true;
  const inner = cond.trim().match(/^\$\{\{(.*)\}\}$/)?.[1] ?? cond;
  return Boolean(evaluate(inner, ctx));
}

/** The matrix combinations of a job: one axis, or an `include` list of combinations (all these templates use). */
export function matrixOf(job: Job, ctx: Context): Record<string, string>[] {
  const m = job.strategy?.matrix;
  if (!m) return [{}];
  const axes = Object.entries(m);
  if (axes.length !== 1) throw new Error('the local runner expands one matrix axis');
  const [axis, values] = axes[0]!;
  const list = typeof values === 'string' ? evaluate(values.trim().replace(/^\$\{\{(.*)\}\}$/, '$1'), ctx) : values;
  if (!Array.isArray(list)) throw new Error(`matrix ${axis} is not a list`);
  if (axis === 'include')
    return list.map((v) =>
      Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, String(x)])),
    );
  return list.map((v) => ({ [axis]: String(v) }));
}

export interface RunOptions {
  name: string;
  job: Job;
  ctx: Context;
  /** The runner's workspace: checkout clones into it. */
  workspace: string;
  /** The repository checkout clones. */
  origin: string;
  /** Where upload-artifact puts what it uploads. */
  artifacts: string;
  /** PATH and HOME for the steps. */
  env: Record<string, string | undefined>;
}

export async function runJob(o: RunOptions): Promise<JobResult> {
  const ctx: Context = { ...o.ctx, steps: {} };
  const log: StepLog[] = [];
  if (!condition(o.job.if, ctx))
    return {
      outputs: {},
      result: 'success',
      log: [{ job: o.name, step: '(job)', kind: 'skipped', code: 0, stdout: '', stderr: '' }],
    };
  const outputs = path.join(path.dirname(o.workspace), `${path.basename(o.workspace)}.outputs`);
  let failed = false;
  for (const [i, step] of o.job.steps.entries()) {
    const label = step.name ?? step.uses ?? `step ${i + 1}`;
    const always = step.if !== undefined && /always\(\)/.test(step.if);
    if ((failed && !always) || !condition(step.if, ctx)) {
      log.push({ job: o.name, step: label, kind: 'skipped', code: 0, stdout: '', stderr: '' });
      continue;
    }
    const env: Record<string, string | undefined> = {
      ...o.env,
      CI: 'true',
      GITHUB_ACTIONS: 'true',
      GITHUB_WORKSPACE: o.workspace,
      GITHUB_OUTPUT: outputs,
      GITHUB_RUN_ID: ctx.github.run_id,
      GITHUB_SHA: ctx.github.sha,
      GITHUB_REF_NAME: ctx.github.ref_name,
    };
    for (const [k, v] of Object.entries({ ...o.job.env, ...step.env })) env[k] = interpolate(String(v), ctx);
    const w = Object.fromEntries(Object.entries(step.with ?? {}).map(([k, v]) => [k, interpolate(String(v), ctx)]));
    let r: { code: number; stdout: string; stderr: string; command?: string };
    let kind: StepLog['kind'];
    let identity: string | undefined;
    if (step.uses?.startsWith('actions/checkout@')) {
      kind = 'checkout';
      const ref = w.ref || ctx.github.sha!;
      const clone = await execa('git', ['clone', '-q', o.origin, o.workspace], { reject: false });
      const co =
        clone.exitCode === 0
          ? await execa('git', ['-c', 'advice.detachedHead=false', 'checkout', '-q', ref], {
              cwd: o.workspace,
              reject: false,
            })
          : clone;
      r = {
        code: co.exitCode ?? -1,
        stdout: String(co.stdout),
        stderr: String(clone.stderr) + String(co.stderr),
        command: `git clone + checkout ${ref}`,
      };
    } else if (step.uses?.startsWith('actions/upload-artifact@')) {
      kind = 'upload';
      const from = path.resolve(o.workspace, w.path ?? '');
      const present = fs.existsSync(from) && fs.readdirSync(from).length > 0;
      if (present) fs.cpSync(from, path.join(o.artifacts, w.name!), { recursive: true });
      const missing = !present && w['if-no-files-found'] !== 'ignore';
      r = {
        code: missing ? 1 : 0,
        stdout: present ? `uploaded ${w.name}` : 'no files',
        stderr: missing ? `no files at ${w.path}` : '',
        command: `upload-artifact ${w.name}`,
      };
    } else if (step.uses === './') {
      kind = 'action';
      identity = w['ci-identity'] || undefined;
      const unknown = Object.keys(w).filter((k) => !['args', 'ci-identity', 'working-directory'].includes(k));
      if (unknown.length) throw new Error(`${label}: the action has no input ${unknown.join(', ')}`);
      const args = (w.args ?? '').split(/\s+/).filter(Boolean);
      const x = await execa('node', nodeArgs(CI_BIN, args), {
        cwd: path.resolve(o.workspace, w['working-directory'] || '.'),
        reject: false,
        extendEnv: false,
        stdin: 'ignore',
        env: { ...env, ...(w['ci-identity'] ? { TRELLIS_CI_IDENTITY: w['ci-identity'] } : {}) },
      });
      noteCliRun(CI_BIN, x);
      r = {
        code: x.exitCode ?? -1,
        stdout: String(x.stdout),
        stderr: String(x.stderr),
        command: `trellis-ci ${args.join(' ')}`,
      };
    } else if (step.run !== undefined) {
      kind = 'run';
      fs.writeFileSync(outputs, '');
      const script = path.join(path.dirname(o.workspace), `${path.basename(o.workspace)}.step-${i}.sh`);
      fs.writeFileSync(script, step.run);
      // GitHub's default shell on Linux runners.
      const x = await execa('bash', ['--noprofile', '--norc', '-eo', 'pipefail', script], {
        cwd: o.workspace,
        reject: false,
        extendEnv: false,
        env,
        stdin: 'ignore',
      });
      r = { code: x.exitCode ?? -1, stdout: String(x.stdout), stderr: String(x.stderr), command: step.run };
      if (step.id) {
        const out = Object.fromEntries(
          fs
            .readFileSync(outputs, 'utf8')
            .split('\n')
            .filter((l) => l.includes('='))
            .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
        );
        ctx.steps![step.id] = { outputs: out };
      }
    } else {
      throw new Error(`${label}: the local runner does not stand in for uses: ${step.uses}`);
    }
    log.push({
      job: o.name,
      step: label,
      kind,
      command: r.command,
      code: r.code,
      stdout: r.stdout,
      stderr: r.stderr,
      ...(identity ? { identity } : {}),
    });
    if (r.code !== 0) failed = true;
  }
  const jobOutputs = Object.fromEntries(Object.entries(o.job.outputs ?? {}).map(([k, v]) => [k, interpolate(v, ctx)]));
  return { outputs: jobOutputs, result: failed ? 'failure' : 'success', log };
}
