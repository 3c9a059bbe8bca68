/**
 * The fault seam as the release ships it: inert, reading no environment
 * variable. scripts/dist/build.mjs bundles this file in fault-seam.ts's place
 * (tests run the tsc build, which keeps the real seam).
 */
export type WritePointKind = 'fsync' | 'rename';

export function writePoint(_kind: WritePointKind): void {}

export function faultEnv(): Record<string, string> {
  return {};
}

export function adoptFaultCount(_childStderr: string): void {}
