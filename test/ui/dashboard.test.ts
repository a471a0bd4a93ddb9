import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { collectErrors, launchBrowser, screenshot, skipWithoutChromium, type TestBrowser } from '../helpers/browser.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { ADMIN_TOKEN, startRelay, type TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';

// page.evaluate callbacks run in the browser; the test's own compilation has no DOM library.
declare const document: any, sessionStorage: any, localStorage: any;
type HTMLInputElement = any;

/**
 * The operator dashboard in a real Chromium against a real hookrelay: sign in (the token becomes an HttpOnly cookie),
 * create an application and an endpoint, see a message's attempt with the receiver's answer, resend a parked delivery,
 * rotate a secret; the cookie alone (without the CSRF header) reaches nothing.
 */
const realErrors = (errors: string[]) => errors.filter((e) => !e.includes('Failed to load resource'));

describe('operator dashboard in Chromium', { skip: skipWithoutChromium() }, () => {
  let relay: TestRelay;
  let receiver: Receiver;
  let browser: TestBrowser;
  let context: BrowserContext;
  let page: Page;
  let errors: string[];
  /** The receiver fails every request while this is true. */
  let failing = false;

  before(async () => {
    // No circuit breaker: two messages' three failed attempts each would otherwise pause the endpoint before parking.
    relay = await startRelay({ circuitThreshold: '0' });
    receiver = await startReceiver(() => (failing ? { status: 500, body: 'down for maintenance' } : { status: 200, body: '{"received":true}' }));
    browser = await launchBrowser();
    await relay.svix1.eventType.create({ name: 'order.created', description: 'An order was placed' });
    context = await browser.browser.newContext({ viewport: { width: 1200, height: 900 } });
    page = await context.newPage();
    errors = collectErrors(page);
    page.on('dialog', (dialog) => void dialog.accept());
  });

  after(async () => {
    await browser?.close();
    await relay?.close();
    await receiver?.close();
  });

  it('serves /ui with a strict Content-Security-Policy that forbids framing', async () => {
    const response = await fetch(`${relay.url}/ui`);
    assert.equal(response.status, 200);
    const csp = response.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  });

  it('signs in with the admin token into an HttpOnly session cookie, never a URL or script-readable storage', async () => {
    await page.goto(`${relay.url}/ui`);
    await assertEveryFieldLabelled(page);
    await page.getByLabel('Admin token').fill('not-the-token');
    await page.getByLabel('Admin token').press('Enter');
    await page.getByRole('alert').filter({ hasText: 'That is not the admin token.' }).waitFor();
    await screenshot(page, 'dashboard-sign-in-refused');

    await page.getByLabel('Admin token').fill(ADMIN_TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Overview — last hour' }).waitFor();
    const cookies = await context.cookies();
    assert.equal(cookies.length, 1);
    assert.equal(cookies[0].name, 'hookrelay_session');
    assert.equal(cookies[0].httpOnly, true);
    assert.equal(cookies[0].sameSite, 'Strict');
    assert.ok(!cookies[0].value.includes(ADMIN_TOKEN));
    assert.ok(!page.url().includes(ADMIN_TOKEN));
    const visible = await page.evaluate(() => document.cookie + JSON.stringify({ ...sessionStorage }) + JSON.stringify({ ...localStorage }));
    assert.ok(!visible.includes('hookrelay_session') && !visible.includes(ADMIN_TOKEN), `script can read the session: ${visible}`);
  });

  it('the cookie alone, without the CSRF header, reaches no API route', async () => {
    const [cookie] = await context.cookies();
    const asCookie = (headers: Record<string, string>) =>
      fetch(`${relay.url}/api/v1/app`, { method: 'POST', headers: { cookie: `${cookie.name}=${cookie.value}`, 'content-type': 'application/json', ...headers }, body: '{"name":"forged"}' });
    assert.equal((await asCookie({})).status, 401);
    assert.equal((await asCookie({ 'x-hookrelay-csrf': 'guess' })).status, 401);
    const { csrf } = (await (await fetch(`${relay.url}/ui/session`, { headers: { cookie: `${cookie.name}=${cookie.value}` } })).json()) as { csrf: string };
    assert.equal((await fetch(`${relay.url}/api/v1/app`, { headers: { 'x-hookrelay-csrf': csrf } })).status, 401, 'the CSRF header alone was accepted');
    const forged = `${cookie.value.slice(0, -2)}AA`;
    assert.equal((await fetch(`${relay.url}/ui/session`, { headers: { cookie: `${cookie.name}=${forged}` } })).status, 401);
    assert.equal((await relay.svix1.application.list()).data.some((app) => app.name === 'forged'), false);
  });

  it('creates an application and an endpoint, shows the attempt with the receiver’s answer, and opens it', async () => {
    await page.getByRole('button', { name: 'Applications' }).click();
    await page.getByLabel('Name', { exact: true }).fill('Shop');
    await page.getByLabel('UID (optional)').fill('shop');
    await screenshot(page, 'dashboard-applications');
    await page.getByRole('button', { name: 'Create application' }).click();
    await page.getByRole('heading', { name: 'Shop' }).waitFor();
    await page.getByRole('button', { name: 'Add endpoint' }).click();
    await assertEveryFieldLabelled(page);
    await page.getByLabel('Endpoint URL').fill(`${receiver.url}/shop`);
    await page.getByLabel('Description').fill('Shop backend');
    await page.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('heading', { name: `${receiver.url}/shop` }).waitFor();

    const app = await relay.svix1.application.get('shop');
    const msg = await relay.svix1.message.create(app.id, { eventType: 'order.created', payload: { order: 1001 } });
    await receiver.waitFor(1);
    // The attempt table loads once: open the page after the attempt is stored, not only received.
    await waitUntil('the attempt to be recorded', async () => (await relay.svix1.messageAttempt.listByMsg(app.id, msg.id)).data.length > 0);
    await page.getByRole('button', { name: 'Messages' }).click();
    await page.getByRole('link', { name: 'order.created' }).click();
    await page.getByRole('link', { name: /200 success/ }).waitFor();
    await screenshot(page, 'dashboard-message');
    await page.getByRole('link', { name: /200 success/ }).click();
    const response = page.getByTestId('response');
    await response.waitFor();
    assert.equal(await response.textContent(), '{"received":true}');
    assert.equal(await page.getByTestId('request').textContent(), '{"order":1001}');
    await page.getByRole('button', { name: 'Indent' }).click();
    assert.equal(await page.getByTestId('request').textContent(), '{\n  "order": 1001\n}');
    assert.match((await page.locator('dl.facts').textContent())!, new RegExp(`${receiver.url}/shop`));
    // The request headers as sent: the signature the receiver got, shown as text next to its name.
    const [got] = receiver.received;
    const rows = await page.getByTestId('request-headers').locator('tbody tr').evaluateAll((trs: any[]) => trs.map((tr) => [...tr.cells].map((td: any) => td.textContent)));
    const shown = new Map(rows.map(([name, value]: string[]) => [name, value]));
    assert.equal(shown.get('webhook-signature'), got.headers['webhook-signature']);
    assert.equal(shown.get('webhook-id'), msg.id);
    assert.equal(shown.get('content-type'), got.headers['content-type']);
    await screenshot(page, 'dashboard-attempt');
    assert.ok(msg.id);
  });

  it('resends parked deliveries in bulk, and rotates the endpoint’s secret', async () => {
    const app = await relay.svix1.application.get('shop');
    failing = true;
    const parked: string[] = [];
    for (const order of [1002, 1003]) parked.push((await relay.svix1.message.create(app.id, { eventType: 'order.created', payload: { order } })).id);
    const [endpoint] = (await relay.svix1.endpoint.list(app.id)).data;
    const statusOf = async (msgId: string) => (await relay.svix1.messageAttempt.listAttemptedDestinations(app.id, msgId)).data[0]?.status;
    // The test relay's schedule is three attempts (0, 100 ms, 200 ms); then the delivery is parked (status 2, fail).
    await waitUntil('both deliveries to be parked', async () => ((await statusOf(parked[0])) === 2 && (await statusOf(parked[1])) === 2) || null);
    failing = false;

    await page.getByRole('button', { name: 'Endpoints' }).click();
    await page.getByRole('link', { name: `${receiver.url}/shop` }).click();
    await page.getByRole('heading', { name: 'Parked messages' }).waitFor();
    for (const id of parked) await page.getByLabel(`Pick ${id}`).waitFor();
    await page.getByRole('button', { name: 'Select all' }).click();
    await screenshot(page, 'dashboard-parked');
    const before = receiver.received.length;
    await page.getByRole('button', { name: 'Resend selected (2)' }).click();
    await page.getByRole('status').filter({ hasText: '2 parked message(s) will be sent again.' }).waitFor();
    await receiver.waitFor(before + 2);
    await waitUntil('the resent deliveries to succeed', async () => ((await statusOf(parked[0])) === 0 && (await statusOf(parked[1])) === 0) || null);
    await page.getByText('No parked messages.').waitFor();

    const old = (await relay.svix1.endpoint.getSecret(app.id, endpoint.id)).key;
    await page.getByRole('button', { name: 'Rotate secret' }).click();
    await page.getByRole('status').filter({ hasText: 'The secret was rotated.' }).waitFor();
    const rotated = (await relay.svix1.endpoint.getSecret(app.id, endpoint.id)).key;
    assert.notEqual(rotated, old);
    assert.equal(await page.getByLabel('Signing secret').textContent(), rotated);
    await screenshot(page, 'dashboard-endpoint');
  });

  it('draws the overview from stored data: messages and attempts per minute, failure rate, queue', async () => {
    await page.getByRole('button', { name: 'Overview' }).click();
    await page.getByRole('heading', { name: 'Overview — last hour' }).waitFor();
    const tile = async (name: string) => (await page.locator('.tiles div').filter({ hasText: name }).locator('dd').textContent())!.trim();
    assert.equal(await tile('Messages'), '3');
    const attempts = Number(await tile('Attempts'));
    assert.equal(attempts, 9); // 1, then 2 × 3 failed, then 2 resent
    assert.match(await tile('Failure rate'), /^\d+\.\d %$/);
    assert.equal(await tile('Queue (pending)'), '0');
    assert.equal(await page.locator('figure.chart svg[role="img"]').count(), 3);
    assert.ok((await page.locator('figure.chart rect.bar.failed').count()) > 0, 'no failed attempts drawn');
    await screenshot(page, 'dashboard-overview');
    await page.getByRole('button', { name: 'Applications' }).click();
    await page.getByRole('link', { name: 'Shop' }).click();
  });

  it('mints a customer portal link, lists event types and a source’s refused requests with their reasons, and signs out', async () => {
    await page.getByRole('button', { name: 'Portal link' }).click();
    const link = (await page.getByLabel('Portal link').textContent())!;
    assert.match(link, new RegExp(`^${relay.url}/portal#token=hrp_`));
    await page.getByRole('button', { name: 'Event types' }).click();
    await page.getByRole('cell', { name: 'order.created' }).waitFor();
    await screenshot(page, 'dashboard-event-types');

    const source = await relay.api('POST', '/ingest/api/v1/source', { name: 'repo', type: 'github', config: { secret: 'a-github-webhook-secret' } });
    assert.equal(source.status, 201, source.text);
    const refused = await fetch(source.body.ingestUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-hub-signature-256': `sha256=${'0'.repeat(64)}` },
      body: '{"forged":"<b>x</b>"}',
    });
    assert.equal(refused.status, 401);
    const { detail } = (await refused.json()) as { detail: string };
    await page.getByRole('button', { name: 'Sources' }).click();
    await page.getByRole('button', { name: 'Failures of repo' }).click();
    await page.getByRole('cell', { name: detail, exact: true }).waitFor();
    assert.match((await page.getByText('refused since this hookrelay process started').textContent())!, /^1 refused/);
    await screenshot(page, 'dashboard-sources');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Admin token').waitFor();
    assert.deepEqual(await context.cookies(), []);
    assert.deepEqual(realErrors(errors), []);
  });
});

async function assertEveryFieldLabelled(page: Page) {
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll('input, select, textarea')]
      .filter((field: HTMLInputElement) => (field.labels?.length ?? 0) === 0 && !field.getAttribute('aria-label'))
      .map((field: HTMLInputElement) => field.outerHTML as string),
  );
  assert.deepEqual(unlabelled, [], 'fields without a label');
}
