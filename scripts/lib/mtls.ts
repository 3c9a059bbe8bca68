/** Moved to @trellis/drill (packages/drill/src/mtls.ts); kept so scripts and tests import it where they always did. */
export { handshake, handshakeMatrix, httpsStatus, type Party } from '../../packages/drill/src/mtls.js';
