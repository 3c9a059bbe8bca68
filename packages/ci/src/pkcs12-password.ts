/** The PKCS#12 store password, for `bundle --format pkcs12` and deploy entries that ask for `formats: [pkcs12]`. */
import { TrellisError } from '@trellis/core';
import { READ_LIMITS, readBounded } from '@trellis/core/store';

/** Where a JVM operator keeps a keystore password: never a flag's value (ps, shell history). */
export const PKCS12_PASSWORD_ENV = 'TRELLIS_PKCS12_PASSWORD';

/**
 * The store password, from `flag`'s file (its first line) or the environment; never from a flag's value, never
 * echoed. `needs` names what asked for it.
 */
export function pkcs12Password(file: string | undefined, flag: string, needs: string): string {
  let password: string | undefined;
  if (file) {
    try {
      password = readBounded(file, READ_LIMITS.small, { followLink: true }).split(/\r?\n/)[0];
    } catch (e) {
      throw new TrellisError('usage', `cannot read ${flag} ${file}: ${(e as Error).message}`, {
        field: flag,
        hint: 'a file holding the store password on one line',
      });
    }
  } else password = process.env[PKCS12_PASSWORD_ENV];
  if (!password) {
    throw new TrellisError(
      'usage',
      `${needs} needs a store password: ` +
        `${file ? `${flag} ${file} is empty` : `neither ${flag} nor ${PKCS12_PASSWORD_ENV} gives one`}`,
      {
        field: flag,
        hint: `${flag} FILE (one line), or export ${PKCS12_PASSWORD_ENV}; keep it away from the keystore`,
      },
    );
  }
  // Java 17 derives PKCS#12 MAC keys from printable ASCII only ("Password is not ASCII"): refuse what no JVM could
  // open.
  if (!/^[\x20-\x7e]+$/.test(password)) {
    throw new TrellisError(
      'usage',
      `the store password ${file ? `in ${flag} ${file}` : `in ${PKCS12_PASSWORD_ENV}`} has a character outside ` +
        `printable ASCII, which Java 17 cannot use for a PKCS#12 file`,
      { field: flag, hint: 'use printable ASCII (space to ~), e.g. openssl rand -base64 24' },
    );
  }
  return password;
}
