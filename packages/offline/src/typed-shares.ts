/**
 * Shares given on stdin (`--shares-stdin`): typed or pasted at the terminal
 * with echo off, one custodian after another, or piped as blocks. Whatever is
 * read stays in this process's memory; nothing of it is printed back.
 */
import fs from 'node:fs';
import readline from 'node:readline';
import { Writable } from 'node:stream';
import { SHARE_MAGIC, TrellisError, isTrellisError, parseShare, type IdentityShare } from '@trellis/core';

export interface GivenShare {
  share: IdentityShare;
  source: string;
}

const ATTEMPTS = 3;

/** Reads shares from stdin: at a terminal until K distinct shares are in, else every block of the piped text. */
export async function sharesFromStdin(alsoGiven: GivenShare[]): Promise<GivenShare[]> {
  return process.stdin.isTTY ? typedShares(alsoGiven) : pipedShares(fs.readFileSync(0, 'utf8'));
}

/** Piped text: share blocks separated by blank lines, as init and rekey print them. */
function pipedShares(text: string): GivenShare[] {
  const blocks = text.split(/\n\s*\n/).filter((b) => b.includes(SHARE_MAGIC));
  if (!blocks.length)
    throw new TrellisError('bad-identity', 'stdin holds no trellis identity share', {
      file: 'stdin',
      hint: `pipe the share blocks (each starts with "${SHARE_MAGIC}") or type them at a terminal`,
    });
  return blocks.map((b, i) => ({
    share: parseShare(b, `stdin (share block ${i + 1})`),
    source: `stdin (share block ${i + 1})`,
  }));
}

/**
 * At a terminal: prompts on stderr, reads each share with echo off, re-asks a damaged one, stops at K distinct shares.
 */
async function typedShares(alsoGiven: GivenShare[]): Promise<GivenShare[]> {
  const muted = new Writable({ write: (_chunk, _enc, done) => done() }); // readline echoes into this, not the terminal
  const rl = readline.createInterface({ input: process.stdin, output: muted, terminal: true, historySize: 0 });
  const lines: string[] = [];
  let wake: (() => void) | undefined;
  let interrupted = false;
  rl.on('line', (l) => {
    lines.push(l);
    wake?.();
  });
  rl.on('SIGINT', () => {
    interrupted = true;
    wake?.();
  });
  rl.on('close', () => {
    interrupted = true;
    wake?.();
  });
  const nextLine = async (): Promise<string> => {
    while (!lines.length && !interrupted)
      await new Promise<void>((r) => {
        wake = r;
      });
    if (interrupted && !lines.length)
      throw new TrellisError('usage', 'stopped while reading identity shares; nothing was opened', {
        hint: 'rerun when every custodian is present',
      });
    return lines.shift()!;
  };
  const got: GivenShare[] = [...alsoGiven];
  const distinct = () => new Set(got.map((g) => g.share.index)).size;
  const needed = () => got[0]?.share.k;
  try {
    for (let custodian = 1; needed() === undefined || distinct() < needed()!; custodian++) {
      const source = `share typed at the terminal (${custodian})`;
      for (let attempt = 1; ; attempt++) {
        process.stderr.write(`${source}: type or paste it (it is not shown); it ends at its "check:" line\n`);
        const block: string[] = [];
        for (;;) {
          const l = await nextLine();
          if (!block.length && !l.trim()) continue;
          block.push(l);
          if (/^\s*check:/.test(l)) break;
        }
        try {
          const share = parseShare(block.join('\n'), source);
          got.push({ share, source });
          process.stderr.write(`share ${share.index} of ${share.n} read (${distinct()} of the ${share.k} needed)\n`);
          break;
        } catch (e) {
          if (!isTrellisError(e) || attempt === ATTEMPTS) throw e;
          process.stderr.write(`${e.message}\ntry again (${ATTEMPTS - attempt} attempt(s) left)\n`);
        }
      }
    }
  } finally {
    rl.close();
  }
  return got.slice(alsoGiven.length);
}
