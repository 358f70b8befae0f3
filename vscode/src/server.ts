/** Finding, listing and starting Jupyter servers (the parts that run processes). */
import { execFile, spawn, ChildProcess } from 'child_process';
import { randomBytes } from 'crypto';
import { createServer } from 'net';

import { parseServerList, ServerInfo } from './discovery';

/** `jupyter server list --json`; [] with the reason when it cannot run. */
export function listServers(jupyter: string, timeoutMs = 15000): Promise<{ servers: ServerInfo[]; detail: string }> {
  return new Promise(resolve => {
    execFile(jupyter, ['server', 'list', '--json'], { timeout: timeoutMs }, (err, stdout) => {
      if (err && !stdout) {
        const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? `\`${jupyter}\` is not on the PATH` : `\`${jupyter} server list --json\` failed: ${err.message.split('\n')[0]}`;
        resolve({ servers: [], detail: `lenscope.serverUrl is empty and ${why}` });
        return;
      }
      const servers = parseServerList(String(stdout));
      resolve({ servers, detail: servers.length ? '' : `lenscope.serverUrl is empty and \`${jupyter} server list\` lists no running server` });
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface Started {
  info: ServerInfo;
  process: ChildProcess;
}

/** Start `jupyter server` on a free port of 127.0.0.1 with a fresh token, rooted at `rootDir`. */
export async function startServer(jupyter: string, rootDir: string, log: (line: string) => void): Promise<Started> {
  const port = await freePort();
  const token = randomBytes(24).toString('hex');
  const args = [
    'server',
    '--no-browser',
    `--ServerApp.ip=127.0.0.1`,
    `--ServerApp.port=${port}`,
    '--ServerApp.port_retries=0',
    `--ServerApp.root_dir=${rootDir}`,
    `--IdentityProvider.token=${token}`,
    // Jupyter refuses to run as root without it (containers, CI)
    ...(process.getuid?.() === 0 ? ['--allow-root'] : [])
  ];
  log(`$ ${jupyter} ${args.map(a => (a.startsWith('--IdentityProvider.token') ? '--IdentityProvider.token=…' : a)).join(' ')}`);
  const child = spawn(jupyter, args, { cwd: rootDir, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', d => log(String(d).trimEnd()));
  child.stderr?.on('data', d => log(String(d).trimEnd()));
  const info: ServerInfo = { url: `http://127.0.0.1:${port}/`, token, rootDir, pid: child.pid ?? null };
  const exited = new Promise<never>((_, reject) => {
    child.once('error', err => reject(err));
    child.once('exit', code => reject(new Error(`\`${jupyter} server\` exited with code ${code}; see the "lenscope" output channel`)));
  });
  const ready = (async () => {
    const deadline = Date.now() + 60000;
    while (Date.now() < deadline) {
      try {
        const r = await fetch(`${info.url}api/status`, { headers: { Authorization: `token ${token}` } });
        if (r.ok) {
          return;
        }
      } catch {
        // not up yet
      }
      await new Promise(res => setTimeout(res, 300));
    }
    throw new Error('the Jupyter server did not start within 60 s');
  })();
  await Promise.race([ready, exited]);
  return { info, process: child };
}
