/**
 * What each command's help ends with: the environment variables that command
 * reads and its exit codes, generated from one table so help cannot name a
 * variable the command ignores or leave out one it reads.
 */
import { own } from '../model/data.js';
import { EXIT_CODES_HELP } from './shell.js';

/** Every variable a command's help may name, with what it is for. */
export const ENVIRONMENT = {
  TRELLIS_STORE: 'the store directory when --store is not given',
  TRELLIS_ALLOW_ONLINE: '=1 as --allow-online',
  TRELLIS_ROOT_IDENTITY_FILE: 'file holding the offline identity (or TRELLIS_ROOT_IDENTITY, the identity itself)',
  TRELLIS_ROOT_IDENTITY_SHARES: 'FILE,FILE: recombine the offline identity from K of its shares, as --shares-from',
  TRELLIS_PKCS11_MODULE: 'PKCS#11 module of a token root, as --pkcs11-module',
  TRELLIS_PKCS11_PIN: 'the token PIN (or --pin-file); never printed',
  TRELLIS_CI_IDENTITY_FILE:
    'file holding the CI identity (or TRELLIS_CI_IDENTITY); TRELLIS_CI_IDENTITY_<SCOPE> per scope in a sharded ' +
    'workflow (docs/sharding.md)',
  TRELLIS_BREAKGLASS_IDENTITY_FILE: 'file holding the break-glass identity (or TRELLIS_BREAKGLASS_IDENTITY)',
  TRELLIS_AGENT_IDENTITY_FILE: "file holding this host's identity (or TRELLIS_AGENT_IDENTITY)",
  TRELLIS_TIMINGS: '=1 prints per-phase timings (one JSON line) on stderr',
  TRELLIS_PKCS12_PASSWORD: 'the PKCS#12 store password when no password file is given; never printed (docs/jvm.md)',
} as const;

export type EnvironmentVariable = keyof typeof ENVIRONMENT;
export type Cli = 'trellis-root' | 'trellis-ci' | 'trellis-agent';

const STORE: EnvironmentVariable[] = ['TRELLIS_STORE'];
const ROOT: EnvironmentVariable[] = ['TRELLIS_STORE', 'TRELLIS_ALLOW_ONLINE'];
const TOKEN: EnvironmentVariable[] = ['TRELLIS_PKCS11_MODULE', 'TRELLIS_PKCS11_PIN'];
/** What a command that opens the root key reads: the identity or its shares, or a token and its PIN. */
const ROOT_KEY: EnvironmentVariable[] = [
  ...ROOT,
  'TRELLIS_ROOT_IDENTITY_FILE',
  'TRELLIS_ROOT_IDENTITY_SHARES',
  ...TOKEN,
];
const CI_KEY: EnvironmentVariable[] = ['TRELLIS_STORE', 'TRELLIS_CI_IDENTITY_FILE'];

/** Command (subcommands as "scope add") → the variables it reads; `version` reads none. */
export const COMMAND_ENVIRONMENT: Record<Cli, Record<string, readonly EnvironmentVariable[]>> = {
  'trellis-root': {
    init: [...ROOT, ...TOKEN],
    intermediate: ROOT_KEY,
    rotate: ROOT_KEY,
    recover: ROOT_KEY,
    retire: ROOT_KEY,
    crl: ROOT_KEY,
    confirm: ROOT_KEY,
    rekey: ROOT_KEY,
    status: ROOT,
    verify: ROOT_KEY,
    check: ROOT,
    version: [],
  },
  'trellis-ci': {
    renew: [...CI_KEY, 'TRELLIS_TIMINGS'],
    plan: STORE,
    revoke: CI_KEY,
    deploy: [...CI_KEY, 'TRELLIS_PKCS12_PASSWORD'],
    bundle: [...STORE, 'TRELLIS_PKCS12_PASSWORD'],
    scope: STORE,
    'scope add': STORE,
    status: STORE,
    verify: [...CI_KEY, 'TRELLIS_BREAKGLASS_IDENTITY_FILE'],
    check: STORE,
    explain: STORE,
    report: STORE,
    version: [],
    compose: CI_KEY,
    rekey: CI_KEY,
    'activate-standby': [...STORE, 'TRELLIS_BREAKGLASS_IDENTITY_FILE'],
    // certify opens intermediate keys; handshake refuses any identity (it connects out).
    probe: CI_KEY,
  },
  'trellis-agent': {
    install: ['TRELLIS_AGENT_IDENTITY_FILE'],
    keygen: [],
    version: [],
  },
};

/** What every command of a CLI refuses before it starts: read by all, so said once per command. */
const POSTURE: Record<Cli, string> = {
  'trellis-root':
    'every command refuses to run when CI, TRELLIS_CI_IDENTITY(_FILE) or TRELLIS_BREAKGLASS_IDENTITY(_FILE) is set',
  'trellis-ci': 'every command refuses to run when TRELLIS_ROOT_IDENTITY(_FILE) is set',
  'trellis-agent':
    'every command refuses to run when a root, CI or break-glass identity (TRELLIS_*_IDENTITY(_FILE)) is set',
};

const AGENT_EXIT_CODES =
  'exit codes: 0 installed or unchanged; 1 the installer refused the release or the reload failed (rolled ' +
  'back); 2 usage, or a malformed bundle or host state; 3 custody or trust refused: another identity, a signer ' +
  'outside the pinned roots, revoked, expired or not yet valid, a release or root CRL dated beyond ' +
  '--clock-skew, a replay, an older root CRL than this host has seen, a root CRL lapsed beyond --crl-grace';

/** `check` answers a monitoring system, in the Nagios plugin codes, in both CLIs. */
const CHECK_EXIT_CODES =
  'exit codes of check (the Nagios plugin codes, this command only): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN ' +
  '(store missing, unreadable or locked, a bad threshold, the metrics file not written); see docs/alerting.md';

/** The exit codes a command's help names. */
export function exitCodesHelp(cli: Cli, command: string): string {
  if (command === 'check') return CHECK_EXIT_CODES;
  return cli === 'trellis-agent' ? AGENT_EXIT_CODES : `${EXIT_CODES_HELP}; every reason: docs/errors.md`;
}

/** The variables `command` of `cli` reads, from the table; a command missing from it is a programming error. */
export function environmentOf(cli: Cli, command: string): readonly EnvironmentVariable[] {
  const table = COMMAND_ENVIRONMENT[cli];
  const vars = own(table, command);
  if (!vars) throw new Error(`${cli} ${command} is missing from COMMAND_ENVIRONMENT`);
  return vars;
}

/** The end of one command's help: its environment, the posture refusals, its exit codes. */
export function commandEpilogue(cli: Cli, command: string): string {
  const env = environmentOf(cli, command);
  const lines = env.length
    ? ['environment:', ...env.map((v) => `  ${v}  ${ENVIRONMENT[v]}`)]
    : ['environment: none read'];
  return [...lines, `  (${POSTURE[cli]})`, '', exitCodesHelp(cli, command)].join('\n');
}

/** The part of a yargs command module this needs: core does not depend on yargs. */
interface HelpBuilder {
  epilogue(text: string): unknown;
}
interface CommandLike {
  command?: string | readonly string[];
  // biome-ignore lint/suspicious/noExplicitAny: yargs' builder is generic over the argv it builds.
  builder?: ((y: any) => unknown) | Record<string, unknown>;
}

/**
 * `module` with its help ending in the table's environment and exit codes;
 * `parent` names the command a subcommand belongs to ("scope" for "scope add").
 */
export function withHelp<T extends CommandLike>(cli: Cli, module: T, parent?: string): T {
  const name = String([module.command].flat()[0]).split(' ')[0]!;
  const epilogue = commandEpilogue(cli, parent ? `${parent} ${name}` : name);
  const inner = module.builder;
  return {
    ...module,
    builder: (y: HelpBuilder & { options(o: Record<string, unknown>): HelpBuilder }) => {
      const built = (typeof inner === 'function' ? inner(y) : inner ? y.options(inner) : y) ?? y;
      return (built as HelpBuilder).epilogue(epilogue);
    },
  };
}
