// actions.js -- a button's actions (on_press/on_release in ledd.conf) in the page's words.
//
// The page never reads ledd's action grammar: GET /api/actions hands every action as data
// (its verb and arguments by name, from ledd's verb table, with the text ledd reports in the
// state). The state names an action by that text only; the data for a text is fetched once,
// and again when a text turns up that the page has no data for (ledd reloaded its config).
// The words come from lang.js: "action.<verb>" (an on/off argument adds "_on" or "_off"),
// with the arguments by name; a verb without words there is shown as ledd wrote it.
import { hasText, num, percent, t } from './lang.js';

const known = new Map();   // action text -> {text, verb, args}
const waiting = new Set(); // texts seen in a state, data asked for
const asWritten = new Set(); // texts the server had no data for (or no answer): shown as written
let asking = false;        // a GET /api/actions is in flight

// The words for `text`, or null while its data is on the way (`onData` is called once it
// is there). `ledName(ref)` names an LED that the action gives by index.
export function actionWords(text, ledName, onData) {
  const action = known.get(text);
  if (!action) {
    if (asWritten.has(text)) return text;
    waiting.add(text);
    fetchActions(onData);
    return null;
  }
  if (!action.verb) return action.text;
  const flags = Object.values(action.args).filter((v) => typeof v === 'boolean');
  const key = 'action.' + action.verb.toLowerCase() + flags.map((on) => (on ? '_on' : '_off')).join('');
  if (!hasText(key)) return action.text;
  const params = {};
  for (const [name, value] of Object.entries(action.args)) {
    if (name === 'led') params.led = ledName(String(value));
    else if (name === 'percent') params.percent = percent(value);
    else if (typeof value === 'number') params[name] = num(value);
  }
  return t(key, params);
}

async function fetchActions(onData) {
  if (asking) return;
  asking = true;
  await null;  // every text of the state being shown is in `waiting` now: one GET for them all
  const asked = new Set(waiting);
  let body = null;
  try {
    const response = await fetch('/api/actions', { cache: 'no-store' });
    if (response.ok) body = await response.json();
  } catch (err) { /* ledd or the server is down: the texts as written */ }
  for (const button of body && Array.isArray(body.buttons) ? body.buttons : []) {
    for (const action of [button.on_press, button.on_release]) {
      if (action && typeof action.text === 'string') known.set(action.text, action);
    }
  }
  for (const text of asked) {
    waiting.delete(text);
    if (!known.has(text)) asWritten.add(text);
  }
  asking = false;
  if (waiting.size) fetchActions(onData);  // texts seen while this one was on the way
  onData();
}
