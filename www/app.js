// app.js -- the ledd dashboard: renders /api/state, follows /api/events, sends commands.
//
// One EventSource carries every state change (ledd pushes them; nothing here polls).
// Each state replaces the page's view wholesale, keyed by LED/button id, so two
// open pages converge on the same picture. The POST answers carry the new state too;
// a state older (lower seq) than the one shown is ignored.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const RECONNECT_MIN_MS = 500;
  const RECONNECT_MAX_MS = 5000;

  let shown = null;         // last rendered state
  let board = null;         // board.json, or null when missing
  let source = null;        // the EventSource
  let retryMs = RECONNECT_MIN_MS;
  let retryTimer = 0;
  let toastTimer = 0;

  // -- talking to the API -----------------------------------------------------
  async function post(url, body) {
    let response;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
        cache: 'no-store',
      });
    } catch (err) {
      toast('The dashboard is unreachable.');
      return;
    }
    let data = null;
    try { data = await response.json(); } catch (err) { /* not JSON: handled below */ }
    if (!response.ok) {
      toast((data && data.error) || ('Request failed: HTTP ' + response.status));
      if (response.status === 503) setConn('down');
      return;
    }
    if (data) render(data, false);
  }

  function toast(message) {
    const el = $('toast');
    el.textContent = message;
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.hidden = true; }, 4000);
  }

  // -- the connection ---------------------------------------------------------
  const CONN_TEXT = {
    connecting: 'Connecting…',
    live: 'Live',
    reconnecting: 'Reconnecting…',
    down: 'ledd is not running — retrying',
  };

  function setConn(kind) {
    $('conn').dataset.conn = kind;
    $('conn-text').textContent = CONN_TEXT[kind];
    document.body.classList.toggle('stale', kind !== 'live');
  }

  function connect() {
    clearTimeout(retryTimer);
    if (source) source.close();
    let fresh = true;
    source = new EventSource('/api/events');
    source.addEventListener('state', (ev) => {
      retryMs = RECONNECT_MIN_MS;
      setConn('live');
      render(JSON.parse(ev.data), fresh);  // a new stream's first state may have a lower seq (ledd restarted)
      fresh = false;
    });
    source.addEventListener('down', () => setConn('down'));
    source.addEventListener('error', () => {
      fresh = true;
      if (source.readyState === EventSource.CLOSED) {
        // The server refused the stream (503 while ledd is down): find out why, retry ourselves.
        diagnose();
        retryTimer = setTimeout(connect, retryMs);
        retryMs = Math.min(retryMs * 2, RECONNECT_MAX_MS);
      } else if ($('conn').dataset.conn !== 'down') {
        setConn('reconnecting');  // EventSource retries by itself
      }
    });
  }

  async function diagnose() {
    try {
      const response = await fetch('/api/state', { cache: 'no-store' });
      setConn(response.status === 503 ? 'down' : 'reconnecting');
    } catch (err) {
      setConn('reconnecting');
    }
  }

  // -- rendering --------------------------------------------------------------
  function render(state, force) {
    if (!force && shown && typeof state.seq === 'number' && state.seq < shown.seq) return;
    if (!shown || shapeOf(shown) !== shapeOf(state)) build(state);
    shown = state;
    state.leds.forEach(updateLed);
    state.buttons.forEach(updateButton);
    $('backend').textContent = 'backend: ' + state.backend;
    $('seq').textContent = 'seq ' + state.seq;
    renderPinout();
  }

  // The cards are rebuilt only when the configuration (ids, names, pins) changes.
  function shapeOf(state) {
    const part = (x) => x.id + ':' + x.name + ':' + x.gpio;
    return state.backend + '|' + state.leds.map(part).join(',') + '|' + state.buttons.map(part).join(',');
  }

  function build(state) {
    const leds = $('leds');
    const buttons = $('buttons');
    leds.replaceChildren(...state.leds.map(makeLed));
    buttons.replaceChildren(...state.buttons.map((b) => makeButton(b, state.backend === 'sim')));
    $('no-buttons').hidden = state.buttons.length > 0;
  }

  function fromTemplate(id) {
    return $(id).content.firstElementChild.cloneNode(true);
  }

  // An LED named after a colour is drawn in it; others take the palette in turn.
  const NAMED_COLOURS = { red: '#ff4d4d', green: '#3ddc84', yellow: '#ffd84d', amber: '#ffb020', orange: '#ff8c3a',
    blue: '#4d8dff', white: '#f2f4f8', purple: '#b36bff', pink: '#ff6bb5' };
  const PALETTE = ['#ff4d4d', '#3ddc84', '#ffb020', '#4d8dff', '#b36bff'];

  function colourOf(led) {
    const key = Object.keys(NAMED_COLOURS).find((c) => led.name.toLowerCase().includes(c));
    return key ? NAMED_COLOURS[key] : PALETTE[led.id % PALETTE.length];
  }

  function buttonLabel(button) {
    return /button/i.test(button.name) ? button.name : button.name + ' button';
  }

  function makeLed(led) {
    const card = fromTemplate('led-template');
    card.id = 'led-' + led.id;
    card.style.setProperty('--lit', colourOf(led));
    card.dataset.id = led.id;
    card.querySelector('.name').textContent = led.name;
    card.querySelector('.where').textContent = where(led.gpio);
    const toggle = card.querySelector('.led-toggle');
    toggle.addEventListener('click', () => post('/api/leds/' + led.id, { toggle: true }));
    const period = card.querySelector('.period');
    period.id = 'period-' + led.id;
    period.setAttribute('aria-label', led.name + ' blink period in milliseconds');
    card.querySelector('.blink').setAttribute('aria-label', 'Blink ' + led.name);
    card.querySelector('.blink').addEventListener('click', () => {
      const ms = Math.round(Number(period.value));
      if (!(ms >= Number(period.min) && ms <= Number(period.max))) {
        toast('The period must be ' + period.min + '–' + period.max + ' ms.');
        period.focus();
        return;
      }
      const on = Math.round(ms / 2);  // min="40": both halves stay >= ledd's 20 ms
      post('/api/leds/' + led.id, { blink: { on_ms: on, off_ms: ms - on } });
    });
    return card;
  }

  function updateLed(led) {
    const card = $('led-' + led.id);
    if (!card) return;
    const blinking = !!led.blink;
    card.dataset.on = String(led.on);
    card.dataset.blink = String(blinking);
    const toggle = card.querySelector('.led-toggle');
    toggle.setAttribute('aria-pressed', String(led.on));
    toggle.setAttribute('aria-label', led.name + ' LED: ' + stateText(led) + '. Press to switch ' + (led.on ? 'off' : 'on'));
    card.querySelector('.state').textContent = stateText(led);
    const lamp = card.querySelector('.lamp');
    if (blinking) {
      const total = led.blink.on_ms + led.blink.off_ms;
      lamp.style.animationDuration = total + 'ms';
    } else {
      lamp.style.animationDuration = '';
    }
  }

  function stateText(led) {
    if (led.blink) return 'BLINK ' + led.blink.on_ms + '/' + led.blink.off_ms + ' ms';
    return led.on ? 'ON' : 'OFF';
  }

  function makeButton(button, simulated) {
    const card = fromTemplate('button-template');
    card.id = 'button-' + button.id;
    card.dataset.id = button.id;
    card.querySelector('.name').textContent = button.name;
    card.querySelector('.where').textContent = where(button.gpio);
    if (simulated) {
      const press = card.querySelector('.press');
      press.hidden = false;
      press.setAttribute('aria-label', 'Hold to press the simulated ' + button.name);
      holdable(press, (down) => post('/api/buttons/' + button.id, { pressed: down }));
    }
    return card;
  }

  // Pointer down = press, up = release; Space/Enter held = pressed, too.
  function holdable(el, send) {
    let held = false;
    const set = (down) => {
      if (held === down) return;
      held = down;
      el.setAttribute('aria-pressed', String(down));
      el.classList.toggle('held', down);
      send(down);
    };
    el.addEventListener('pointerdown', (ev) => {
      if (ev.button !== 0) return;
      el.setPointerCapture(ev.pointerId);
      set(true);
    });
    el.addEventListener('pointerup', () => set(false));
    el.addEventListener('pointercancel', () => set(false));
    el.addEventListener('lostpointercapture', () => set(false));
    el.addEventListener('keydown', (ev) => {
      if ((ev.key === ' ' || ev.key === 'Enter') && !ev.repeat) { ev.preventDefault(); set(true); }
    });
    el.addEventListener('keyup', (ev) => {
      if (ev.key === ' ' || ev.key === 'Enter') { ev.preventDefault(); set(false); }
    });
    el.addEventListener('blur', () => set(false));
    el.addEventListener('contextmenu', (ev) => ev.preventDefault());  // long press on phones
  }

  function updateButton(button) {
    const card = $('button-' + button.id);
    if (!card) return;
    card.dataset.pressed = String(button.pressed);
    card.querySelector('.state').textContent = button.pressed ? 'PRESSED' : 'released';
    card.querySelector('.presses').textContent = String(button.presses);
    card.querySelector('.last').textContent = button.last_press_ms
      ? 'last press ' + new Date(button.last_press_ms).toLocaleTimeString() : 'never pressed';
  }

  // -- wiring -----------------------------------------------------------------
  function pinOf(gpio) {
    if (!board || gpio === undefined || gpio === null) return null;
    return board.pins.find((p) => p.gpio === gpio) || null;
  }

  function where(gpio) {
    if (gpio === undefined || gpio === null) return '';
    const pin = pinOf(gpio);
    return 'GPIO' + gpio + (pin ? ' · physical pin ' + pin.pin : '');
  }

  function renderPinout() {
    const list = $('pinout');
    if (!board || !shown) return;
    const users = new Map();
    shown.leds.forEach((l) => users.set(l.gpio, { kind: 'led', label: l.name + ' LED', colour: colourOf(l) }));
    shown.buttons.forEach((b) => users.set(b.gpio, { kind: 'button', label: buttonLabel(b) }));
    const key = JSON.stringify([...users]);
    if (list.dataset.key === key) return;
    list.dataset.key = key;
    list.replaceChildren(...board.pins.map((pin) => {
      const item = document.createElement('li');
      item.className = 'pin col' + pin.col;
      const use = pin.gpio === null ? null : users.get(pin.gpio);
      if (use) item.classList.add('used', use.kind);
      if (pin.name === 'GND') item.classList.add('gnd');
      if (/V$/.test(pin.name)) item.classList.add('power');
      const number = document.createElement('span');
      number.className = 'pin-no';
      number.textContent = pin.pin;
      if (use && use.colour) number.style.setProperty('--lit', use.colour);
      const label = document.createElement('span');
      label.className = 'pin-name';
      label.textContent = use ? pin.name + ' · ' + use.label : pin.name;
      item.append(number, label);
      return item;
    }));
  }

  async function loadBoard() {
    try {
      const response = await fetch('/board.json');
      if (!response.ok) throw new Error('HTTP ' + response.status);
      board = await response.json();
      $('board-model').textContent = 'Raspberry Pi ' + board.model + ' (' + board.header + ')';
    } catch (err) {
      board = null;
      $('board-missing').hidden = false;
    }
    if (shown) {
      build(shown);
      render(shown, true);
    }
  }

  // -- start ------------------------------------------------------------------
  function start() {
    $('all-on').addEventListener('click', () => post('/api/leds', { on: true }));
    $('all-off').addEventListener('click', () => post('/api/leds', { on: false }));
    setConn('connecting');
    loadBoard();
    connect();
  }

  start();
}());
