// status.js: the connection badge in the header.

const NAMES = { ws: 'WebSocket', sse: 'SSE' };

export function statusView(box, text) {
  let tick = 0;
  return function show(s) {
    clearInterval(tick);
    box.dataset.state = s.state;
    box.dataset.transport = s.transport;
    const t = NAMES[s.transport] || s.transport;
    switch (s.state) {
      case 'connecting':
        text.textContent = 'Connecting over ' + t + '…';
        break;
      case 'live':
        text.textContent = 'Live · ' + t + (s.node ? ' · ' + s.node : '');
        break;
      case 'idle':
        text.textContent = t + ' · add a symbol to open a stream';
        break;
      case 'waiting': {
        const draw = () => {
          const left = Math.max(0, s.retryAt - Date.now()) / 1000;
          text.textContent = 'Disconnected (' + s.reason + ') · retrying in ' + left.toFixed(1) + ' s, attempt ' + s.attempt;
        };
        draw();
        tick = setInterval(draw, 250);
        break;
      }
    }
  };
}
