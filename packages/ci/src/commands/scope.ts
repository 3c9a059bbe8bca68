/**
 * `trellis-ci scope add NAME [--service S…]`: a region's scope file,
 * scaffolded and read back with the parser the store uses, for the pull
 * request that adds the region. It writes nothing else: the intermediate
 * comes from the offline ceremony after the merge.
 */
import type { CommandModule } from 'yargs';
import { SCOPE_NAME, TrellisError, parseScope, paths, quoteInput, toYaml } from '@trellis/core';
import { loadMesh } from '@trellis/core/store';
import { withHelp, withStore } from '@trellis/core/shell';

interface Args {
  store?: string;
  name?: string;
  service?: string[];
}

const add: CommandModule<object, Args> = {
  command: 'add <name>',
  describe: 'Scaffold scopes/<name>.yaml for a new region and validate it',
  builder: (y) =>
    y
      .positional('name', { type: 'string', describe: 'the region, [a-z0-9-]{1,63}' })
      .option('service', { type: 'string', array: true, describe: 'a service of the region (repeat for each)' })
      .example(
        '$0 scope add ap-south-1 --service api --service web',
        'then open a pull request with scopes/ap-south-1.yaml',
      ) as never,
  handler: (a) =>
    withStore(a.store, async (store) => {
      const mesh = loadMesh(store);
      const name = String(a.name);
      const file = paths.scopeFile(name);
      const services = (a.service ?? []).map(String);
      const twice = services.find((s, i) => services.indexOf(s) !== i);
      if (twice !== undefined)
        throw new TrellisError('usage', `--service ${quoteInput(twice)} is given twice`, {
          field: '--service',
          hint: 'name each service once',
        });
      if (SCOPE_NAME.test(name) && store.exists(file))
        throw new TrellisError('bad-scope', `already exists: scope ${name} is declared`, {
          file,
          hint: 'edit it in your pull request instead (add services under services:)',
        });
      const text = toYaml({ kind: 'region', services: Object.fromEntries(services.map((s) => [s, {}])) });
      // The store's own parser judges the name, the services and their DNS names, before anything exists on disk.
      const def = parseScope(text, name, mesh.config.trustDomain, file);
      if (mesh.retired.has(name) || store.exists(paths.ledger(name))) {
        throw new TrellisError(
          'bad-scope',
          `bundles/${name}/ holds the record of a scope of that name (retired or not yet cleaned up)`,
          { file: `bundles/${name}`, hint: 'a region name is never reused: pick another' },
        );
      }
      store.commit([{ path: file, content: text }]);
      process.stdout.write(
        `wrote ${file}: region ${def.name}, ` +
          `${def.services.length ? `services ${def.services.map((s) => s.name).join(', ')}` : 'no service yet'}\n`,
      );
      process.stdout.write(
        `next: open a pull request with it; CI's trellis-ci verify --format markdown comments what the ` +
          `ceremony will sign\n`,
      );
    }),
};

export const scope: CommandModule<object, Args> = {
  command: 'scope <command>',
  describe: 'Declare scopes (pull-request side)',
  builder: (y) =>
    y.command(withHelp('trellis-ci', add, 'scope')).demandCommand(1, 'name a scope command: add') as never,
  handler: () => undefined,
};
