import assert from 'node:assert/strict';
import type { Gateway } from './app.js';
import { call } from './http.js';

/**
 * A strict reader of Prometheus' text exposition format (version 0.0.4), for tests: every
 * line must be a comment, a `# HELP`, a `# TYPE` or a well-formed sample, and the whole must
 * hold together as Prometheus requires (a family's TYPE before its samples, its samples in
 * one block, no series twice, histogram buckets cumulative and ending in +Inf = _count).
 * Anything else throws, naming the line.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: MetricType;
  help: string | null;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES: ReadonlySet<string> = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

export function parsePrometheusText(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const seenSeries = new Set<string>();
  const closed = new Set<string>();
  let current: string | null = null;
  const lines = text.split('\n');
  if (lines.at(-1) !== '') throw new Error('the exposition must end with a newline');

  lines.forEach((line, index) => {
    const where = `line ${index + 1} (${JSON.stringify(line.slice(0, 120))})`;
    if (line === '') return;
    if (line.startsWith('#')) {
      const meta = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (!meta) {
        if (/^# (HELP|TYPE)\b/.test(line)) throw new Error(`malformed ${where}`);
        return; // a plain comment
      }
      const [, kind, name, rest = ''] = meta as unknown as [string, 'HELP' | 'TYPE', string, string?];
      if (!METRIC_NAME.test(name)) throw new Error(`bad metric name in ${where}`);
      if (closed.has(name)) throw new Error(`family ${name} is split in two blocks at ${where}`);
      if (current !== null && current !== name) closed.add(current);
      current = name;
      const family = families.get(name) ?? { name, type: 'untyped', help: null, samples: [] };
      if (kind === 'HELP') {
        if (family.help !== null) throw new Error(`second HELP for ${name} at ${where}`);
        family.help = unescapeHelp(rest, where);
      } else {
        if (!TYPES.has(rest)) throw new Error(`unknown type in ${where}`);
        if (family.samples.length > 0) throw new Error(`TYPE after samples of ${name} at ${where}`);
        if (families.has(name) && family.type !== 'untyped') throw new Error(`second TYPE for ${name} at ${where}`);
        family.type = rest as MetricType;
      }
      families.set(name, family);
      return;
    }
    const sample = parseSample(line, where);
    const familyName = familyOf(sample.name, families);
    if (closed.has(familyName)) throw new Error(`family ${familyName} is split in two blocks at ${where}`);
    if (current !== null && current !== familyName) closed.add(current);
    current = familyName;
    const family = families.get(familyName) ?? { name: familyName, type: 'untyped', help: null, samples: [] };
    families.set(familyName, family);
    checkSampleName(family, sample, where);
    const series = `${sample.name}${JSON.stringify(Object.entries(sample.labels).sort())}`;
    if (seenSeries.has(series)) throw new Error(`series given twice at ${where}`);
    seenSeries.add(series);
    family.samples.push(sample);
  });
  for (const family of families.values()) if (family.type === 'histogram') checkHistogram(family);
  return families;
}

/** The value of one series, or undefined when the family has no such series. */
export function sampleValue(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const family = families.get(name) ?? families.get(familyOf(name, families));
  const wanted = Object.entries(labels);
  const found = family?.samples.find(
    (s) =>
      s.name === name && wanted.every(([k, v]) => s.labels[k] === v) && Object.keys(s.labels).length === wanted.length,
  );
  return found?.value;
}

function parseSample(line: string, where: string): Sample {
  const head = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
  if (!head) throw new Error(`bad sample name in ${where}`);
  const name = head[1] as string;
  let at = name.length;
  const labels: Record<string, string> = {};
  if (line[at] === '{') {
    at++;
    while (line[at] !== '}') {
      const labelMatch = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(line.slice(at));
      if (!labelMatch) throw new Error(`bad label in ${where}`);
      const labelName = labelMatch[1] as string;
      if (!LABEL_NAME.test(labelName) || labelName.startsWith('__')) throw new Error(`bad label name in ${where}`);
      if (labelName in labels) throw new Error(`label ${labelName} twice in ${where}`);
      at += labelMatch[0].length;
      let value = '';
      for (;;) {
        const ch = line[at];
        if (ch === undefined) throw new Error(`unterminated label value in ${where}`);
        if (ch === '"') break;
        if (ch === '\\') {
          const next = line[at + 1];
          if (next === 'n') value += '\n';
          else if (next === '\\' || next === '"') value += next;
          else throw new Error(`bad escape in ${where}`);
          at += 2;
          continue;
        }
        value += ch;
        at++;
      }
      labels[labelName] = value;
      at++;
      if (line[at] === ',') at++;
      else if (line[at] !== '}') throw new Error(`expected , or } in ${where}`);
    }
    at++;
  }
  if (line[at] !== ' ') throw new Error(`expected a space before the value in ${where}`);
  const parts = line.slice(at + 1).split(' ');
  if (parts.length < 1 || parts.length > 2) throw new Error(`bad value in ${where}`);
  const value = parseValue(parts[0] as string, where);
  if (parts.length === 2 && !/^-?\d+$/.test(parts[1] as string)) throw new Error(`bad timestamp in ${where}`);
  return { name, labels, value };
}

/** As Go's ParseFloat reads it, which is what Prometheus uses: NaN and Inf in any case. */
function parseValue(text: string, where: string): number {
  const word = text.toLowerCase();
  if (word === 'nan') return NaN;
  if (word === '+inf' || word === 'inf' || word === '+infinity' || word === 'infinity') return Infinity;
  if (word === '-inf' || word === '-infinity') return -Infinity;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`bad value ${text} in ${where}`);
  return Number(text);
}

function unescapeHelp(text: string, where: string): string {
  return text.replace(/\\(.?)/g, (_, ch: string) => {
    if (ch === 'n') return '\n';
    if (ch === '\\') return '\\';
    throw new Error(`bad escape in HELP at ${where}`);
  });
}

/** The family a sample belongs to: itself, or the histogram/summary its suffix names. */
function familyOf(sampleName: string, families: Map<string, Family>): string {
  if (families.has(sampleName)) return sampleName;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!sampleName.endsWith(suffix)) continue;
    const base = sampleName.slice(0, -suffix.length);
    const type = families.get(base)?.type;
    if (type === 'histogram' || type === 'summary') return base;
  }
  return sampleName;
}

function checkSampleName(family: Family, sample: Sample, where: string): void {
  if (family.type === 'histogram') {
    if (![`${family.name}_bucket`, `${family.name}_sum`, `${family.name}_count`].includes(sample.name)) {
      throw new Error(`sample ${sample.name} does not belong to histogram ${family.name} at ${where}`);
    }
    if (sample.name.endsWith('_bucket') && sample.labels['le'] === undefined)
      throw new Error(`bucket without le at ${where}`);
    return;
  }
  if (family.type === 'summary') return;
  if (sample.name !== family.name) throw new Error(`sample ${sample.name} outside its family at ${where}`);
  if (family.type === 'counter' && (sample.value < 0 || Number.isNaN(sample.value))) {
    throw new Error(`counter with a negative or NaN value at ${where}`);
  }
}

function checkHistogram(family: Family): void {
  const groups = new Map<string, Sample[]>();
  for (const sample of family.samples) {
    const { le: _le, ...rest } = sample.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    groups.set(key, [...(groups.get(key) ?? []), sample]);
  }
  for (const [key, samples] of groups) {
    const buckets = samples.filter((s) => s.name.endsWith('_bucket'));
    const count = samples.find((s) => s.name.endsWith('_count'));
    const sum = samples.find((s) => s.name.endsWith('_sum'));
    if (!count || !sum) throw new Error(`histogram ${family.name}${key} lacks _sum or _count`);
    let last = -Infinity;
    let previous = 0;
    for (const bucket of buckets) {
      const le = parseValue(bucket.labels['le'] as string, `le of ${family.name}`);
      if (le <= last) throw new Error(`histogram ${family.name}${key}: buckets not in increasing le order`);
      if (bucket.value < previous) throw new Error(`histogram ${family.name}${key}: buckets not cumulative`);
      last = le;
      previous = bucket.value;
    }
    if (last !== Infinity) throw new Error(`histogram ${family.name}${key} has no +Inf bucket`);
    if (previous !== count.value) throw new Error(`histogram ${family.name}${key}: +Inf bucket differs from _count`);
  }
}

/** `GET /metrics` of an app (or any HTTP base), read strictly. */
export async function scrapeMetrics(
  app: Pick<Gateway, 'http'>,
  headers: Record<string, string> = {},
): Promise<Map<string, Family>> {
  const answer = await call(app, 'GET', '/metrics', { headers });
  assert.equal(answer.status, 200, answer.text);
  assert.match(answer.contentType, /^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(answer.text);
}

/** `sampleValue`, NaN when the series is missing (so a comparison with it fails). */
export function metricValue(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  return sampleValue(families, name, labels) ?? NaN;
}
