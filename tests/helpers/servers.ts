/**
 * Real TLS terminators on 127.0.0.1 for delivery tests: nginx and haproxy
 * serving from a deploy target's `current/` release, and the clients that
 * probe them. Each server gets its own prefix and port; stop() ends them.
 */
import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { execaSync } from 'execa';
import { httpsStatus } from '../../scripts/lib/mtls.js';

// Below the ephemeral range (32768+), so an outgoing connection never holds a test port. A random block per
// file: vitest reuses one worker process for many files, so a pid-derived block would hand the next file the
// ports of servers the last one is still stopping.
let nextPort = 20000 + Math.floor(Math.random() * 1200) * 10;
export const freePort = () => nextPort++;

export interface Terminator {
  kind: 'nginx' | 'haproxy';
  port: number;
  releaseDir: string;
  /** The command a deploy target runs to (re)load it. */
  reload: string;
  stop(): void;
}

/** nginx serving one service's release with the directives `trellis-ci bundle --format nginx` prints. */
export function nginxFor(root: string, name: string, releaseDir: string): Terminator {
  const port = freePort();
  const prefix = path.join(root, `nginx-${name}`);
  fs.mkdirSync(path.join(prefix, 'logs'), { recursive: true });
  const cur = (f: string) => path.join(releaseDir, 'current', f);
  const conf = path.join(prefix, 'nginx.conf');
  fs.writeFileSync(
    conf,
    `worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log info;
events { worker_connections 256; }
http {
  access_log off;
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${cur('chain.pem')};
    ssl_certificate_key ${cur('key.pem')};
    ssl_verify_client on;
    ssl_verify_depth 2;
    ssl_trusted_certificate ${cur('trust.openssl.pem')};
    ssl_client_certificate ${cur('client-ca-names.pem')};
    ssl_crl ${cur('crl.pem')};
    keepalive_timeout 5s;
    location / { return 200 "ok\\n"; }
  }
}
`,
  );
  const base = `nginx -p ${prefix} -c ${conf}`;
  return {
    kind: 'nginx',
    port,
    releaseDir,
    reload: `${base} -s reload 2>/dev/null || ${base}`,
    stop: () => void execaSync('sh', ['-c', `${base} -s stop 2>/dev/null || true`], { reject: false }),
  };
}

/** haproxy terminating TLS for one service's release. */
export function haproxyFor(root: string, name: string, releaseDir: string): Terminator {
  const port = freePort();
  const dir = path.join(root, `haproxy-${name}`);
  fs.mkdirSync(dir, { recursive: true });
  const cur = (f: string) => path.join(releaseDir, 'current', f);
  const cfg = path.join(dir, 'haproxy.cfg');
  const pid = path.join(dir, 'haproxy.pid');
  const sock = path.join(dir, 'admin.sock');
  const tls = `ssl crt ${cur('chain-and-key.pem')} ca-file ${cur('trust.openssl.pem')} crl-file ${cur('crl.pem')}`;
  // expose-fd listeners + -x: the new process takes over the listening sockets, so a reload drops nothing.
  fs.writeFileSync(
    cfg,
    `global
  log stderr format raw local0 emerg
  stats socket ${sock} mode 600 level admin expose-fd listeners
defaults
  mode http
  timeout connect 2s
  timeout client 5s
  timeout server 5s
frontend fe
  bind 127.0.0.1:${port} ${tls} verify required
  http-request return status 200 content-type text/plain string "ok"
`,
  );
  return {
    kind: 'haproxy',
    port,
    releaseDir,
    reload:
      `if [ -f ${pid} ] && kill -0 $(cat ${pid}) 2>/dev/null; then haproxy -f ${cfg} -D -p ${pid} -x ${sock} -sf ` +
      `$(cat ${pid}); else haproxy -f ${cfg} -D -p ${pid}; fi`,
    stop: () =>
      void execaSync('sh', ['-c', `[ -f ${pid} ] && kill $(cat ${pid}) 2>/dev/null || true`], { reject: false }),
  };
}

export interface Client {
  name: string;
  key: string;
  chain: string;
  /** What the client trusts (its scope's trust.pem or trust.openssl.pem). */
  ca: string;
  /** The CRLs it checks the server's chain against (a release's crl.pem); none: no revocation checking. */
  crl?: string;
}

/** One HTTPS request with a client certificate (the demo's helper). */
export function request(port: number, servername: string, c: Client): Promise<number | 'refused'> {
  return httpsStatus(port, servername, c);
}

export async function waitForPort(port: number, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.on('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (up) return;
    await new Promise((x) => setTimeout(x, 100));
  }
  throw new Error(`nothing listens on ${port}`);
}
