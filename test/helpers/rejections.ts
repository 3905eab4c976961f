import assert from 'node:assert/strict';
import { after, before } from 'node:test';

/**
 * Called first inside a `describe`: collects the unhandled promise rejections of the whole
 * suite, for its last test to assert there were none.
 */
export function unhandledRejections(): { assertNone(): void } {
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown): void => {
    rejections.push(reason);
  };
  before(() => {
    process.on('unhandledRejection', onRejection);
  });
  after(() => {
    process.off('unhandledRejection', onRejection);
  });
  return { assertNone: () => assert.deepEqual(rejections.map(String), []) };
}
