import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseEnv } from 'node:util';

/**
 * The process's environment over the `.env` file in the working directory, when there is
 * one: a variable set in the environment wins, as in dotenv and @nestjs/config.
 */
export function readEnvironment(cwd = process.cwd()): Record<string, string | undefined> {
  let file: Record<string, string> = {};
  try {
    file = parseEnv(readFileSync(join(cwd, '.env'), 'utf8')) as Record<string, string>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return { ...file, ...process.env };
}
