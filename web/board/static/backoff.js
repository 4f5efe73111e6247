// backoff.js: jittered exponential backoff for reconnecting.

/**
 * Backoff yields waits of base·2^n, capped, each drawn from the upper half
 * of its range ("equal jitter"): never zero, so a restarted node is not hit
 * at once by every tab, and spread, so tabs do not retry in lockstep.
 */
export class Backoff {
  constructor({ base = 500, cap = 15000, random = Math.random } = {}) {
    this.base = base;
    this.cap = cap;
    this.random = random;
    this.attempt = 0;
  }

  /** next returns the wait before the next try, in ms, and counts the try. */
  next() {
    const ceiling = Math.min(this.cap, this.base * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    return Math.round(ceiling / 2 + (this.random() * ceiling) / 2);
  }

  reset() {
    this.attempt = 0;
  }
}
