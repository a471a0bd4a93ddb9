import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A throwaway certificate authority for TLS tests, made with openssl in `dir`: the CA, a server and a client certificate. */
export interface TestCa {
  /** The CA certificate, PEM, and its file. */
  caCert: string;
  caFile: string;
  /** For `localhost` and 127.0.0.1, signed by the CA. */
  server: { certFile: string; keyFile: string };
  /** A client certificate signed by the CA (mTLS), PEM. */
  client: { cert: string; key: string };
}

function openssl(args: string[]): void {
  const made = spawnSync('openssl', args, { encoding: 'utf8' });
  if (made.error) throw new Error(`cannot run openssl to make test certificates (${made.error.message}); install openssl`);
  if (made.status !== 0) throw new Error(`openssl ${args[0]} failed: ${made.stderr}`);
}

export function makeTestCa(dir: string): TestCa {
  const file = (name: string) => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '1', '-subj', '/CN=hookrelay test CA']);
  writeFileSync(file('server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  writeFileSync(file('client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const [name, cn] of [['server', 'localhost'], ['client', 'hookrelay']] as const) {
    openssl(['req', ...ec, '-keyout', file(`${name}.key`), '-out', file(`${name}.csr`), '-subj', `/CN=${cn}`]);
    openssl(['x509', '-req', '-in', file(`${name}.csr`), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial', '-out', file(`${name}.pem`), '-days', '1', '-extfile', file(`${name}.ext`)]);
  }
  return {
    caCert: readFileSync(file('ca.pem'), 'utf8'),
    caFile: file('ca.pem'),
    server: { certFile: file('server.pem'), keyFile: file('server.key') },
    client: { cert: readFileSync(file('client.pem'), 'utf8'), key: readFileSync(file('client.key'), 'utf8') },
  };
}
