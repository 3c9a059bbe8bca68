/** RFC 7512 URIs as trellis-root reads them: what names a token and a key, and what may not be in a URI it records. */
import { describe, expect, it } from 'vitest';
import { isTrellisError } from '@trellis/core';
import { parseTokenUri } from '../src/token.js';

const refusal = (uri: string): string => {
  try {
    parseTokenUri(uri);
  } catch (e) {
    if (isTrellisError(e)) return `${e.reason}: ${e.message}`;
    throw e;
  }
  throw new Error(`${uri} was accepted`);
};

describe('parseTokenUri', () => {
  it('reads token, object and id (percent-decoded, id as bytes) and the module path from the query', () => {
    expect(
      parseTokenUri('pkcs11:token=YubiKey%20PIV%20%2312;id=%02%ff;object=SIGN%20key?module-path=/usr/lib/libykcs11.so'),
    ).toEqual({
      token: 'YubiKey PIV #12',
      object: 'SIGN key',
      id: Buffer.from([0x02, 0xff]),
      modulePath: '/usr/lib/libykcs11.so',
    });
    expect(parseTokenUri('pkcs11:serial=0123abcd;object=root;type=private')).toEqual({
      serial: '0123abcd',
      object: 'root',
    });
  });

  it('refuses a PIN in the URI (it is recorded in the store), without echoing it', () => {
    for (const q of ['pin-value=40318276', 'pin-source=file:/tmp/pin40318276']) {
      const why = refusal(`pkcs11:token=t;object=root?${q}`);
      expect(why).toMatch(
        /^usage: --root-key: not a usable PKCS#11 URI: pin-(value|source) does not belong in the URI/,
      );
      expect(why).not.toContain('40318276');
    }
  });

  it('refuses what does not name one token and one key', () => {
    expect(refusal('pkcs:token=t;object=root')).toMatch(/it must start with pkcs11:/);
    expect(refusal('pkcs11:object=root')).toMatch(/name the token/);
    expect(refusal('pkcs11:token=t')).toMatch(/name the key/);
    expect(refusal('pkcs11:token=t;object=root;colour=red')).toMatch(/unknown path attribute colour/);
    expect(refusal('pkcs11:token=t;object=%zz')).toMatch(/malformed %-escape/);
  });
});
