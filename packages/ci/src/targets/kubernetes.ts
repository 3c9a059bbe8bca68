/**
 * The kubernetes target: a `kubernetes.io/tls` Secret (tls.crt = chain,
 * tls.key, ca.crt = trust bundle) when a leaf was minted, and a ConfigMap of
 * the trust material, which changes without a new leaf. Written as manifests;
 * applied with kubectl when the target names a context.
 */
import { execa } from 'execa';
import { stringify } from 'yaml';
import { TrellisError, childEnv, describeTarget, type DeployTarget, type Release } from '@trellis/core';

type K8sTarget = Extract<DeployTarget, { type: 'kubernetes' }>;

const b64 = (s: string) => Buffer.from(s).toString('base64');

export function manifests(t: K8sTarget, scope: string, service: string, release: Release): string {
  const labels = { 'app.kubernetes.io/managed-by': 'trellis', 'trellis/scope': scope, 'trellis/service': service };
  const docs: object[] = [];
  if (release['cert.pem'] && release['key.pem'] && release['chain.pem']) {
    docs.push({
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/tls',
      metadata: { name: t.name, namespace: t.namespace, labels },
      data: {
        'tls.crt': b64(release['chain.pem']),
        'tls.key': b64(release['key.pem']),
        'ca.crt': b64(release['trust.pem']!),
      },
    });
  }
  docs.push({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: `${t.name}-trust`, namespace: t.namespace, labels },
    data: {
      'ca.crt': release['trust.pem'],
      'trust.openssl.pem': release['trust.openssl.pem'],
      ...(release['crl.pem'] ? { 'crl.pem': release['crl.pem'] } : {}),
    },
  });
  return docs.map((d) => `---\n${stringify(d, { lineWidth: 0 })}`).join('');
}

export async function applyManifests(t: K8sTarget, file: string): Promise<string> {
  // `--flag=value`: a value is never read as another option; the environment carries no trellis identity.
  const r = await execa(
    'kubectl',
    [`--context=${t.context!}`, `--namespace=${t.namespace}`, 'apply', `--filename=${file}`],
    { reject: false, env: childEnv(process.env), extendEnv: false },
  );
  if (r.exitCode !== 0) {
    throw new TrellisError(
      'peer-failed',
      `${describeTarget(t)}: kubectl apply failed: ${String(r.stderr).trim().split('\n').at(-1)}`,
      { hint: `the manifests are in ${file}; check the context` },
    );
  }
  return String(r.stdout).trim();
}
