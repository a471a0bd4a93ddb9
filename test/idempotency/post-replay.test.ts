import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startRelay, type TestRelay } from '../helpers/relay.js';

describe('idempotency keys on POST', () => {
  let relay: TestRelay;
  before(async () => (relay = await startRelay()));
  after(() => relay.close());

  it('answers a retried create with the first answer and creates nothing twice', async () => {
    const first = await relay.api('POST', '/api/v1/app', { name: 'retried' }, { headers: { 'idempotency-key': 'create-app-1' } });
    const again = await relay.api('POST', '/api/v1/app', { name: 'retried' }, { headers: { 'idempotency-key': 'create-app-1' } });
    assert.equal(first.status, 201);
    assert.equal(again.status, 201);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal(again.body.id, first.body.id);
    const other = await relay.api('POST', '/api/v1/app', { name: 'retried' }, { headers: { 'idempotency-key': 'create-app-2' } });
    assert.notEqual(other.body.id, first.body.id);
    const apps = await relay.svix.application.list({ limit: 250 });
    assert.equal(apps.data.filter((a) => a.name === 'retried').length, 2);
  });

  it('scopes keys by path, so one key on two endpoints creates one of each', async () => {
    const app = await relay.svix.application.create({ name: 'scoped' });
    const url = 'https://example.com/hook';
    const a = await relay.api('POST', `/api/v1/app/${app.id}/endpoint`, { url }, { headers: { 'idempotency-key': 'same' } });
    const b = await relay.api('POST', '/api/v1/app', { name: 'scoped-2' }, { headers: { 'idempotency-key': 'same' } });
    assert.equal(a.status, 201);
    assert.equal(b.status, 201);
    assert.ok(String(a.body.id).startsWith('ep_'));
    assert.ok(String(b.body.id).startsWith('app_'));
  });

  it('does not keep failed answers: a corrected retry with the same key succeeds', async () => {
    const bad = await relay.api('POST', '/api/v1/app', { name: '' }, { headers: { 'idempotency-key': 'fix-me' } });
    assert.equal(bad.status, 422);
    const good = await relay.api('POST', '/api/v1/app', { name: 'fixed' }, { headers: { 'idempotency-key': 'fix-me' } });
    assert.equal(good.status, 201);
    assert.equal(good.body.name, 'fixed');
  });

  it('refuses a malformed key with 422 naming the header', async () => {
    const response = await relay.api('POST', '/api/v1/app', { name: 'x' }, { headers: { 'idempotency-key': 'has space' } });
    assert.equal(response.status, 422);
    assert.deepEqual(response.body.detail[0].loc, ['header', 'idempotency-key']);
  });
});
