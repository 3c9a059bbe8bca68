/** @trellis/drill: rehearsals on throwaway keys, and the handshake checklist the demo and the tests share. */
export { handshake, handshakeMatrix, renderMatrix, httpsStatus, type Party, type Outcome, type Cell } from './mtls.js';
export { probeAt, type ProbeResult } from './probe-at.js';
export { expectHandshake, renderPhase, type Host, type Role, type PhaseResult, type Check } from './checklist.js';
