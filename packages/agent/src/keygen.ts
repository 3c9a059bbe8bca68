/**
 * `trellis-agent keygen SERVICE`: a key born on the host for a `key: host`
 * service. The key is written 0600 into `<dir>/keys/` under the SHA-256 of
 * its public key (where the installer pairs a key-less release), named by a
 * link `<service>.key` (`<service>.next.key` with --rotate); only its CSR, and
 * for a rotation the proof by the current key, are printed.
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  TrellisError,
  certificateRequestPem,
  exportPrivateKeyPem,
  importSigningKey,
  keyProofStatement,
  nodeCryptoSeam,
  publicKeyDerOf,
  quoteInput,
  sha256Hex,
  type KeyAlgorithm,
} from '@trellis/core';

export interface KeygenOptions {
  service: string;
  dir: string;
  algorithm: KeyAlgorithm;
  /** A rotation: the next key beside the current one, with the proof the current key signs. */
  rotate?: { mesh: string; scope: string };
}

export interface KeygenResult {
  csr: string;
  proof?: string;
  /** The files written, for the operator: the CSR and proof to commit. */
  files: string[];
}

const SERVICE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export async function keygen(o: KeygenOptions): Promise<KeygenResult> {
  if (!SERVICE.test(o.service))
    throw new TrellisError('usage', `${quoteInput(o.service)} is not a service name`, {
      hint: 'give the service as its scope file names it',
    });
  const keys = path.join(o.dir, 'keys');
  fs.mkdirSync(keys, { recursive: true, mode: 0o700 });
  fs.chmodSync(keys, 0o700);
  const current = path.join(keys, `${o.service}.key`);
  const name = path.join(keys, `${o.service}${o.rotate ? '.next' : ''}.key`);
  let currentPem: string | undefined;
  if (o.rotate) {
    try {
      currentPem = fs.readFileSync(current, 'utf8');
    } catch {
      throw new TrellisError('usage', `no current key for ${o.service} to sign the rotation with`, {
        file: current,
        hint: `a first key is made without --rotate (and confirmed by a custodian)`,
      });
    }
  } else if (fs.existsSync(current))
    throw new TrellisError('usage', `${o.service} already has a key on this host`, {
      file: current,
      hint: 'a new key for a service that has one is a rotation: trellis-agent keygen --rotate',
    });
  const pair = await nodeCryptoSeam.generateKeyPair(o.algorithm);
  const pem = await exportPrivateKeyPem(pair.privateKey);
  const hash = sha256Hex(publicKeyDerOf(pem));
  const file = path.join(keys, `sha256-${hash}.pem`);
  // Exclusive and 0600 from the first byte: the key is never readable by others, never written through a link.
  fs.writeFileSync(file, pem, { mode: 0o600, flag: 'wx' });
  const link = `${name}.${process.pid}.tmp`;
  fs.symlinkSync(path.basename(file), link);
  fs.renameSync(link, name);
  const csr = await certificateRequestPem(pair, o.algorithm, o.service);
  const csrFile = path.join(keys, `${o.service}.csr.pem`);
  fs.writeFileSync(csrFile, csr, { mode: 0o644 });
  if (!o.rotate || !currentPem) return { csr, files: [csrFile] };
  const signer = await importSigningKey(currentPem);
  const statement = keyProofStatement(o.rotate.mesh, o.rotate.scope, o.service, `sha256:${hash}`);
  const proof = `${JSON.stringify(
    {
      currentKey: publicKeyDerOf(currentPem).toString('base64'),
      // The host key signs through the one seam, as every key trellis holds does.
      signature: Buffer.from(nodeCryptoSeam.signData(signer.key, signer.algorithm, Buffer.from(statement))).toString(
        'base64',
      ),
    },
    null,
    2,
  )}\n`;
  const proofFile = path.join(keys, `${o.service}.key-proof.json`);
  fs.writeFileSync(proofFile, proof, { mode: 0o644 });
  return { csr, proof, files: [csrFile, proofFile] };
}
