// Node `ws` server and client in one process, both with permessage-deflate, for the deflate_node capture.
// make_captures.py builds the truth file from the JSON lines printed here: one line per message sent, written
// before the send, naming its direction and whether `ws` compresses it.
// Usage: node deflate.js PORT
'use strict';

const { WebSocket, WebSocketServer } = require('ws');

const port = Number(process.argv[2]);
// threshold 0: `ws` applies its threshold only where no_context_takeover holds (the client here), and would
// otherwise leave messages under 1 KiB uncompressed. The server asks the client for client_no_context_takeover
// and limits its own window to 2^11 bytes, so the two directions compress differently.
const server = new WebSocketServer({
  host: '127.0.0.1',
  port,
  perMessageDeflate: { threshold: 0, clientNoContextTakeover: true, serverMaxWindowBits: 11 },
});

function log(record) {
  process.stdout.write(JSON.stringify(record) + '\n');
}

// Deterministic, so the payloads match across runs and the truth file stays reviewable.
const json = (seq, from) =>
  JSON.stringify({ type: 'update', seq, from, room: 'lobby', items: [1, 2, 3].map((id) => ({ id, qty: seq * id })) });
const lines = [];
for (let i = 0; lines.join('').length < 100000; i++) lines.push(`${i} GET /api/items/${i % 17} 200 ok\n`);
const bigText = lines.join('');
const pattern = Buffer.alloc(3000);
for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 7) % 13;

let client;
let peer; // the server's end of the connection

function endOf(dir) {
  return dir === 'c2s' ? [client, peer] : [peer, client];
}

function send(dir, data, options = {}) {
  const binary = typeof data !== 'string';
  const record = { event: 'send', dir, opcode: binary ? 'binary' : 'text', compressed: options.compress !== false };
  if (binary) record.data = data.toString('base64');
  else record.text = data;
  log(record);
  endOf(dir)[0].send(data, { binary, ...options });
}

function sendFragments(dir, parts) {
  const binary = typeof parts[0] !== 'string';
  log({ event: 'send', dir, opcode: binary ? 'binary' : 'text', text: parts.join(''), compressed: true,
    fragments: parts.length });
  parts.forEach((part, i) => endOf(dir)[0].send(part, { binary, compress: true, fin: i === parts.length - 1 }));
}

// Each step sends one message; the receiver's 'message' (or the sender's 'pong') triggers the next, so the
// two directions never race and the truth order is exact.
const steps = [
  () => send('c2s', 'hello from the node client'),
  () => send('s2c', 'hello from the node server'),
  ...[0, 1, 2, 3].flatMap((seq) => [() => send('c2s', json(seq, 'client')), () => send('s2c', json(seq, 'server'))]),
  () => send('c2s', 'x'),
  () => send('s2c', ''),
  () => send('c2s', ''),
  () => send('s2c', 'ünïcödé ✓ 🎉 ünïcödé ✓ 🎉'),
  () => send('c2s', Buffer.from([0x00, 0x01, 0x02, 0xfd, 0xfe, 0xff])),
  () => send('s2c', pattern),
  () => send('c2s', bigText),
  () => send('s2c', 'sent without compression', { compress: false }),
  () => sendFragments('c2s', ['frag-one|', 'frag-two|', 'frag-three']),
  () => sendFragments('s2c', ['server frag A, ', 'server frag B, ', 'server frag A, again']),
  () => send('s2c', json(4, 'server')),
  () => {
    const payload = Buffer.from('node-ping');
    log({ event: 'send', dir: 'c2s', opcode: 'ping', data: payload.toString('base64') });
    client.ping(payload);
  },
  () => {
    log({ event: 'send', dir: 'c2s', opcode: 'close', close_code: 1000, close_reason: 'node done' });
    client.close(1000, 'node done');
  },
];

let next = 0;
function step() {
  steps[next++]();
}

function fail(err) {
  process.stderr.write(`node deflate peers: ${err.message}\n`);
  process.exit(1);
}

server.on('connection', (ws) => {
  peer = ws;
  ws.on('message', step);
  ws.on('error', fail);
});
server.on('listening', () => {
  client = new WebSocket(`ws://127.0.0.1:${port}/node?deflate=1`, { perMessageDeflate: { threshold: 0 } });
  client.on('upgrade', (response) => {
    log({ event: 'upgrade', extensions: response.headers['sec-websocket-extensions'] || null });
  });
  client.on('open', () => {
    log({ event: 'open', client_address: client._socket.localAddress, client_port: client._socket.localPort });
    step();
  });
  client.on('message', step);
  client.on('pong', step);
  client.on('close', (code, reason) => {
    log({ event: 'closed', close_code: code, close_reason: reason.toString() });
    server.close();
  });
  client.on('error', fail);
});
server.on('error', fail);
