// An independent WebSocket client (Node's ws) for quotehub's tests.
//
// Usage: node client.js ws://127.0.0.1:PORT
// It plays the protocol's exchanges and prints one JSON object with what it saw.
'use strict';
const WebSocket = require('ws');

const out = {};
const ws = new WebSocket(process.argv[2] + '/v1/ws?symbols=KRW-BTC');
const frames = [];
let waiting = null;
const timer = setTimeout(() => { console.error('timed out'); process.exit(2); }, 20000);

ws.on('message', (data, isBinary) => {
  frames.push(JSON.parse(data.toString()));
  if (waiting) waiting();
});

function until(pred) {
  return new Promise((resolve) => {
    const look = () => {
      while (frames.length > 0) {
        const f = frames.shift();
        if (pred(f)) { waiting = null; resolve(f); return; }
      }
      waiting = look;
    };
    look();
  });
}

ws.on('open', async () => {
  out.welcome = await until(() => true);
  out.subscribed = await until(() => true);
  const quotes = await until((f) => f.type === 'quotes');
  out.quote_symbols = quotes.quotes.map((q) => q.symbol);
  ws.send(JSON.stringify({ op: 'subscribe', id: 'r1', symbols: ['KRW-ETH', 'NOPE!'] }));
  out.r1 = await until((f) => f.id === 'r1');
  ws.send(JSON.stringify({ op: 'ping', id: 7 }));
  out.pong = await until((f) => f.type === 'pong');
  await new Promise((resolve) => { ws.once('pong', resolve); ws.ping('lib'); });
  out.lib_pong = true;
  // A message in three fragments.
  const msg = JSON.stringify({ op: 'unsubscribe', id: 'r2', symbols: ['KRW-ETH'] });
  ws.send(msg.slice(0, 10), { fin: false });
  ws.send(msg.slice(10, 20), { fin: false });
  ws.send(msg.slice(20), { fin: true });
  out.r2 = await until((f) => f.id === 'r2');
  ws.close(1000, 'bye');
});

ws.on('close', (code) => {
  out.close_code = code;
  clearTimeout(timer);
  console.log(JSON.stringify(out));
});

ws.on('error', (err) => { console.error(String(err)); process.exit(1); });
