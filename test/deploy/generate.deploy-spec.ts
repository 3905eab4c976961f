import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/** The checkout: the test runner runs from it. */
const ROOT = process.cwd();
/** What a protocol is generated into and built from: no tests, docs or build output. */
const PROJECT_FILES = ['src', 'package.json', 'nest-cli.json', 'tsconfig.json', 'tsconfig.build.json', '.prettierrc'];

/** The commands of the README's "Adding a protocol" section, for a protocol called `name`. */
function readmeCommands(name: string): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Adding a protocol'));
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(block !== undefined, 'the section starts with a sh block');
  return block
    .split('\n')
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .filter((line) => line !== '')
    .map((line) => line.replaceAll('<name>', name));
}

async function sh(command: string, cwd: string): Promise<string> {
  try {
    const { stdout } = await exec('sh', ['-c', command], { cwd, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const { stdout = '', stderr = '' } = err as { stdout?: string; stderr?: string };
    throw new Error(`${command} failed:\n${stdout}\n${stderr}`, { cause: err });
  }
}

describe('a protocol generated with the Nest CLI, as the README says', { timeout: 120_000 }, () => {
  let copy: string;

  before(() => {
    copy = mkdtempSync(join(tmpdir(), 'gatehouse-generate-'));
    for (const path of PROJECT_FILES) cpSync(join(ROOT, path), join(copy, path), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'), 'dir');
  });

  after(() => rmSync(copy, { recursive: true, force: true }));

  it('generates a module, gateway and service that build once the module is listed', async () => {
    const appModule = join(copy, 'src/app.module.ts');
    const untouched = readFileSync(appModule, 'utf8');
    const commands = readmeCommands('sample');
    assert.match(commands[0] ?? '', /^npx nest generate module protocols\/sample\b/);
    for (const command of commands) await sh(command, copy);

    const dir = join(copy, 'src/protocols/sample');
    assert.deepEqual(readdirSync(dir).sort(), ['sample.gateway.ts', 'sample.module.ts', 'sample.service.ts']);
    assert.equal(readFileSync(appModule, 'utf8'), untouched, 'AppModule is left alone (--skip-import)');
    const module = readFileSync(join(dir, 'sample.module.ts'), 'utf8');
    assert.match(module, /from '\.\/sample\.gateway\.js';/, 'ES-module import suffixes');
    assert.match(module, /from '\.\/sample\.service\.js';/);
    assert.match(module, /providers: \[SampleGateway, SampleService\]/);
    await sh('npx prettier --check src/protocols/sample', copy);

    // The step the README leaves to the hand: list the module in PROTOCOL_MODULES.
    const listed = untouched
      .replace(/^(import .*\n)(?!import )/m, `$1import { SampleModule } from './protocols/sample/sample.module.js';\n`)
      .replace(/(export const PROTOCOL_MODULES: Type\[\] = \[[^\]]*)\]/, '$1, SampleModule]');
    assert.match(listed, /HatsuModule, SampleModule\]/);
    writeFileSync(appModule, listed);

    await sh(`"${process.execPath}" node_modules/typescript/bin/tsc -p tsconfig.build.json`, copy);
    assert.ok(existsSync(join(copy, 'dist/protocols/sample/sample.module.js')));
    assert.match(readFileSync(join(copy, 'dist/app.module.js'), 'utf8'), /SampleModule/);
  });
});
