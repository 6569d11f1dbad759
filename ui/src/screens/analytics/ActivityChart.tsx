import { useI18n } from '../../i18n';
import type { SeriesPoint } from '../../ipc';

const WIDTH = 600;
const HEIGHT = 160;
const PAD = 24;

/** Actions (area) and distinct people (line) per bucket, hand-drawn in SVG: a few dozen
 * points need no chart library. Time runs left to right in both languages, like a clock axis. */
export function ActivityChart({ points, bucketSecs }: { points: SeriesPoint[]; bucketSecs: number }) {
  const { t, time, number } = useI18n();
  const filled = fillGaps(points, bucketSecs);
  const total = filled.reduce((s, p) => s + p.events, 0);
  if (filled.length < 2 || total === 0) return <p className="muted">{t('analytics.chart_empty')}</p>;

  const max = Math.max(1, ...filled.map((p) => p.events));
  const x = (i: number) => PAD + (i * (WIDTH - 2 * PAD)) / (filled.length - 1);
  const y = (v: number) => HEIGHT - PAD - (v * (HEIGHT - 2 * PAD)) / max;
  const line = (key: 'events' | 'users') => filled.map((p, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y(p[key]).toFixed(1)}`).join('');
  const area = `${line('events')}L${x(filled.length - 1)},${HEIGHT - PAD}L${x(0)},${HEIGHT - PAD}Z`;
  const iso = (p: SeriesPoint) => new Date(p.start * 1000).toISOString();
  const people = filled.reduce((s, p) => Math.max(s, p.users), 0);

  return (
    <figure className="chart" dir="ltr">
      <svg
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        role="img"
        aria-label={`${t('analytics.chart_events')}: ${number(total)}, ${t('analytics.chart_users')}: ${number(people)}`}
      >
        <line className="axis" x1={PAD} x2={WIDTH - PAD} y1={HEIGHT - PAD} y2={HEIGHT - PAD} />
        <path className="area" d={area} />
        <path className="line events" d={line('events')} />
        <path className="line users" d={line('users')} />
        <text x={PAD} y={PAD - 8} className="tick">{number(max)}</text>
        <text x={PAD} y={HEIGHT - 6} className="tick">{time(iso(filled[0]!))}</text>
        <text x={WIDTH - PAD} y={HEIGHT - 6} className="tick" textAnchor="end">{time(iso(filled[filled.length - 1]!))}</text>
      </svg>
      <figcaption>
        <span className="key events">{t('analytics.chart_events')}</span>
        <span className="key users">{t('analytics.chart_users')}</span>
      </figcaption>
    </figure>
  );
}

/** The engine lists buckets that had activity; the chart needs every bucket of the span. */
export function fillGaps(points: SeriesPoint[], bucketSecs: number): SeriesPoint[] {
  if (points.length === 0) return [];
  const byStart = new Map(points.map((p) => [p.start, p]));
  const first = Math.min(...points.map((p) => p.start));
  const last = Math.max(...points.map((p) => p.start), Math.floor(Date.now() / 1000 / bucketSecs) * bucketSecs);
  const out: SeriesPoint[] = [];
  for (let s = first; s <= last; s += bucketSecs) out.push(byStart.get(s) ?? { start: s, events: 0, users: 0 });
  return out;
}
