/**
 * Names of the mesh in the PKI's own words: a scope's SPIFFE trust domain, a
 * service's SPIFFE ID and DNS name, and the one test of "inside the scope's
 * name constraints" that minting and verification both use.
 */

export const GLOBAL_SCOPE = 'global';
export const SCOPE_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** @alias A service name is a DNS label, checked like a scope name. */
export const SERVICE_NAME = SCOPE_NAME;
/** `bundles/root/` is the root CA's: a scope of that name would write its intermediate over the root's state. */
export const RESERVED_SCOPE_NAMES: readonly string[] = ['root'];
/** The fleet probe's client name (rotation/fleet-gate.ts): reserved, so no declared service claims its SPIFFE ID. */
export const PROBE_SERVICE = 'trellis-probe';
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** `us-east-1` in a mesh whose trust domain is `mesh.example` → `us-east-1.mesh.example`. */
export function scopeDomain(scope: string, trustDomain: string): string {
  return `${scope}.${trustDomain}`;
}

export function serviceSpiffeId(scope: string, service: string, trustDomain: string): string {
  return `spiffe://${scopeDomain(scope, trustDomain)}/${service}`;
}

export function serviceDnsName(scope: string, service: string, trustDomain: string): string {
  return `${service}.${scopeDomain(scope, trustDomain)}`;
}

/** A lower-case DNS name of labels; `*.` is allowed as the whole first label. */
export function isDnsName(name: string): boolean {
  if (name.length > 253) return false;
  const labels = name.split('.');
  if (labels.length < 2) return false;
  return labels.every((l, i) => (i === 0 && l === '*') || DNS_LABEL.test(l));
}

const IPV4ISH = /^[0-9.]+$/;

/**
 * Why `name` may not be an extra DNS SAN of a leaf in the scope whose trust
 * domain is `domain`, or undefined when it may. Wildcards and IP addresses are
 * refused outright (see docs/input-limits.md): a wildcard key answers for every
 * service the scope will ever have, and IP SANs are excluded by every
 * intermediate's name constraints.
 */
export function dnsSanRefusal(name: string, domain: string): { detail: string; hint: string } | undefined {
  if (IPV4ISH.test(name) || name.includes(':')) {
    return {
      detail: 'is an IP address: trellis certifies DNS names and SPIFFE IDs only',
      hint:
        `give the service a DNS name under ${domain}; intermediates exclude every IP address ` +
        `(docs/input-limits.md)`,
    };
  }
  if (name.startsWith('*.')) {
    return {
      detail: 'is a wildcard: trellis certifies one service per leaf',
      hint: `list each name under ${domain} that the service answers to`,
    };
  }
  if (!isDnsName(name))
    return {
      detail: 'is not a lower-case DNS name',
      hint: 'write labels of a-z, 0-9 and dashes, separated by dots, at most 253 characters',
    };
  if (!dnsWithin(name, domain))
    return {
      detail: "is outside the scope's name constraints",
      hint: `the intermediate of this scope may only certify names under ${domain}`,
    };
  return undefined;
}

/** RFC 5280 dNSName subtree match: the name is the constraint or lies beneath it. */
export function dnsWithin(name: string, subtree: string): boolean {
  const n = name.toLowerCase();
  const c = subtree.toLowerCase().replace(/^\./, '');
  return n === c || n.endsWith(`.${c}`);
}

/** RFC 5280 URI constraint: a bare host matches exactly that host. */
export function uriHostWithin(uri: string, host: string): boolean {
  let parsed: URL;
  try {
    parsed = new URL(uri);
  } catch {
    return false;
  }
  return parsed.hostname.toLowerCase() === host.toLowerCase();
}

export interface PermittedNames {
  dns: string[];
  uriHosts: string[];
  /**
   * Excluded iPAddress subtrees (CIDR). Permitted DNS and URI subtrees say
   * nothing about IP SANs, so without these a stolen intermediate key could
   * certify any IP address.
   */
  excludedIps: string[];
}

/** Every IPv4 and every IPv6 address. */
export const ALL_IPS = ['0.0.0.0/0', '::/0'];

/** What the intermediate of `scope` may certify: exactly its own trust domain, and no IP address. */
export function permittedNamesFor(scope: string, trustDomain: string): PermittedNames {
  const domain = scopeDomain(scope, trustDomain);
  return { dns: [domain], uriHosts: [domain], excludedIps: [...ALL_IPS] };
}

/** The SANs that fall outside `permitted`; empty when every name is inside. */
export function namesOutside(sans: { dns: string[]; uris: string[] }, permitted: PermittedNames): string[] {
  const badDns = sans.dns.filter((d) => !permitted.dns.some((p) => dnsWithin(d, p)));
  const badUri = sans.uris.filter((u) => !permitted.uriHosts.some((h) => uriHostWithin(u, h)));
  return [...badDns.map((d) => `DNS:${d}`), ...badUri.map((u) => `URI:${u}`)];
}
