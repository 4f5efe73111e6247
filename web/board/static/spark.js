// spark.js: a sparkline per row, drawn as one SVG polyline from the prices
// the board has seen (no charting library: a polyline is all it takes).

const NS = 'http://www.w3.org/2000/svg';
export const WIDTH = 120;
export const HEIGHT = 28;
export const POINTS = 60;

/** History keeps the last POINTS prices of one symbol. */
export class History {
  constructor() {
    this.values = [];
  }

  push(v) {
    this.values.push(v);
    if (this.values.length > POINTS) this.values.shift();
  }
}

/** sparkline returns an empty SVG to pass to draw. */
export function sparkline() {
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`);
  svg.setAttribute('width', WIDTH);
  svg.setAttribute('height', HEIGHT);
  svg.setAttribute('class', 'spark');
  svg.setAttribute('aria-hidden', 'true');
  const line = document.createElementNS(NS, 'polyline');
  svg.appendChild(line);
  return svg;
}

/** points maps values onto the box, oldest on the left. */
export function points(values) {
  if (values.length === 0) return '';
  if (values.length === 1) return `0,${HEIGHT / 2} ${WIDTH},${HEIGHT / 2}`; // a closed market: one price, flat
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const span = hi - lo || 1;
  const step = WIDTH / Math.max(1, POINTS - 1);
  const x0 = WIDTH - step * (values.length - 1);
  let out = '';
  for (let i = 0; i < values.length; i++) {
    const y = hi === lo ? HEIGHT / 2 : 2 + (HEIGHT - 4) * (1 - (values[i] - lo) / span);
    out += (x0 + i * step).toFixed(1) + ',' + y.toFixed(1) + ' ';
  }
  return out;
}

/** draw sets the line of svg to values, coloured by its direction. */
export function draw(svg, values) {
  const line = svg.firstChild;
  line.setAttribute('points', points(values));
  const first = values[0];
  const last = values[values.length - 1];
  svg.setAttribute('class', 'spark ' + (last > first ? 'up' : last < first ? 'down' : 'flat'));
}
