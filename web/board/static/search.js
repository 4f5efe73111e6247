// search.js: the search box over the catalogue (GET /v1/symbols?q=),
// Korean names included. Typing waits for a pause; a newer query cancels
// the older request.

import { searchSymbols } from './api.js';

const PAUSE = 120;

export function searchBox({ input, list, onPick, onError }) {
  let timer = 0;
  let ctl = null;
  let results = [];
  let active = -1;

  const close = () => {
    list.hidden = true;
    list.replaceChildren();
    results = [];
    active = -1;
  };
  const highlight = (i) => {
    active = i;
    [...list.children].forEach((li, j) => li.classList.toggle('active', j === i));
  };
  const pick = (i) => {
    const r = results[i];
    if (!r) return;
    onPick(r);
    input.value = '';
    close();
  };
  const show = (items) => {
    results = items;
    list.replaceChildren();
    if (!items.length) {
      const li = document.createElement('li');
      li.className = 'none';
      li.textContent = 'No symbol matches';
      list.append(li);
    }
    items.forEach((r, i) => {
      const li = document.createElement('li');
      li.setAttribute('role', 'option');
      li.dataset.symbol = r.symbol;
      const s = document.createElement('strong');
      s.textContent = r.symbol;
      const n = document.createElement('span');
      n.textContent = r.name;
      const x = document.createElement('small');
      x.textContent = r.exchange + ' · ' + r.currency;
      li.append(s, n, x);
      li.addEventListener('mousedown', (e) => {
        e.preventDefault(); // keep the focus in the box
        pick(i);
      });
      list.append(li);
    });
    list.hidden = false;
    highlight(items.length ? 0 : -1);
  };
  const run = async (q) => {
    if (ctl) ctl.abort();
    ctl = new AbortController();
    try {
      show(await searchSymbols(q, { limit: 10, signal: ctl.signal }));
    } catch (e) {
      if (e.name !== 'AbortError') onError(e);
    }
  };

  input.addEventListener('input', () => {
    clearTimeout(timer);
    const q = input.value.trim();
    if (!q) {
      if (ctl) ctl.abort();
      close();
      return;
    }
    timer = setTimeout(() => run(q), PAUSE);
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown' && results.length) {
      highlight((active + 1) % results.length);
      e.preventDefault();
    } else if (e.key === 'ArrowUp' && results.length) {
      highlight((active - 1 + results.length) % results.length);
      e.preventDefault();
    } else if (e.key === 'Enter') {
      pick(active);
      e.preventDefault();
    } else if (e.key === 'Escape') {
      close();
    }
  });
  input.addEventListener('blur', () => setTimeout(close, 150));
}
