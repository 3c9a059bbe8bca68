/**
 * @trellis/core/store: the store (journal, lock, loading, output paths): the only code of the core that touches the
 * filesystem.
 */
export {
  Store,
  storeReader,
  findStore,
  writeFileAtomic,
  STORE_FILE,
  readBounded,
  READ_LIMITS,
  holdsStore,
} from './store.js';
export { writePoint, faultEnv, adoptFaultCount } from './fault-seam.js';
export { assertOutsideTrackedTree, checkOutDir, checkOutFile, makeOutDir, writeOutFile } from './out-path.js';
export { loadMesh } from './load-mesh.js';
