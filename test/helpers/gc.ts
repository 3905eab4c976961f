import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | null = null;

/** `rounds` full collections (the runner starts files without --expose-gc; the flag can be set at run time). */
export function collectGarbage(rounds: number): void {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  for (let i = 0; i < rounds; i++) gc();
}
