import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConfigError, loadSettings } from '../../src/config.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';

describe('--portal-frame-ancestors', () => {
  it('takes origins, wildcard subdomains and self, and refuses anything that would bend the CSP header', () => {
    const settings = loadSettings({ portalFrameAncestors: "https://app.example.com, https://*.example.org:8443,'self'" }, {});
    assert.deepEqual(settings.portalFrameAncestors, ['https://app.example.com', 'https://*.example.org:8443', "'self'"]);
    assert.deepEqual(loadSettings({}, {}).portalFrameAncestors, []);
    for (const bad of ['https://a.example.com; script-src *', '*', 'javascript:alert(1)', "'unsafe-inline'", 'https://a.example.com/path']) {
      assert.throws(
        () => loadSettings({}, { HOOKRELAY_PORTAL_FRAME_ANCESTORS: bad }),
        (error: unknown) => error instanceof ConfigError && error.problems.some((p) => p.startsWith('--portal-frame-ancestors (HOOKRELAY_PORTAL_FRAME_ANCESTORS)')),
        bad,
      );
    }
  });

  describe('when unset', () => {
    let relay: TestRelay;
    before(async () => {
      relay = await startRelay();
    });
    after(() => relay?.close());

    it('the portal cannot be framed at all, and neither can the dashboard', async () => {
      for (const path of ['/portal', '/ui']) {
        const response = await fetch(relay.url + path);
        assert.equal(response.status, 200);
        assert.match(response.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'(;|$)/, path);
      }
      // Only the built assets are served, by name: nothing else of the file system is reachable.
      assert.equal((await fetch(`${relay.url}/ui/assets/secrets.js`)).status, 404);
      assert.equal((await fetch(`${relay.url}/ui/assets/%2e%2e%2fserve.js`)).status, 404);
    });
  });
});
