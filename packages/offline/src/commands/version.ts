import { versionCommand } from '@trellis/core';

/** trellis-root version: what this file was built as (informational; the signed manifest is the proof). */
export const version = versionCommand('trellis-root');
