// Node `ws` client for the node_ws capture. make_captures.py runs it against a Python server and builds the truth
// file from the JSON lines it prints: one line per frame sequence it sends, written before the send.
// Usage: node client.js PORT
'use strict';

const WebSocket = require('ws');

const port = Number(process.argv[2]);
const ws = new WebSocket(`ws://127.0.0.1:${port}/node?lib=ws`, { perMessageDeflate: false });

function log(record) {
  process.stdout.write(JSON.stringify(record) + '\n');
}

// Deterministic, so the payload matches across runs and the truth file stays reviewable.
const big = Buffer.alloc(100000);
for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 0xff;

function sendText(text) {
  log({ event: 'send', opcode: 'text', text });
  ws.send(text, { binary: false });
}

function sendBinary(data) {
  log({ event: 'send', opcode: 'binary', data: data.toString('base64') });
  ws.send(data, { binary: true });
}

// Each step sends one message; the server answers every data message, and that answer triggers the next step,
// so the two directions never race and the truth order is exact.
const steps = [
  () => sendText('hello from node'),
  () => sendText('ünïcödé ✓ 🎉'),
  () => sendBinary(Buffer.from([0x00, 0x01, 0x02, 0xfd, 0xfe, 0xff])),
  () => {
    const parts = ['frag-one|', 'frag-two|', 'frag-three'];
    log({ event: 'send', opcode: 'text', text: parts.join(''), fragments: parts.length });
    ws.send(parts[0], { binary: false, fin: false });
    ws.send(parts[1], { binary: false, fin: false });
    ws.send(parts[2], { binary: false, fin: true });
  },
  () => sendBinary(big),
  () => {
    const payload = Buffer.from('node-ping');
    log({ event: 'send', opcode: 'ping', data: payload.toString('base64') });
    ws.ping(payload);
  },
  () => {
    log({ event: 'send', opcode: 'close', close_code: 1000, close_reason: 'node done' });
    ws.close(1000, 'node done');
  },
];

let next = 0;
function step() {
  steps[next++]();
}

ws.on('open', () => {
  log({ event: 'open', client_address: ws._socket.localAddress, client_port: ws._socket.localPort });
  step();
});
ws.on('message', step);
ws.on('pong', step);
ws.on('close', (code, reason) => {
  log({ event: 'closed', close_code: code, close_reason: reason.toString() });
});
ws.on('error', (err) => {
  process.stderr.write(`node client error: ${err.message}\n`);
  process.exitCode = 1;
});
