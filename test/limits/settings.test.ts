import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadSettings, type RawSettings } from '../../src/config.js';

const problems = (flags: RawSettings, env: NodeJS.ProcessEnv = {}): string[] => {
  try {
    loadSettings(flags, env);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.problems;
  }
  return [];
};

describe('HTTP limit settings', () => {
  it('default to 30 s / 10 s timeouts, 16 KiB and 100 headers, 8 KiB URLs and 10,000 connections', () => {
    const settings = loadSettings({}, {});
    assert.deepEqual(
      [settings.http.requestTimeoutMs, settings.http.headersTimeoutMs, settings.http.maxHeaderBytes, settings.http.maxHeaders, settings.http.maxUrlBytes, settings.http.maxConnections],
      [30_000, 10_000, 16_384, 100, 8192, 10_000],
    );
  });

  it('are read from flags over the environment', () => {
    const settings = loadSettings(
      { requestTimeout: '2m', maxHeaders: '50' },
      { HOOKRELAY_REQUEST_TIMEOUT: '5s', HOOKRELAY_HEADERS_TIMEOUT: '500ms', HOOKRELAY_MAX_HEADER_BYTES: '32768', HOOKRELAY_MAX_URL_BYTES: '4096', HOOKRELAY_MAX_CONNECTIONS: '20' },
    );
    assert.deepEqual(
      [settings.http.requestTimeoutMs, settings.http.headersTimeoutMs, settings.http.maxHeaderBytes, settings.http.maxHeaders, settings.http.maxUrlBytes, settings.http.maxConnections],
      [120_000, 500, 32_768, 50, 4096, 20],
    );
  });

  it('refuse values that cannot work, naming the flag and the variable', () => {
    assert.deepEqual(problems({ requestTimeout: '5s', headersTimeout: '10s' }), ['--headers-timeout (HOOKRELAY_HEADERS_TIMEOUT): must not exceed --request-timeout']);
    assert.deepEqual(problems({ maxHeaderBytes: '4096', maxUrlBytes: '4096' }), [
      '--max-url-bytes (HOOKRELAY_MAX_URL_BYTES): must be less than --max-header-bytes (the URL is part of the header block)',
    ]);
    assert.match(problems({ maxHeaders: '3' })[0], /^--max-headers \(HOOKRELAY_MAX_HEADERS\): must be at least 8/);
    assert.match(problems({}, { HOOKRELAY_MAX_CONNECTIONS: '0' })[0], /^--max-connections \(HOOKRELAY_MAX_CONNECTIONS\): must be at least 1/);
    assert.match(problems({ requestTimeout: '10ms' })[0], /^--request-timeout \(HOOKRELAY_REQUEST_TIMEOUT\): must be at least 100ms/);
    assert.match(problems({ maxHeaderBytes: 'lots' })[0], /^--max-header-bytes \(HOOKRELAY_MAX_HEADER_BYTES\): must be a whole number/);
  });
});
