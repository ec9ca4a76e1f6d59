// Names, avatars and times as the user reads them.

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const weekdayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'short' });
const shortDateFmt = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short' });
const longDateFmt = new Intl.DateTimeFormat(undefined, { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'medium' });

export const clock = (d) => timeFmt.format(d);
export const fullTime = (d) => fullFmt.format(d);

/** A local-day key, e.g. "2026-11-23". */
export function dayKey(d) {
  return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
}

function daysAgo(d, now = new Date()) {
  const a = new Date(d.getFullYear(), d.getMonth(), d.getDate());
  const b = new Date(now.getFullYear(), now.getMonth(), now.getDate());
  return Math.round((b - a) / 86_400_000);
}

/** "Today", "Yesterday", or the full date: the label of a day separator. */
export function dayLabel(d) {
  const n = daysAgo(d);
  return n === 0 ? 'Today' : n === 1 ? 'Yesterday' : longDateFmt.format(d);
}

/** The time shown in the conversation list: clock today, weekday this week, else the date. */
export function listTime(d) {
  const n = daysAgo(d);
  return n === 0 ? clock(d) : n < 7 ? weekdayFmt.format(d) : shortDateFmt.format(d);
}

/** "online", "away", "last seen today at 14:05", or "offline". */
export function presenceText(p) {
  if (!p) return '';
  if (p.status === 'online') return 'online';
  if (p.status === 'away') return 'away';
  if (!p.last_seen) return 'offline';
  const d = new Date(p.last_seen);
  const n = daysAgo(d);
  const day = n === 0 ? 'today' : n === 1 ? 'yesterday' : shortDateFmt.format(d);
  return `last seen ${day} at ${clock(d)}`;
}

export function initials(name) {
  const parts = name.split(/[\s._-]+/).filter(Boolean);
  const s = parts.length > 1 ? parts[0][0] + parts[1][0] : name.slice(0, 2);
  return s.toUpperCase();
}

/** One of eight avatar colours, stable per id. */
export function tint(id) {
  let n = 0;
  for (const ch of String(id)) n = (n * 31 + ch.charCodeAt(0)) >>> 0;
  return 'tint-' + (n % 8);
}

/** "alice is typing…", "alice and bob are typing…", "3 people are typing…". */
export function typingText(names) {
  if (names.length === 0) return '';
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return `${names.length} people are typing…`;
}
