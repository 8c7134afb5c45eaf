// DOMException inside a real isolate: WebIDL §2.8.1 (constructor, names table, legacy codes,
// accessors on the prototype) plus the Error-like behaviour browsers and workerd give it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGuest, type Guest } from '../helpers/guest.js';

let guest: Guest;
beforeAll(async () => {
  guest = await createGuest();
});
afterAll(() => guest.dispose());

const PRELUDE = `
  const attempt = (f) => { try { f(); return 'no error'; } catch (e) { return e.name; } };
`;
const run = <T = unknown>(code: string) => guest.run<T>(PRELUDE + code);

describe('DOMException', () => {
  it('defaults to name "Error", empty message and code 0', async () => {
    expect(await run(`const e = new DOMException(); return [e.name, e.message, e.code]`)).toEqual(['Error', '', 0]);
  });

  it('maps names to their legacy codes, and other names to 0', async () => {
    expect(
      await run(`return ['IndexSizeError', 'HierarchyRequestError', 'InvalidCharacterError', 'NotFoundError', 'NotSupportedError', 'InvalidStateError',
        'SyntaxError', 'InvalidAccessError', 'TypeMismatchError', 'SecurityError', 'NetworkError', 'AbortError', 'QuotaExceededError', 'TimeoutError',
        'DataCloneError', 'EncodingError', 'NotReadableError', 'OperationError', 'DataError', 'constructor', 'toString', 'abortError']
        .map((n) => new DOMException('m', n).code)`),
    ).toEqual([1, 3, 5, 8, 9, 11, 12, 15, 17, 18, 19, 20, 22, 23, 25, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('exposes the legacy constants on the constructor and the prototype, read-only', async () => {
    expect(
      await run(`const d = Object.getOwnPropertyDescriptor(DOMException, 'ABORT_ERR');
        return [DOMException.INDEX_SIZE_ERR, DOMException.DOMSTRING_SIZE_ERR, DOMException.VALIDATION_ERR, DOMException.DATA_CLONE_ERR,
          DOMException.prototype.TIMEOUT_ERR, new DOMException().NOT_FOUND_ERR, d.writable, d.configurable, d.enumerable]`),
    ).toEqual([1, 2, 16, 25, 23, 8, false, false, true]);
  });

  it('is an Error: instanceof, toString, toStringTag', async () => {
    expect(
      await run(`const e = new DOMException('boom', 'AbortError');
        return [e instanceof Error, e instanceof DOMException, String(e), Object.prototype.toString.call(e),
          Object.getPrototypeOf(DOMException.prototype) === Error.prototype, DOMException.name, DOMException.length]`),
    ).toEqual([true, true, 'AbortError: boom', '[object DOMException]', true, 'DOMException', 0]);
  });

  it('has a stack whose first line is "name: message" and whose frames start at the caller', async () => {
    expect(
      await run(`function makeIt() { return new DOMException('lost', 'NotFoundError'); }
        const lines = makeIt().stack.split('\\n');
        return [lines[0], /^ {4}at makeIt /.test(lines[1])]`),
    ).toEqual(['NotFoundError: lost', true]);
  });

  it('keeps name, message and code as prototype accessors with a brand check', async () => {
    expect(
      await run(`const e = new DOMException('m', 'SyntaxError');
        const get = (k) => Object.getOwnPropertyDescriptor(DOMException.prototype, k).get;
        const failed = attempt(() => get('name').call({}));
        e.name = 'changed';
        return [Object.keys(e), Object.prototype.hasOwnProperty.call(e, 'message'), typeof get('name'), typeof get('message'), typeof get('code'),
          failed, e.name]`),
    ).toEqual([[], false, 'function', 'function', 'function', 'TypeError', 'SyntaxError']);
  });

  it('converts arguments with ToString and can be subclassed', async () => {
    expect(
      await run(`class MyException extends DOMException { constructor() { super('sub', 'DataError'); } }
        const s = new MyException();
        return [new DOMException(12, undefined).message, new DOMException(undefined, null).name, attempt(() => new DOMException(Symbol())),
          s instanceof DOMException, s.name, s.message, attempt(() => DOMException('x'))]`),
    ).toEqual(['12', 'null', 'TypeError', true, 'DataError', 'sub', 'TypeError']);
  });
});
