import { versionCommand } from '@trellis/core/shell';

/** trellis-root version: what this file was built as (informational; the signed manifest is the proof). */
export const version = versionCommand('trellis-root');
