/**
 * One line per measured figure, `FIGURE <suite> <name> <value> <unit>`: what
 * docs/reliability.md's tables are refreshed from (`grep FIGURE`).
 */
export function figure(suite: string, name: string, value: number | string, unit = ''): void {
  const shown = typeof value === 'number' ? (Number.isInteger(value) ? String(value) : value.toFixed(1)) : value;
  console.log(`FIGURE ${suite} ${name} ${shown}${unit === '' ? '' : ` ${unit}`}`);
}
