/** The real JVM tools: keytool's listing of a PKCS#12 file, and the flags every JVM the tests start is given. */
import { tool } from './cli.js';

/**
 * Flags for a JVM that runs for a second or less: the C1 compiler only and the serial collector. The same JVM and class
 * library, about half the CPU of a default start, which spins up C2 and parallel GC threads (docs/decisions.md).
 */
const SHORT_RUN = ['-XX:TieredStopAtLevel=1', '-XX:+UseSerialGC'];

/** `tool`'s arguments with the short-run flags first: `java` takes them as they are, keytool and javac as -J flags. */
export function jvmArgs(tool: 'java' | 'keytool' | 'javac', args: string[]): string[] {
  return [...(tool === 'java' ? SHORT_RUN : SHORT_RUN.map((f) => `-J${f}`)), ...args];
}

/** keytool's listing of a PKCS#12 file, the password from the environment as an operator gives it. */
export function keytoolList(file: string, password: string, extra: string[] = []) {
  return tool('env', [
    `TRELLIS_PKCS12_PASSWORD=${password}`,
    'keytool',
    ...jvmArgs('keytool', ['-list', ...extra, '-storetype', 'PKCS12', '-keystore', file]),
    '-storepass:env',
    'TRELLIS_PKCS12_PASSWORD',
  ]);
}
