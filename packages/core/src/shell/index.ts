/**
 * @trellis/core/shell: the shell every CLI shares (runMain, the clock, help, shared commands): the only code of the
 * core that reads process or the wall clock.
 */
export { ageFilesIn } from './retired-identity.js';
export { refuseRepeatedFlags } from './flags.js';
export { isSelfContainedBuild, versionCommand } from './build-info.js';
export {
  runMain,
  rawStderr,
  clock,
  checkNowFlag,
  NOW_AHEAD_OPTION,
  openStore,
  withStore,
  actor,
  onlineInterfaces,
  failAsUsage,
  versionAsCommand,
  withoutHelpCache,
  isMachineFailure,
  ioFailure,
  EXIT_CODES_HELP,
} from './shell.js';
export {
  ENVIRONMENT,
  COMMAND_ENVIRONMENT,
  commandEpilogue,
  environmentOf,
  exitCodesHelp,
  withHelp,
  type Cli,
  type EnvironmentVariable,
} from './help.js';
export { statusCommand, verifyCommand, verifyStore } from './inspect-commands.js';
export { checkCommand, writeMetricsFile } from './check-command.js';
