/**
 * The unit of every plan: a file to write (or remove), in store-relative terms. Procedures return these; only the store
 * applies them.
 */
export interface FileWrite {
  path: string;
  /** null removes the file. */
  content: string | null;
  mode?: number;
}

/** Later writes to a path replace earlier ones; order of first appearance is kept. */
export function mergeWrites(...lists: FileWrite[][]): FileWrite[] {
  const byPath = new Map<string, FileWrite>();
  for (const w of lists.flat()) {
    byPath.delete(w.path);
    byPath.set(w.path, w);
  }
  return [...byPath.values()];
}
