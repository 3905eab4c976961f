// Reads deploy/Dockerfile into its stages and instructions, so the deploy specs run what the
// file says instead of a copy of it that could drift.

export interface Instruction {
  keyword: string;
  /** Everything after the keyword, continuation lines joined. */
  args: string;
  line: number;
}

export interface Stage {
  base: string;
  name: string | undefined;
  instructions: Instruction[];
}

export interface Dockerfile {
  /** `ARG`s before the first `FROM`, with their defaults. */
  globalArgs: Record<string, string>;
  stages: Stage[];
}

export interface Copy {
  from: string | undefined;
  sources: string[];
  dest: string;
}

export interface Healthcheck {
  options: Record<string, string>;
  command: string[];
}

export function parseDockerfile(text: string): Dockerfile {
  const instructions: Instruction[] = [];
  let pending: { args: string[]; line: number } | null = null;
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    // Comment lines are dropped, also inside a continued instruction (as Docker does).
    if (line.startsWith('#')) return;
    if (pending === null) {
      if (line === '') return;
      pending = { args: [], line: index + 1 };
    }
    const continued = line.endsWith('\\');
    pending.args.push(continued ? line.slice(0, -1).trim() : line);
    if (continued) return;
    const joined = pending.args.filter((part) => part !== '').join(' ');
    const [, keyword = '', args = ''] = /^(\S+)\s*(.*)$/.exec(joined) ?? [];
    instructions.push({ keyword: keyword.toUpperCase(), args, line: pending.line });
    pending = null;
  });
  if (pending !== null) throw new Error('the Dockerfile ends inside a continued instruction');

  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const match = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.args);
      if (!match) throw new Error(`line ${instruction.line}: cannot read FROM ${instruction.args}`);
      stages.push({ base: expand(match[1] ?? '', globalArgs), name: match[2], instructions: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (stage) {
      stage.instructions.push(instruction);
    } else if (instruction.keyword === 'ARG') {
      const [name = '', value = ''] = instruction.args.split('=');
      globalArgs[name] = value;
    } else {
      throw new Error(`line ${instruction.line}: ${instruction.keyword} before the first FROM`);
    }
  }
  return { globalArgs, stages };
}

/** `KEY=value` pairs of an `ENV` instruction (the key-value form, unquoted values). */
export function envPairs(args: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of args.split(/\s+/)) {
    const match = /^([A-Za-z_][A-Za-z0-9_]*)=([^"'\s]*)$/.exec(pair);
    if (!match) throw new Error(`ENV ${args}: only unquoted KEY=value pairs are read here`);
    env[match[1] as string] = match[2] as string;
  }
  return env;
}

/** `COPY [--from=stage] [--chown=...] <source>... <dest>` */
export function copyArgs(args: string): Copy {
  const words = args.split(/\s+/);
  let from: string | undefined;
  while (words[0]?.startsWith('--')) {
    const flag = words.shift() as string;
    if (flag.startsWith('--from=')) from = flag.slice('--from='.length);
    else if (!flag.startsWith('--chown=') && !flag.startsWith('--chmod='))
      throw new Error(`COPY ${flag} is not read here`);
  }
  const dest = words.pop();
  if (dest === undefined || words.length === 0) throw new Error(`COPY ${args}: needs sources and a destination`);
  return { from, sources: words, dest };
}

/** A `RUN` command without its `--mount`/`--network` flags (build-time caches, not behaviour). */
export function runCommand(args: string): string {
  return args.replace(/^(?:--(?:mount|network)=\S+\s+)+/, '');
}

/** `HEALTHCHECK [--interval=...] CMD [...]` in the exec form. */
export function healthcheck(args: string): Healthcheck {
  const match = /^((?:--[a-z-]+=\S+\s+)*)CMD\s+(\[.*\])$/.exec(args);
  if (!match) throw new Error(`HEALTHCHECK ${args}: expected options and CMD in the exec form`);
  const options: Record<string, string> = {};
  for (const option of (match[1] ?? '').trim().split(/\s+/).filter(Boolean)) {
    const [name = '', value = ''] = option.slice(2).split('=');
    options[name] = value;
  }
  return { options, command: execForm(match[2] ?? '') };
}

/** A JSON array instruction argument (`CMD ["node", "dist/main.js"]`). */
export function execForm(args: string): string[] {
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed) || !parsed.every((word) => typeof word === 'string')) {
    throw new Error(`${args} is not the exec form (a JSON array of strings)`);
  }
  return parsed;
}

/** Docker duration syntax as the options use it: `15s`, `500ms`, `1m`. */
export function durationMs(value: string): number {
  const match = /^(\d+)(ms|s|m)$/.exec(value);
  if (!match) throw new Error(`cannot read the duration ${value}`);
  const n = Number(match[1]);
  return match[2] === 'ms' ? n : match[2] === 's' ? n * 1000 : n * 60_000;
}

function expand(text: string, args: Record<string, string>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => args[name] ?? '');
}
