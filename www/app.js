// app.js -- the ledd dashboard: renders /api/state, follows /api/events, sends commands.
//
// One event stream carries every state change (ledd pushes them; nothing here polls).
// Each state replaces the page's view wholesale, keyed by LED/button id, so two
// open pages converge on the same picture. The POST answers carry the new state too;
// a state older (lower seq) than the one shown is ignored.
//
// Every text comes from lang.js (www/i18n/<lang>.json). The same script translates
// error.html, which has no dashboard in it.
import { actionWords } from './actions.js';
import { brightnessSlider } from './brightness.js';
import { DEFAULT_LANGUAGE, chooseLanguage, hasText, loadLanguage, num, setUpLanguageSwitch, t, tn, when } from './lang.js';

const $ = (id) => document.getElementById(id);
const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 5000;
const RETRY_AFTER_MAX_MS = 60000;  // a server's Retry-After is honoured up to this
const STATE_REREAD_TRIES = 5;      // GET /api/state after a 504, with backoff
const TOAST_MS = 6000;

// -- talking to the API -----------------------------------------------------
// An error answer as {status, code, message, retryAfterMs}. The API's messages are
// English for programs: the page shows its own text per code, theirs as detail.
async function readProblem(response) {
  let body = null;
  try { body = await response.json(); } catch (err) { /* not JSON (a proxy's page) */ }
  return {
    status: response.status,
    code: body && typeof body.code === 'string' ? body.code : '',
    message: body && typeof body.error === 'string' ? body.error : '',
    retryAfterMs: retryAfterMs(response.headers.get('Retry-After')),
  };
}

function retryAfterMs(header) {
  if (!header) return 0;
  const ms = /^\d+$/.test(header.trim()) ? Number(header) * 1000 : Date.parse(header) - Date.now();
  if (!(ms > 0)) return 0;
  return Math.min(ms, RETRY_AFTER_MAX_MS);
}

function problemText(problem) {
  const key = 'error.' + problem.code;
  if (problem.code && hasText(key)) return t(key);
  return t(problem.status >= 500 ? 'error.server' : 'error.request', { status: problem.status });
}

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
    toast(t('error.unreachable'));
    return;
  }
  if (response.ok) {
    let data = null;
    try { data = await response.json(); } catch (err) { /* no state to show: the stream brings it */ }
    if (data) render(data, false);
    if (connKind === 'down' || connKind === 'reconnecting') connect();  // the server is back: no need to wait for the retry
    return;
  }
  const problem = await readProblem(response);
  toast(problemText(problem), problem.message);
  if (response.status === 504) {
    // The command was written before ledd stopped answering: it may run yet.
    // Assume nothing; show what ledd has (the stream also brings any later change).
    rereadState();
  } else if (problem.code === 'daemon_down') {
    // Commands are not retried by themselves: a toggle applied long after the
    // click would surprise. The stream reconnects and shows when ledd is back.
    setConn('down');
  }
}

async function rereadState() {
  let waitMs = RECONNECT_MIN_MS;
  for (let attempt = 0; attempt < STATE_REREAD_TRIES; attempt++) {
    let problem = null;
    try {
      const response = await fetch('/api/state', { cache: 'no-store' });
      if (response.ok) {
        render(await response.json(), false);
        return;
      }
      problem = await readProblem(response);
      if (problem.code === 'daemon_down') setConn('down');
      if (response.status !== 503 && response.status !== 504) return;
    } catch (err) { /* unreachable: try again */ }
    await sleep(Math.max(waitMs, problem ? problem.retryAfterMs : 0));
    waitMs = Math.min(waitMs * 2, RECONNECT_MAX_MS);
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function toast(message, detail) {
  $('toast-text').textContent = message;
  const more = $('toast-detail');
  more.textContent = detail || '';
  more.hidden = !detail;
  $('toast').hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { $('toast').hidden = true; }, TOAST_MS);
}

// -- the event stream -------------------------------------------------------
// Server-Sent Events read through fetch rather than EventSource, which hides the
// status of a refused stream: a 503 tells here whether ledd is down or the server
// is full ("busy"), and its Retry-After is honoured. Like EventSource, the page
// sends Last-Event-ID (the last seq seen) when it reconnects.
let shown = null;         // last rendered state
let board = null;         // board.json, or null when missing
let stream = null;        // AbortController of the open stream
let lastEventId = '';
let baseRetryMs = RECONNECT_MIN_MS;  // the server's retry: field, within our bounds
let retryMs = RECONNECT_MIN_MS;
let retryTimer = 0;
let toastTimer = 0;
let connKind = 'connecting';

const CONN_TEXT = { connecting: 'conn.connecting', live: 'conn.live', reconnecting: 'conn.reconnecting', down: 'conn.down' };

function setConn(kind) {
  connKind = kind;
  $('conn').dataset.conn = kind;
  $('conn-text').textContent = t(CONN_TEXT[kind]);
  document.body.classList.toggle('stale', kind !== 'live');
}

async function connect() {
  clearTimeout(retryTimer);
  if (stream) stream.abort();
  const mine = new AbortController();
  stream = mine;
  const headers = { Accept: 'text/event-stream' };
  if (lastEventId) headers['Last-Event-ID'] = lastEventId;
  let fresh = true;   // a new stream's first state may have a lower seq (ledd restarted)
  let down = false;
  try {
    const response = await fetch('/api/events', { headers, cache: 'no-store', signal: mine.signal });
    if (!response.ok) {
      // 503 daemon_down: ledd is not running; busy (or any other): the server is full.
      const problem = await readProblem(response);
      if (stream === mine) retryLater(problem.code === 'daemon_down' ? 'down' : 'reconnecting', problem.retryAfterMs);
      return;
    }
    await readEvents(response.body, (event) => {
      if (event.type === 'state') {
        retryMs = baseRetryMs;
        down = false;
        setConn('live');
        render(JSON.parse(event.data), fresh);
        fresh = false;
      } else if (event.type === 'down') {
        down = true;
        setConn('down');
      }
    });
  } catch (err) {
    if (mine.signal.aborted) return;  // replaced by a newer stream
  }
  if (stream !== mine) return;
  retryLater(down ? 'down' : 'reconnecting', 0);
}

function retryLater(kind, atLeastMs) {
  setConn(kind);
  clearTimeout(retryTimer);
  retryTimer = setTimeout(connect, Math.max(retryMs, atLeastMs));
  retryMs = Math.min(retryMs * 2, RECONNECT_MAX_MS);
}

// The SSE format (id:, event:, data:, retry:, comments), one event per blank line.
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let type = '';
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    const lines = buffer.split('\n');
    buffer = lines.pop();
    for (const raw of lines) {
      const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      if (line === '') {
        if (data.length) onEvent({ type: type || 'message', data: data.join('\n') });
        type = '';
        data = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let text = colon < 0 ? '' : line.slice(colon + 1);
      if (text.startsWith(' ')) text = text.slice(1);
      if (field === 'event') type = text;
      else if (field === 'data') data.push(text);
      else if (field === 'id' && !text.includes('\0')) lastEventId = text;
      else if (field === 'retry' && /^\d+$/.test(text)) baseRetryMs = Math.min(Math.max(Number(text), RECONNECT_MIN_MS), RECONNECT_MAX_MS);
    }
  }
}

// -- rendering --------------------------------------------------------------
function render(state, force) {
  if (!force && shown && typeof state.seq === 'number' && state.seq < shown.seq) return;
  if (!shown || shapeOf(shown) !== shapeOf(state)) build(state);
  shown = state;
  state.leds.forEach(updateLed);
  state.buttons.forEach(updateButton);
  $('backend').textContent = t('foot.backend', { backend: state.backend });
  $('seq').textContent = t('foot.seq', { seq: state.seq });
  renderPinout();
}

// After a language switch: every text made here is made again.
function rerender() {
  setConn(connKind);
  renderBoardModel();
  redraw();
}

// The cards made again for the state shown, after what they are made of changed (language, board).
function redraw() {
  if (!shown) return;
  build(shown);
  render(shown, true);
}

// The cards are rebuilt only when the configuration (ids, names, pins) changes.
function shapeOf(state) {
  const part = (x) => x.id + ':' + x.name + ':' + x.gpio;
  return state.backend + '|' + state.leds.map(part).join(',') + '|' + state.buttons.map(part).join(',');
}

let sliders = new Map();   // LED id -> its card's brightness slider

function build(state) {
  sliders = new Map();
  $('leds').replaceChildren(...state.leds.map(makeLed));
  $('buttons').replaceChildren(...state.buttons.map((b) => makeButton(b, state.backend === 'sim')));
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

function ledLabel(led) {
  return t('led.named', { name: led.name });
}

// ledd's name for a button ledd.conf does not name (cdaemon/src/config.c): the English word.
const DEFAULT_BUTTON_NAME = 'button';

// A button named "button" is the language's word for it ("bouton"); a name that already
// says it is a button, in English or in the page's language, stays as it is. Never
// "button button" nor "bouton button".
function buttonLabel(button) {
  const name = button.name.toLowerCase();
  const word = t('button.word');
  if (name === DEFAULT_BUTTON_NAME) return word;
  if (name.includes(word.toLowerCase()) || name.includes(DEFAULT_BUTTON_NAME)) return button.name;
  return t('button.named', { name: button.name });
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
  sliders.set(led.id, brightnessSlider(card.querySelector('.brightness-row'), 'brightness-' + led.id,
    t('led.brightness_label', { led: ledLabel(led) }), (value) => post('/api/leds/' + led.id, { brightness: value })));
  const period = card.querySelector('.period');
  period.id = 'period-' + led.id;
  period.setAttribute('aria-label', t('led.period_label', { led: ledLabel(led) }));
  const blink = card.querySelector('.blink');
  blink.setAttribute('aria-label', t('led.blink_label', { led: ledLabel(led) }));
  blink.addEventListener('click', () => {
    const ms = Math.round(Number(period.value));
    if (!(ms >= Number(period.min) && ms <= Number(period.max))) {
      toast(t('led.period_range', { min: Number(period.min), max: Number(period.max) }));
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
  const label = led.on ? 'led.toggle_label_lit' : 'led.toggle_label_dark';
  toggle.setAttribute('aria-label', t(label, { led: ledLabel(led), state: stateText(led) }));
  card.querySelector('.state').textContent = stateText(led);
  sliders.get(led.id).show(led);
  // The lamp glows as bright as the LED (a ledd from before brightness: fully).
  card.style.setProperty('--brightness', String(typeof led.brightness === 'number' ? led.brightness / 100 : 1));
  const lamp = card.querySelector('.lamp');
  lamp.style.animationDuration = blinking ? (led.blink.on_ms + led.blink.off_ms) + 'ms' : '';
}

function stateText(led) {
  if (led.blink) return t('led.blink', led.blink);
  return t(led.on ? 'led.on' : 'led.off');
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
    press.setAttribute('aria-label', t('button.hold_label', { button: buttonLabel(button) }));
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
  card.querySelector('.state').textContent = t(button.pressed ? 'button.pressed' : 'button.released');
  card.querySelector('.presses').textContent = num(button.presses);
  card.querySelector('.presses-label').textContent = tn('button.presses', button.presses);
  card.querySelector('.last').textContent = button.last_press_ms
    ? t('button.last_press', { time: when(button.last_press_ms) }) : t('button.never');
  showAction(card.querySelector('.on-press'), 'button.on_press', button.on_press);
  showAction(card.querySelector('.on-release'), 'button.on_release', button.on_release);
}

// A button's action configured in ledd.conf (on_press/on_release; absent on older daemons),
// in words from the server's data for it (actions.js); hidden until they are there.
function showAction(el, key, action) {
  const text = typeof action === 'string' && action.trim()
    ? actionWords(action, ledName, () => shown && shown.buttons.forEach(updateButton)) : null;
  el.hidden = !text;
  el.textContent = text ? t(key, { action: text }) : '';
}

// An LED given by index in ledd.conf is shown by its name.
function ledName(ref) {
  const led = shown && /^\d+$/.test(ref) ? shown.leds.find((l) => String(l.id) === ref) : null;
  return led ? led.name : ref;
}

// -- wiring -----------------------------------------------------------------
function pinOf(gpio) {
  if (!board || gpio === undefined || gpio === null) return null;
  return board.pins.find((p) => p.gpio === gpio) || null;
}

function where(gpio) {
  if (gpio === undefined || gpio === null) return '';
  const pin = pinOf(gpio);
  return pin ? t('where.pin', { gpio, pin: pin.pin }) : 'GPIO' + gpio;
}

function renderPinout() {
  const list = $('pinout');
  if (!board || !shown) return;
  const users = new Map();
  shown.leds.forEach((l) => users.set(l.gpio, { kind: 'led', label: ledLabel(l), colour: colourOf(l) }));
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
    number.textContent = num(pin.pin);
    if (use && use.colour) number.style.setProperty('--lit', use.colour);
    const label = document.createElement('span');
    label.className = 'pin-name';
    label.textContent = use ? pin.name + ' · ' + use.label : pin.name;
    item.append(number, label);
    return item;
  }));
}

function renderBoardModel() {
  if (board) $('board-model').textContent = 'Raspberry Pi ' + board.model + ' (' + board.header + ')';
}

async function loadBoard() {
  try {
    const response = await fetch('/board.json');
    if (!response.ok) throw new Error('HTTP ' + response.status);
    board = await response.json();
    renderBoardModel();
  } catch (err) {
    board = null;
    $('board-missing').hidden = false;
  }
  redraw();
}

// -- start ------------------------------------------------------------------
async function start() {
  try {
    await loadLanguage(chooseLanguage());
  } catch (err) {
    // No translation file: the page's own English stays, and so do English messages.
    try { await loadLanguage(DEFAULT_LANGUAGE); } catch (err2) { /* the markup's English */ }
  }
  document.documentElement.classList.remove('i18n-pending');
  if (!$('leds')) return;  // error.html: translated, nothing else to do
  setUpLanguageSwitch($('lang'), rerender, (text) => toast(text));
  $('all-on').addEventListener('click', () => post('/api/leds', { on: true }));
  $('all-off').addEventListener('click', () => post('/api/leds', { on: false }));
  setConn('connecting');
  loadBoard();
  connect();
}

start();
