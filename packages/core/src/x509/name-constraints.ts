/**
 * The NameConstraints extension (RFC 5280 §4.2.1.10), encoded by hand because
 * @peculiar/x509 has no class for it. Permitted subtrees of dNSName and URI
 * hosts and excluded iPAddress subtrees are produced; decode reads back
 * whatever a certificate carries.
 */
import 'reflect-metadata';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  GeneralName,
  GeneralSubtree,
  GeneralSubtrees,
  NameConstraints,
  id_ce_nameConstraints,
} from '@peculiar/asn1-x509';
import * as x509 from '@peculiar/x509';
import type { PermittedNames } from '../model/names.js';

export const NAME_CONSTRAINTS_OID = id_ce_nameConstraints;

export function encodeNameConstraints(p: PermittedNames): ArrayBuffer {
  const subtrees = [
    ...p.dns.map((d) => new GeneralSubtree({ base: new GeneralName({ dNSName: d }) })),
    ...p.uriHosts.map((h) => new GeneralSubtree({ base: new GeneralName({ uniformResourceIdentifier: h }) })),
  ];
  const excluded = p.excludedIps.map((cidr) => new GeneralSubtree({ base: new GeneralName({ iPAddress: cidr }) }));
  return AsnConvert.serialize(
    new NameConstraints({
      permittedSubtrees: new GeneralSubtrees(subtrees),
      ...(excluded.length ? { excludedSubtrees: new GeneralSubtrees(excluded) } : {}),
    }),
  );
}

/** Always critical: a verifier that cannot enforce the constraints must reject the chain. */
export function nameConstraintsExtension(p: PermittedNames): x509.Extension {
  return new x509.Extension(NAME_CONSTRAINTS_OID, true, encodeNameConstraints(p));
}

export interface DecodedNameConstraints extends PermittedNames {
  /** Anything else in permitted subtrees (IP, email, directory names...). */
  otherPermitted: number;
  /** Excluded subtrees other than iPAddress ones, which trellis never writes. */
  otherExcluded: number;
}

export function decodeNameConstraints(der: BufferSource): DecodedNameConstraints {
  const nc = AsnConvert.parse(der, NameConstraints);
  const out: DecodedNameConstraints = { dns: [], uriHosts: [], excludedIps: [], otherPermitted: 0, otherExcluded: 0 };
  for (const st of nc.permittedSubtrees ?? []) {
    if (st.base.dNSName !== undefined) out.dns.push(st.base.dNSName);
    else if (st.base.uniformResourceIdentifier !== undefined) out.uriHosts.push(st.base.uniformResourceIdentifier);
    else out.otherPermitted++;
  }
  for (const st of nc.excludedSubtrees ?? []) {
    if (st.base.iPAddress !== undefined) out.excludedIps.push(st.base.iPAddress);
    else out.otherExcluded++;
  }
  return out;
}
