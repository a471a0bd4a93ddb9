import { rmSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Settings } from '../config.js';
import { openStore, type OpenStoreOptions } from '../store/open-store.js';
import { SecretFields } from './fields.js';
import { resolveMasterKey } from './master-key.js';
import { resealSecrets } from './reseal.js';
import { sealStore, type SealedStore } from './sealed-store.js';

/**
 * Opens the store behind the encryption-at-rest layer, after bringing every stored secret under the current master key
 * (sealing plain ones from older databases). A key that cannot open what is stored stops the start with a MasterKeyError.
 */
export async function openSealedStore(
  settings: Pick<Settings, 'db' | 'masterKey'>,
  options: OpenStoreOptions,
  log: Logger,
): Promise<SealedStore & { /** A key file this start generated and nothing was sealed with yet: safe to remove if the start fails. */ unusedKeyFile: string | null }> {
  const master = resolveMasterKey(settings, log);
  const store = await openStore(settings.db, options);
  const fields = new SecretFields(master.box);
  let report: Awaited<ReturnType<typeof resealSecrets>>;
  try {
    report = await resealSecrets(store, fields);
    if (report.rewritten > 0) log.info({ rewritten: report.rewritten, masterKeyId: master.box.currentKeyId }, 'encrypted stored secrets under the current master key');
  } catch (error) {
    await store.close();
    // A key generated just now cannot be the one the data needs: do not leave it to be picked up next time.
    if (master.generated && master.from !== 'memory') rmSync(master.from, { force: true });
    throw error;
  }
  const unusedKeyFile = master.generated && master.from !== 'memory' && report.rewritten === 0 ? master.from : null;
  return Object.assign(sealStore(store, fields), { unusedKeyFile });
}
