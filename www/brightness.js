// brightness.js -- the brightness slider of an LED card.
//
// A native <input type="range"> from 0 to 100 %: keyboards (arrows, Page Up/Down,
// Home/End), screen readers (a slider whose value is read as "30 %") and touch come
// with it. It shows the LED's light now: its brightness while lit, 0 while off, and in
// words the brightness an off LED keeps and comes back on at. Moving it sends
// {"brightness": N}: 0 switches the LED off (ledd keeps its brightness), 1-100 lights it.
//
// While a person moves it, the slider is theirs: states arriving meanwhile (the answers
// to its own requests, other dashboards' moves) are kept, not shown on the thumb, until
// the thumb is let go and the last request is answered; then the newest state shows.
// Requests go one at a time (so ledd applies them in the order they were made), at most
// one per SEND_INTERVAL_MS, always with the newest value: a drag costs ledd a few lines
// a second, and the value the thumb is let go at is always sent last.
import { percent, t } from './lang.js';

export const SEND_INTERVAL_MS = 100;

// row: the card's .brightness-row; label: the slider's accessible name;
// send(value): a promise of the request's end (it reports its own errors).
export function brightnessSlider(row, id, label, send) {
  const input = row.querySelector('.brightness');
  const words = row.querySelector('.brightness-value');
  input.id = id;
  input.setAttribute('aria-label', label);
  row.querySelector('label').htmlFor = id;

  let latest = null;        // the LED as ledd last described it
  let dragging = false;     // a pointer holds the thumb
  let moved = false;        // ...and has moved it
  let wanted = null;        // the value to send when the pacing allows
  let sending = null;       // the value of the request on its way
  let lastSentAt = -Infinity;
  let timer = 0;

  const busy = () => dragging || sending !== null || wanted !== null;
  const lightOf = (led) => (led.on ? led.brightness : 0);

  function say(text) {
    words.textContent = text;
    input.setAttribute('aria-valuetext', text);
  }

  // The state's value, unless the person is moving the thumb.
  function show(led) {
    latest = led;
    row.hidden = typeof led.brightness !== 'number';  // a ledd from before brightness
    if (row.hidden || busy()) return;
    input.value = String(lightOf(led));
    say(led.on ? percent(led.brightness) : t('led.brightness_off', { percent: percent(led.brightness) }));
  }

  function request(value) {
    wanted = value;
    say(percent(value));
    pump();
  }

  async function pump() {
    if (sending !== null || wanted === null) return;
    const wait = lastSentAt + SEND_INTERVAL_MS - performance.now();
    if (wait > 0) {
      clearTimeout(timer);
      timer = setTimeout(pump, wait);
      return;
    }
    sending = wanted;
    wanted = null;
    lastSentAt = performance.now();
    try {
      await send(sending);
    } finally {
      sending = null;
    }
    if (wanted !== null) pump();
    else settle();
  }

  function settle() {
    if (!busy() && latest) show(latest);
  }

  const value = () => Math.round(Number(input.value));

  input.addEventListener('input', () => {
    if (dragging) moved = true;
    request(value());
  });
  input.addEventListener('pointerdown', (ev) => {
    if (ev.pointerType === 'mouse' && ev.button !== 0) return;
    dragging = true;
    moved = false;
    input.setPointerCapture(ev.pointerId);  // its release comes here, wherever the pointer is
  });
  // Let go: the value under the thumb is the person's choice, even if another client
  // changed the LED while they held it; so it is sent again unless ledd has it already
  // or it is on its way.
  const letGo = () => {
    if (!dragging) return;
    dragging = false;
    const chosen = value();
    const coming = wanted !== null ? wanted : sending;
    const known = coming === null && latest && lightOf(latest) === chosen;
    if (moved && coming !== chosen && !known) request(chosen);
    else settle();
  };
  input.addEventListener('pointerup', letGo);
  input.addEventListener('pointercancel', letGo);
  input.addEventListener('lostpointercapture', letGo);

  return { show };
}
