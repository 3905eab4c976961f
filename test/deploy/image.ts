// Carries out deploy/Dockerfile without Docker: each stage is a directory standing for its
// WORKDIR, COPY copies from the checkout (through .dockerignore) or from an earlier stage, RUN
// runs its command there, and the last stage's ENV, USER, EXPOSE, HEALTHCHECK and CMD are
// handed back for the spec to start the gateway as the image would.
import { execFile } from 'node:child_process';
import { cpSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { isAbsolute, join, normalize, relative } from 'node:path';
import { promisify } from 'node:util';
import {
  copyArgs,
  envPairs,
  execForm,
  healthcheck,
  parseDockerfile,
  runCommand,
  type Healthcheck,
  type Stage,
} from './dockerfile.js';

const exec = promisify(execFile);

export interface Image {
  /** The last stage's directory: the image's WORKDIR. */
  dir: string;
  env: Record<string, string>;
  user: string | undefined;
  expose: number[];
  healthcheck: Healthcheck | undefined;
  cmd: string[];
  /** Every command RUN ran, by stage, as written in the Dockerfile (flags such as --mount removed). */
  ran: { stage: string; command: string }[];
  base: string[];
}

interface StageResult {
  workdir: string;
  dir: string;
}

/**
 * What a RUN gets besides the image's own ENV: a PATH to find node and npm, HOME and npm's
 * settings (its cache, so `npm ci` reads the packages this machine already has), and the
 * machine's proxy and CA settings, as a builder's network would have them.
 */
function hostEnv(): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env['PATH'] ?? '/usr/bin:/bin' };
  const passed = /^(HOME|npm_config_\w+|NODE_EXTRA_CA_CERTS|SSL_CERT_FILE|SSL_CERT_DIR|HTTPS?_PROXY|NO_PROXY)$/i;
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && passed.test(name)) env[name] = value;
  }
  return env;
}

/**
 * Builds the Dockerfile's stages under `into`. The build stage's `npm ci` is the one step not
 * run: its node_modules is the checkout's, which `npm ci` installed from the same lockfile.
 */
export async function buildImage(root: string, into: string): Promise<Image> {
  const dockerfile = parseDockerfile(readFileSync(join(root, 'deploy/Dockerfile'), 'utf8'));
  const allowed = dockerignoreAllowlist(readFileSync(join(root, '.dockerignore'), 'utf8'));
  const built = new Map<string, StageResult>();
  const ran: Image['ran'] = [];
  let last: (StageResult & { env: Record<string, string>; stage: Stage }) | undefined;

  for (const [index, stage] of dockerfile.stages.entries()) {
    const label = stage.name ?? String(index);
    const dir = join(into, `stage-${label}`);
    mkdirSync(dir, { recursive: true });
    let workdir: string | undefined;
    const env: Record<string, string> = {};
    for (const { keyword, args, line } of stage.instructions) {
      const where = `deploy/Dockerfile line ${line}`;
      switch (keyword) {
        case 'WORKDIR':
          if (workdir !== undefined || !isAbsolute(args)) throw new Error(`${where}: one absolute WORKDIR per stage`);
          workdir = args;
          break;
        case 'ENV':
          Object.assign(env, envPairs(args));
          break;
        case 'COPY': {
          if (workdir === undefined) throw new Error(`${where}: COPY before WORKDIR`);
          const copy = copyArgs(args);
          const target = join(dir, relativeTo(workdir, copy.dest, where));
          for (const source of copy.sources) {
            let from: string;
            if (copy.from === undefined) {
              if (!allowed.has(normalize(source))) {
                throw new Error(
                  `${where}: ${source} is not let through by .dockerignore, so docker build cannot copy it`,
                );
              }
              from = join(root, source);
            } else {
              const earlier = built.get(copy.from);
              if (!earlier) throw new Error(`${where}: no stage named ${copy.from} before this one`);
              from = join(earlier.dir, relativeTo(earlier.workdir, source, where));
            }
            // `COPY a b ./` puts files into the directory; `COPY src ./src` copies the directory as src.
            const dest = copy.dest.endsWith('/') ? join(target, source.split('/').at(-1) as string) : target;
            cpSync(from, dest, { recursive: true });
          }
          break;
        }
        case 'RUN': {
          const command = runCommand(args);
          ran.push({ stage: label, command });
          if (index < dockerfile.stages.length - 1 && /^npm ci(\s|$)/.test(command)) {
            symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
            break;
          }
          await run('sh', ['-c', command], dir, { ...hostEnv(), ...env }, where);
          break;
        }
        case 'ARG':
        case 'USER':
        case 'EXPOSE':
        case 'HEALTHCHECK':
        case 'CMD':
          break;
        default:
          throw new Error(`${where}: ${keyword} is not carried out by test/deploy/image.ts; teach it first`);
      }
    }
    if (workdir === undefined) throw new Error(`stage ${label} has no WORKDIR`);
    const result = { workdir, dir };
    if (stage.name !== undefined) built.set(stage.name, result);
    last = { ...result, env, stage };
  }
  if (!last) throw new Error('deploy/Dockerfile has no stage');

  const final = (keyword: string): string | undefined =>
    last.stage.instructions.filter((i) => i.keyword === keyword).at(-1)?.args;
  const cmd = final('CMD');
  if (cmd === undefined) throw new Error('the image has no CMD');
  const check = final('HEALTHCHECK');
  return {
    dir: last.dir,
    env: last.env,
    user: final('USER'),
    expose: last.stage.instructions
      .filter((i) => i.keyword === 'EXPOSE')
      .flatMap((i) => i.args.split(/\s+/).map((port) => Number(port.replace(/\/tcp$/, '')))),
    healthcheck: check === undefined ? undefined : healthcheck(check),
    cmd: execForm(cmd),
    ran,
    base: dockerfile.stages.map((s) => s.base),
  };
}

/** The paths a `*`-then-`!path` .dockerignore lets through. Any other form fails loudly. */
export function dockerignoreAllowlist(text: string): Set<string> {
  const rules = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  if (rules[0] !== '*') throw new Error('.dockerignore is expected to start by ignoring everything (*)');
  const allowed = new Set<string>();
  for (const rule of rules.slice(1)) {
    if (!rule.startsWith('!')) throw new Error(`.dockerignore rule ${rule}: only !path exceptions are read here`);
    allowed.add(normalize(rule.slice(1).replace(/\/$/, '')));
  }
  return allowed;
}

/** Every file under `dir` (node_modules included) with its size and modification time. */
export function snapshot(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (path: string): void => {
    const stat = lstatSync(path);
    if (stat.isDirectory()) {
      for (const entry of readdirSync(path)) walk(join(path, entry));
    } else {
      files.set(relative(dir, path), `${stat.size}:${stat.mtimeMs}`);
    }
  };
  walk(dir);
  return files;
}

function relativeTo(workdir: string, path: string, where: string): string {
  const absolute = isAbsolute(path) ? normalize(path) : normalize(join(workdir, path));
  const inside = relative(workdir, absolute);
  if (inside.startsWith('..')) throw new Error(`${where}: ${path} is outside the stage's WORKDIR ${workdir}`);
  return inside;
}

async function run(command: string, args: string[], cwd: string, env: Record<string, string>, where: string) {
  try {
    await exec(command, args, { cwd, env, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    const { stdout = '', stderr = '' } = err as { stdout?: string; stderr?: string };
    throw new Error(`${where}: ${args.join(' ')} failed:\n${stdout}\n${stderr}`, { cause: err });
  }
}
