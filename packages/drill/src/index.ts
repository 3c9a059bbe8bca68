/** @trellis/drill: rehearsals on throwaway keys, and the handshake checklist the demo and the tests share. */
export { renderMatrix, httpsStatus, type Party, type Cell } from './mtls.js';
export { probeAt } from './probe-at.js';
export { expectHandshake, type Host, type Role } from './checklist.js';
