// A tiny static file server for the browser tests: serves the test page and PouchDB's browser
// bundle on 127.0.0.1:<free port>, an origin other than settee's, so every request the page
// makes to settee is cross-origin (CORS, credentialed: PouchDB's fetch uses credentials:'include').
//   import { startStatic } from './static-server.mjs'; const s = await startStatic(); s.url; await s.close();
//   node static-server.mjs [port]     (by hand: serves until interrupted)
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const FILES = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/index.html': ['index.html', 'text/html; charset=utf-8'],
  '/pouchdb.min.js': ['node_modules/pouchdb/dist/pouchdb.min.js', 'text/javascript; charset=utf-8'],
  '/pouchdb.js': ['node_modules/pouchdb/dist/pouchdb.js', 'text/javascript; charset=utf-8'],
};

export function startStatic(port = 0) {
  const sockets = new Set();
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    const entry = FILES[url.pathname];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'Content-Type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (url.pathname === '/favicon.ico') { res.writeHead(204).end(); return; }
    if (!entry) { res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n'); return; }
    try {
      const body = await readFile(path.join(here, entry[0]));
      res.writeHead(200, { 'Content-Type': entry[1], 'Content-Length': body.length, 'Cache-Control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch (e) {
      res.writeHead(500, { 'Content-Type': 'text/plain' }).end(String(e) + '\n');
    }
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const { port: p } = server.address();
      resolve({
        url: `http://127.0.0.1:${p}`,
        close: () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
      });
    });
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const s = await startStatic(Number(process.argv[2] || 0));
  console.log(`serving ${here} on ${s.url}`);
}
