/** @trellis/agent: installing releases on hosts (the installer every target shares) and opening sealed bundles. */
export { installerScript, installLocally, installOutcome, type InstallOutcome } from './install.js';
