import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { collectErrors, launchBrowser, screenshot, skipWithoutChromium, type TestBrowser } from '../helpers/browser.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * The customer portal in a real Chromium against a real hookrelay: what a customer opening the `url` of
 * app-portal-access sees and can do, that it reaches its own application only, that attacker-controlled payloads stay
 * text, and that it works inside an iframe of an allowed origin (and of no other).
 */
// page.evaluate callbacks run in the browser; the test's own compilation has no DOM library.
declare const document: any, window: any, sessionStorage: any, getComputedStyle: any;
type HTMLInputElement = any;

const XSS = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">';
const RECEIVER_ANSWER = 'thanks from A <b>bold?</b>';

/** Console errors other than the network errors of the API's own 4xx answers, which some tests provoke. */
const realErrors = (errors: string[]) => errors.filter((e) => !e.includes('Failed to load resource'));

describe('customer portal in Chromium', { skip: skipWithoutChromium() }, () => {
  let relay: TestRelay;
  let receiver: Receiver;
  let browser: TestBrowser;
  let framer: Server;
  let framerPort = 0;
  const a = { app: '', endpoint: '', msg: '' };
  const b = { app: '', endpoint: '', msg: '' };

  before(async () => {
    // The page that embeds the portal: served on its own port, so it is another origin than hookrelay's.
    let portalUrl = '';
    framer = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      response.end(`<!doctype html><title>Customer product</title><h1>Our product</h1><iframe title="Webhooks" src="${portalUrl}" width="900" height="700"></iframe>`);
    });
    await new Promise<void>((resolve) => framer.listen(0, '127.0.0.1', resolve));
    framerPort = (framer.address() as AddressInfo).port;
    relay = await startRelay({ portalFrameAncestors: `http://localhost:${framerPort}` });
    receiver = await startReceiver(() => ({ status: 200, body: RECEIVER_ANSWER }));
    browser = await launchBrowser();

    await relay.svix1.eventType.create({ name: 'invoice.paid', description: 'An invoice was paid' });
    await relay.svix1.eventType.create({ name: 'invoice.failed', description: 'A payment failed' });
    a.app = (await relay.svix1.application.create({ name: 'Acme', metadata: { 'portal.color': '#7a1fa2' } })).id;
    a.endpoint = (await relay.svix1.endpoint.create(a.app, { url: `${receiver.url}/acme`, description: 'Acme production' })).id;
    a.msg = (await relay.svix1.message.create(a.app, { eventType: 'invoice.paid', payload: { note: XSS, amount: 42 }, channels: ['eu'] })).id;
    b.app = (await relay.svix1.application.create({ name: 'Bravo' })).id;
    b.endpoint = (await relay.svix1.endpoint.create(b.app, { url: `${receiver.url}/bravo`, description: 'Bravo secret endpoint' })).id;
    b.msg = (await relay.svix1.message.create(b.app, { eventType: 'invoice.paid', payload: { secret: 'bravo-only' } })).id;
    await receiver.waitFor(2);
    portalUrl = (await relay.svix1.authentication.appPortalAccess(a.app, {})).url;
  });

  after(async () => {
    await browser?.close();
    await relay?.close();
    await receiver?.close();
    await new Promise((resolve) => framer?.close(resolve));
  });

  const openPortal = async (context: BrowserContext, body: object = {}): Promise<{ page: Page; errors: string[] }> => {
    const { url } = await relay.svix1.authentication.appPortalAccess(a.app, body);
    const page = await context.newPage();
    const errors = collectErrors(page);
    page.on('dialog', (dialog) => void dialog.accept());
    await page.goto(url);
    await page.getByRole('heading', { name: 'Acme — webhooks' }).waitFor();
    return { page, errors };
  };

  it('serves the portal with a strict Content-Security-Policy and no inline script', async () => {
    const response = await fetch(`${relay.url}/portal`);
    assert.equal(response.status, 200);
    const csp = response.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.match(csp, new RegExp(`frame-ancestors http://localhost:${framerPort}`));
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
    const html = await response.text();
    assert.deepEqual([...html.matchAll(/<script[^>]*>([\s\S]*?)<\/script>/g)].map((m) => m[1].trim()), [''], 'an inline script');
  });

  it('lists the app’s endpoints, creates one with the keyboard, reveals and rotates its secret', async () => {
    const context = await browser.browser.newContext({ viewport: { width: 1200, height: 900 } });
    const { page, errors } = await openPortal(context);
    assert.ok(!page.url().includes('token='), `the token stayed in the address bar: ${page.url()}`);
    const accent = await page.evaluate(() => getComputedStyle(document.documentElement).getPropertyValue('--accent').trim());
    assert.equal(accent, '#7a1fa2', 'the app’s portal.color theme was not applied');
    await page.getByRole('link', { name: `${receiver.url}/acme` }).waitFor();
    assert.equal(await page.getByText('/bravo').count(), 0, 'B’s endpoint is shown');
    await screenshot(page, 'portal-endpoints');

    await page.getByRole('button', { name: 'Add endpoint' }).click();
    // A new view moves the focus to its heading (for screen readers) once rendered: start typing after that.
    await page.waitForFunction(() => document.activeElement?.id === 'main-heading');
    const urlField = page.getByLabel('Endpoint URL');
    await urlField.focus();
    await page.keyboard.type(`${receiver.url}/new`);
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'endpoint-description', 'Tab does not reach the description');
    await page.keyboard.type('Made in the browser');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => (document.activeElement as HTMLInputElement | null)?.value), 'invoice.paid');
    await page.keyboard.press('Space');
    await page.getByLabel('Channels (comma-separated, optional)').fill('eu, us');
    await assertEveryFieldLabelled(page);
    await screenshot(page, 'portal-endpoint-form');
    await page.getByLabel('Channels (comma-separated, optional)').press('Enter');
    await page.getByRole('heading', { name: `${receiver.url}/new` }).waitFor();

    const created = (await relay.svix1.endpoint.list(a.app)).data.find((e) => e.url === `${receiver.url}/new`);
    assert.ok(created, 'the endpoint was not created');
    assert.deepEqual(created.filterTypes, ['invoice.paid']);
    assert.deepEqual(created.channels, ['eu', 'us']);
    assert.equal(created.description, 'Made in the browser');

    await page.getByRole('button', { name: 'Reveal' }).click();
    const secretText = page.getByLabel('Signing secret');
    await page.waitForFunction(() => document.querySelector('[aria-label="Signing secret"]')?.textContent?.startsWith('whsec_'));
    assert.equal(await secretText.textContent(), (await relay.svix1.endpoint.getSecret(a.app, created.id)).key);
    const before = await secretText.textContent();
    await page.getByRole('button', { name: 'Rotate secret' }).click();
    await page.getByRole('status').filter({ hasText: 'The secret was rotated.' }).waitFor();
    const after = (await relay.svix1.endpoint.getSecret(a.app, created.id)).key;
    assert.notEqual(after, before);
    await page.waitForFunction((key) => document.querySelector('[aria-label="Signing secret"]')?.textContent === key, after);
    await screenshot(page, 'portal-endpoint-detail');

    // "Send a test event": the event type's example goes to this endpoint alone.
    const received = receiver.received.length;
    await page.getByLabel('Event type').selectOption('invoice.paid');
    await page.getByRole('button', { name: 'Send test event' }).click();
    await page.getByRole('status').filter({ hasText: 'test invoice.paid event' }).waitFor();
    const arrived = await receiver.waitFor(received + 1);
    assert.ok(arrived.at(-1)!.path.endsWith('/new'), arrived.at(-1)!.path);
    assert.equal(arrived.length, received + 1, 'the test event went to another endpoint too');

    await page.getByRole('button', { name: 'Disable' }).click();
    await page.getByRole('button', { name: 'Enable' }).waitFor();
    assert.equal((await relay.svix1.endpoint.get(a.app, created.id)).disabled, true);
    await page.getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('heading', { name: 'Endpoints' }).waitFor();
    assert.equal((await relay.svix1.endpoint.list(a.app)).data.some((e) => e.id === created.id), false);
    assert.deepEqual(realErrors(errors), []);
    await context.close();
  });

  it('shows a <script> payload as text, the attempt with the receiver’s answer, and resends', async () => {
    const context = await browser.browser.newContext({ viewport: { width: 1200, height: 900 } });
    const { page, errors } = await openPortal(context);
    await page.getByRole('button', { name: 'Messages' }).click();
    await page.getByRole('row', { name: new RegExp(a.msg) }).getByRole('link', { name: 'invoice.paid' }).click();
    const payload = page.getByTestId('payload');
    await payload.waitFor();
    const shown = (await payload.textContent())!;
    assert.ok(shown.includes('<script>window.__pwned = 1</script><img src=x onerror='), `the payload is not shown as its text: ${shown}`);
    assert.equal(shown, JSON.stringify({ note: XSS, amount: 42 }), 'the payload is not the text the API returned');
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined, 'the payload ran');
    assert.equal(await page.locator('main img, main script').count(), 0, 'the payload became elements');
    await screenshot(page, 'portal-message');

    await page.getByRole('link', { name: /200 success/ }).first().click();
    const response = page.getByTestId('response');
    await response.waitFor();
    assert.equal(await response.textContent(), RECEIVER_ANSWER);
    assert.equal(await page.locator('main b').count(), 0, 'the receiver’s answer became HTML');
    await screenshot(page, 'portal-attempt');

    await page.getByRole('link', { name: '← Message' }).click();
    const sent = receiver.received.length;
    await page.getByRole('button', { name: 'Resend' }).first().click();
    await page.getByRole('status').filter({ hasText: 'will be sent to' }).waitFor();
    await receiver.waitFor(sent + 1);
    assert.ok(receiver.received.at(-1)!.path.endsWith('/acme'), receiver.received.at(-1)!.path);
    assert.deepEqual(realErrors(errors), []);
    await context.close();
  });

  it('cannot see or touch app B, in the UI or through the API with its token', async () => {
    const context = await browser.browser.newContext();
    const { page } = await openPortal(context);
    await page.getByRole('button', { name: 'Messages' }).click();
    await page.getByLabel('Message id or event id').fill(b.msg);
    await page.getByRole('button', { name: 'Open' }).click();
    await page.getByRole('alert').filter({ hasText: 'not found' }).waitFor();
    assert.equal(await page.getByText('bravo-only').count(), 0);
    await screenshot(page, 'portal-other-app-refused');

    const answers = await page.evaluate(async (ids) => {
      const token = sessionStorage.getItem('hookrelay.portal.token');
      const call = async (method: string, path: string) =>
        (await fetch(path, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: method === 'GET' ? undefined : '{}' })).status;
      return {
        app: await call('GET', `/api/v1/app/${ids.app}`),
        endpoints: await call('GET', `/api/v1/app/${ids.app}/endpoint`),
        message: await call('GET', `/api/v1/app/${ids.app}/msg/${ids.msg}`),
        deleteEndpoint: await call('DELETE', `/api/v1/app/${ids.app}/endpoint/${ids.endpoint}`),
        rotate: await call('POST', `/api/v1/app/${ids.app}/endpoint/${ids.endpoint}/secret/rotate`),
      };
    }, b);
    assert.deepEqual(answers, { app: 404, endpoints: 404, message: 404, deleteEndpoint: 404, rotate: 404 });
    assert.equal((await relay.svix1.endpoint.list(b.app)).data.length, 1);
    await context.close();
  });

  it('a read-only link shows no buttons that would change anything; signing out revokes it', async () => {
    const context = await browser.browser.newContext();
    const { page } = await openPortal(context, { readOnly: true });
    await page.getByRole('link', { name: `${receiver.url}/acme` }).click();
    await page.getByRole('heading', { name: `${receiver.url}/acme` }).waitFor();
    for (const name of ['Add endpoint', 'Edit', 'Disable', 'Delete', 'Reveal', 'Rotate secret', 'Recover']) {
      assert.equal(await page.getByRole('button', { name, exact: true }).count(), 0, `${name} shown to a read-only link`);
    }
    await screenshot(page, 'portal-read-only');

    const token = await page.evaluate(() => sessionStorage.getItem('hookrelay.portal.token'));
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByText('You are signed out.').waitFor();
    assert.equal((await relay.api('GET', `/api/v1/app/${a.app}/endpoint`, undefined, { token })).status, 401, 'signing out did not revoke the token');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('hookrelay.portal.token')), null);
    await context.close();
  });

  it('works inside an iframe of an allowed origin, and is refused to any other', async () => {
    const context = await browser.browser.newContext({ viewport: { width: 1000, height: 900 } });
    const page = await context.newPage();
    await page.goto(`http://localhost:${framerPort}/`);
    const frame = page.frameLocator('iframe[title="Webhooks"]');
    await frame.getByRole('heading', { name: 'Acme — webhooks' }).waitFor();
    await frame.getByRole('link', { name: `${receiver.url}/acme` }).waitFor();
    await screenshot(page, 'portal-in-iframe');

    // The same page from an origin the setting does not name: Chromium must not render the portal in the frame.
    const other = await context.newPage();
    await other.goto(`http://127.0.0.1:${framerPort}/`);
    const blocked = await waitUntil('the refused frame to settle', async () => {
      const child = other.frames().find((f) => f !== other.mainFrame());
      return child && child.url() !== '' && child.url() !== 'about:blank' ? child : null;
    });
    await blocked!.waitForLoadState();
    assert.equal(blocked!.url(), 'chrome-error://chromewebdata/', `the portal loaded in a frame of a refused origin: ${blocked!.url()}`);
    assert.match(await blocked!.content(), /ERR_BLOCKED_BY_RESPONSE/);
    await screenshot(other, 'portal-in-iframe-refused');
    await context.close();
  });

  it('is readable on a phone: nothing wider than the screen', async () => {
    const context = await browser.browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const { page } = await openPortal(context);
    await page.getByRole('link', { name: `${receiver.url}/acme` }).waitFor();
    const fits = () => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
    assert.ok(await fits(), 'the endpoint list scrolls sideways on a phone');
    await screenshot(page, 'portal-phone-endpoints');
    await page.getByRole('button', { name: 'Messages' }).click();
    await page.getByRole('row', { name: new RegExp(a.msg) }).getByRole('link', { name: 'invoice.paid' }).click();
    await page.getByTestId('payload').waitFor();
    assert.ok(await fits(), 'the message page scrolls sideways on a phone');
    await screenshot(page, 'portal-phone-message');
    await context.close();
  });
});

/** Every input, select and textarea on the page has an accessible name (a <label for>, a wrapping label or aria-label). */
async function assertEveryFieldLabelled(page: Page) {
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll('input, select, textarea')]
      .filter((field: HTMLInputElement) => (field.labels?.length ?? 0) === 0 && !field.getAttribute('aria-label'))
      .map((field: HTMLInputElement) => field.outerHTML as string),
  );
  assert.deepEqual(unlabelled, [], 'fields without a label');
}
