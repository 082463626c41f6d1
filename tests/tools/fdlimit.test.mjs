// The open-files limit: settee raises its soft limit to the hard one at start, and when the
// descriptor table is full anyway its listeners rest instead of spinning on a listening
// socket accept() cannot take. Served keep-alive connections go on; new ones wait in the
// kernel's backlog and are taken once descriptors are free again. A server of its own,
// started through prlimit with a small hard limit (96).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { TMP, T, startServer, cleanup } from './lib.mjs';

after(cleanup);

const HARD = 96;

// utime + stime of a process, in seconds
function cpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

function connect(port) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

// GET /_up on an open connection: the status line, or 'timeout'
function up(s, ms = 5000) {
  return new Promise((resolve) => {
    let text = '';
    const done = (v) => { s.off('data', on); clearTimeout(timer); resolve(v); };
    const on = (d) => { text += d; if (/\r\n\r\n[\s\S]*\}/.test(text)) done(text.split('\r\n')[0]); };
    const timer = setTimeout(() => done('timeout'), ms);
    s.on('data', on);
    s.write('GET /_up HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  });
}

test('a full descriptor table: no spinning, served connections answered, new ones taken once fds are free', T, async () => {
  const srv = await startServer(path.join(TMP, 'fdlimit'), 'fdlimit', '', { wrap: ['prlimit', `--nofile=32:${HARD}`] });
  const pid = srv.child.pid;
  const port = Number(new URL(srv.base).port);
  const limits = fs.readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
  assert.match(limits, new RegExp(`^Max open files\\s+${HARD}\\s+${HARD}\\s`), 'the soft limit was raised to the hard one');

  const served = [];
  const extra = [];
  let late;
  try {
    for (let i = 0; i < 5; i++) {
      const s = await connect(port);
      assert.equal(await up(s), 'HTTP/1.1 200 OK', `served connection ${i}`);
      served.push(s);
    }
    // More connections than the server has descriptors: the kernel completes them (the
    // backlog is 1024), settee accepts until EMFILE.
    for (let i = 0; i < HARD + 40; i++) extra.push(await connect(port));
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(fs.readdirSync(`/proc/${pid}/fd`).length >= HARD - 1, 'the table is full');

    const c0 = cpuSeconds(pid);
    await new Promise((r) => setTimeout(r, 2000));
    const spent = cpuSeconds(pid) - c0;
    assert.ok(spent < 0.5, `the server used ${spent.toFixed(2)} s of CPU in 2 s with a full table (spinning?)`);

    for (const [i, s] of served.entries()) assert.equal(await up(s), 'HTTP/1.1 200 OK', `served connection ${i} goes on`);
    late = await connect(port);
    assert.equal(await up(late, 1000), 'timeout', 'a new connection waits while the table is full');

    for (const s of extra) s.destroy();
    extra.length = 0;
    assert.equal(await up(late, 10000), 'HTTP/1.1 200 OK', 'the waiting connection is taken once fds are free');
    const fresh = await connect(port);
    served.push(fresh);
    assert.equal(await up(fresh), 'HTTP/1.1 200 OK', 'a new connection is served');
    const log = fs.readFileSync(path.join(TMP, 'fdlimit.log'), 'utf8');
    assert.match(log, /out of file descriptors/, 'logged once');
  } finally {
    for (const s of [...served, ...extra]) s.destroy();
    if (late) late.destroy();
  }
});
