/** The real keytool's listing of a PKCS#12 file, the password from the environment as an operator gives it. */
import { tool } from './cli.js';

export function keytoolList(file: string, password: string, extra: string[] = []) {
  return tool('env', [
    `TRELLIS_PKCS12_PASSWORD=${password}`,
    'keytool',
    '-list',
    ...extra,
    '-storetype',
    'PKCS12',
    '-keystore',
    file,
    '-storepass:env',
    'TRELLIS_PKCS12_PASSWORD',
  ]);
}
