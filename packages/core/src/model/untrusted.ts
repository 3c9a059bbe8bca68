/**
 * Untrusted text on its way to a terminal, a CI log or a custodian's prompt.
 * A name, a path or a reload command from a pull request may carry characters
 * that forge or hide lines where it is shown: controls (but tab and newline),
 * C1, bidi overrides and isolates, zero-width characters, the line and
 * paragraph separators, the BOM. Each is shown as its \u escape instead.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

export function escapeUnsafe(text: string): string {
  return text.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
