// stats.js: the measured delivery age (receive time − fetched_at) of the
// recent updates, and their rate. The node's and the browser's clocks are
// compared, so the figure includes their skew.

const KEEP = 1000;

export class Stats {
  constructor() {
    this.ages = [];
    this.count = 0;
    this.since = Date.now();
    this.rate = 0;
  }

  record(ages) {
    for (const a of ages) {
      this.ages.push(a);
      this.count++;
    }
    if (this.ages.length > KEEP) this.ages.splice(0, this.ages.length - KEEP);
  }

  /** summary returns p50 and p95 of the kept ages and updates per second. */
  summary() {
    const now = Date.now();
    if (now - this.since >= 1000) {
      this.rate = (this.count * 1000) / (now - this.since);
      this.count = 0;
      this.since = now;
    }
    const s = [...this.ages].sort((a, b) => a - b);
    const at = (p) => (s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : NaN);
    return { p50: at(0.5), p95: at(0.95), n: s.length, rate: this.rate };
  }
}
