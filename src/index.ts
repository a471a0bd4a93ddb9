/**
 * hookrelay as a library: start a gateway inside your own process (tests, an embedded deployment), with the same
 * settings as `hookrelay serve`. Everything else in the package is internal and may change without notice.
 *
 * @example
 * ```ts
 * import { createLogger, loadSettings, startHookrelay } from 'hookrelay';
 *
 * const settings = loadSettings({ port: '0', db: './relay.db' }, process.env);
 * const relay = await startHookrelay(settings, createLogger(settings.logLevel));
 * console.log(relay.url, relay.adminToken); // talk to it with the svix SDK
 * await relay.close();
 * ```
 */
export { ConfigError, loadSettings, type RawSettings, type Settings } from './config.js';
export { createLogger } from './log.js';
export { startHookrelay, type Hookrelay } from './server.js';
export { VERSION } from './version.js';
