/** What core's unit tests share. */
import { TrellisError } from '../src/model/errors.js';

/** The TrellisError `fn` throws; fails the test when it throws nothing or something else. */
export function failure(fn: () => unknown): TrellisError {
  try {
    fn();
  } catch (e) {
    if (e instanceof TrellisError) return e;
    throw e;
  }
  throw new Error('expected a TrellisError');
}
