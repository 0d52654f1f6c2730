// Labels, numbers and month arithmetic shared by every view.

export const METHODS = [
  ['body_part', 'Body part (hit, kicked)'],
  ['blunt_object', 'Blunt object'],
  ['sharp_object', 'Sharp object (knife, glass)'],
  ['firearm', 'Firearm'],
  ['other', 'Other'],
  ['not_known', 'Not known'],
];

export const PLACES = [
  ['street', 'Street, public place'],
  ['licensed_premises', 'Licensed premises'],
  ['home', 'Home'],
  ['workplace', 'Workplace'],
  ['education', 'School, college'],
  ['public_transport', 'Public transport'],
  ['other', 'Other'],
  ['not_known', 'Not known'],
];

export const AGES = [
  ['0-9', '0-9'], ['10-17', '10-17'], ['18-24', '18-24'], ['25-34', '25-34'],
  ['35-44', '35-44'], ['45-54', '45-54'], ['55-64', '55-64'], ['65+', '65+'],
  ['unknown', 'Unknown'],
];

export const SEXES = [
  ['female', 'Female'], ['male', 'Male'], ['other', 'Other'], ['not_known', 'Not known'],
];

export const WEEKDAYS = [
  ['mon', 'Mon'], ['tue', 'Tue'], ['wed', 'Wed'], ['thu', 'Thu'],
  ['fri', 'Fri'], ['sat', 'Sat'], ['sun', 'Sun'],
];

/** The label of a coded value, else the value itself. */
export function label(list, code) {
  const found = list.find(([c]) => c === code);
  return found ? found[1] : code;
}

const NUMBER = new Intl.NumberFormat('en-GB');

/** A published figure as text: "1,234", "suppressed" or "0". */
export function figure(row) {
  if (!row) return '0';
  if (row.suppressed || row.count === null || row.count === undefined) return 'suppressed';
  return NUMBER.format(row.count);
}

/** A plain number as text. */
export function num(n) {
  return NUMBER.format(n);
}

/** "2024-03" plus n months. */
export function addMonths(month, n) {
  const [y, m] = month.split('-').map(Number);
  const i = y * 12 + (m - 1) + n;
  return `${Math.floor(i / 12)}-${String((i % 12) + 1).padStart(2, '0')}`;
}

/** Months from a to b inclusive ("2024-01".."2024-03"). */
export function monthsBetween(a, b) {
  const out = [];
  for (let m = a; m <= b && out.length < 600; m = addMonths(m, 1)) out.push(m);
  return out;
}

/** The last day of a month, "2024-02" -> "2024-02-29". */
export function lastDay(month) {
  const [y, m] = month.split('-').map(Number);
  const d = new Date(Date.UTC(y, m, 0)).getUTCDate();
  return `${month}-${String(d).padStart(2, '0')}`;
}

const MONTH_NAMES = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** "2024-03" -> "Mar 2024". */
export function monthName(month) {
  const [y, m] = month.split('-').map(Number);
  return `${MONTH_NAMES[m - 1]} ${y}`;
}

/** The change from b to a as text: "+12 (+8%)". */
export function change(a, b) {
  if (a === null || b === null) return 'n/a';
  const d = a - b;
  const sign = d > 0 ? '+' : '';
  const pct = b > 0 ? `, ${sign}${Math.round((d / b) * 100)}%` : '';
  return `${sign}${num(d)}${pct}`;
}
