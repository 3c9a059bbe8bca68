/**
 * Stands in for `escalade/sync` in the bundles (scripts/dist/build.mjs). yargs walks up from the working directory at
 * every start, listing each directory and reading the first package.json it meets, only to guess a version the CLIs
 * never print: a read of the user's tree with no bound (a package.json that is a FIFO never ended). Finding nothing,
 * yargs keeps `{}`.
 */
export default function findUp(): undefined {
  return undefined;
}
