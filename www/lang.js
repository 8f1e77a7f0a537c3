// lang.js -- the dashboard's languages: which one to show, its strings, and numbers,
// percentages and times written its way.
//
// Every text the page shows comes from www/i18n/<lang>.json (English is the reference);
// only the chosen language's file is fetched. t('key', {params}) gives a text,
// tn('key', count) a counted noun; a missing key shows as itself (tests forbid it).
// app.js owns the page; this module only knows about words and the language switch.

const hasOwn = (obj, key) => Object.prototype.hasOwnProperty.call(obj, key);

// To add a language: copy i18n/en.json to i18n/<code>.json, translate every value,
// and list it here under its own name. tests/web/test_i18n.py checks the keys.
export const LANGUAGES = { en: 'English', fr: 'Français', es: 'Español' };
export const DEFAULT_LANGUAGE = 'en';
const LANGUAGE_STORE = 'ledd-language';  // localStorage: the switch's choice

let lang = DEFAULT_LANGUAGE;
let strings = {};
let plurals = new Intl.PluralRules(DEFAULT_LANGUAGE);
let numberFormat = new Intl.NumberFormat(DEFAULT_LANGUAGE);
let percentFormat = new Intl.NumberFormat(DEFAULT_LANGUAGE, { style: 'percent' });
let timeFormat = null;
let dateTimeFormat = null;

// Every number the page shows is written the language's way: 12,345 / 12 345 / 12.345.
export const num = (n) => numberFormat.format(n);

// A percentage the language's way: 30% / 30 % / 30 %.
export const percent = (n) => percentFormat.format(n / 100);

export const hasText = (key) => hasOwn(strings, key);

export function t(key, params) {
  const text = hasOwn(strings, key) ? strings[key] : key;
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (match, name) => {
    if (!hasOwn(params, name)) return match;
    return typeof params[name] === 'number' ? num(params[name]) : String(params[name]);
  });
}

// A counted noun: key.one, key.other, ... as Intl.PluralRules names the forms.
export function tn(key, count, params) {
  const form = key + '.' + plurals.select(count);
  return t(hasOwn(strings, form) ? form : key + '.other', params);
}

// The time alone for today, with the date otherwise.
export function when(ms) {
  const date = new Date(ms);
  const today = new Date().toDateString() === date.toDateString();
  return (today ? timeFormat : dateTimeFormat).format(date);
}

function storedLanguage() {
  try {
    return localStorage.getItem(LANGUAGE_STORE);
  } catch (err) {
    return null;  // storage disabled: follow the browser
  }
}

export function chooseLanguage() {
  const stored = storedLanguage();
  if (stored && hasOwn(LANGUAGES, stored)) return stored;
  for (const tag of navigator.languages || [navigator.language || '']) {
    const base = String(tag).toLowerCase().split('-')[0];
    if (hasOwn(LANGUAGES, base)) return base;
  }
  return DEFAULT_LANGUAGE;
}

// The browser's own regional variant when it has one (en-GB, es-MX): dates read as at home.
function localeFor(code) {
  const tags = navigator.languages || [];
  return tags.find((tag) => String(tag).toLowerCase().split('-')[0] === code) || code;
}

async function fetchStrings(code) {
  const response = await fetch('/i18n/' + code + '.json');
  if (!response.ok) throw new Error('HTTP ' + response.status);
  return response.json();
}

function useLanguage(code, table) {
  lang = code;
  strings = table;
  const locale = localeFor(code);
  plurals = new Intl.PluralRules(locale);
  numberFormat = new Intl.NumberFormat(locale);
  percentFormat = new Intl.NumberFormat(locale, { style: 'percent' });
  timeFormat = new Intl.DateTimeFormat(locale, { timeStyle: 'medium' });
  dateTimeFormat = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'medium' });
  document.documentElement.lang = code;
  translateStatic(document);
}

export async function loadLanguage(code) {
  useLanguage(code, await fetchStrings(code));
}

// The page's fixed texts: data-i18n sets the text, data-i18n-label the aria-label.
function translateStatic(root) {
  root.querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = t(el.dataset.i18n); });
  root.querySelectorAll('[data-i18n-label]').forEach((el) => el.setAttribute('aria-label', t(el.dataset.i18nLabel)));
  root.querySelectorAll('template').forEach((template) => translateStatic(template.content));
}

// The switch: the last choice wins, whichever file arrives first. onSwitched() redraws
// what the page made itself; onFailed(text) tells that the language could not be loaded.
export function setUpLanguageSwitch(select, onSwitched, onFailed) {
  select.replaceChildren(...Object.keys(LANGUAGES).map((code) => {
    const option = document.createElement('option');
    option.value = code;
    option.lang = code;  // each name is read in its own language
    option.textContent = LANGUAGES[code];
    return option;
  }));
  select.value = lang;
  let choices = 0;
  select.addEventListener('change', async () => {
    const code = select.value;
    const choice = ++choices;
    let table;
    try {
      table = await fetchStrings(code);
    } catch (err) {
      if (choice !== choices) return;
      // Not switched, so not remembered either: the next visit is in the language shown.
      select.value = lang;
      onFailed(t('page.language_failed', { language: LANGUAGES[code] }));
      return;
    }
    if (choice !== choices) return;
    useLanguage(code, table);
    try {
      localStorage.setItem(LANGUAGE_STORE, code);
    } catch (err) { /* not remembered, still switched */ }
    onSwitched();
  });
}
