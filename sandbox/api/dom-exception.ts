// DOMException (WebIDL §2.8.1). It is not an Error subclass in WebIDL terms: the interface
// prototype merely inherits Error.prototype, so `instanceof Error` holds while `name`, `message`
// and `code` stay read-only accessors on the prototype, as in browsers and workerd.
import { setToStringTag, toDOMString } from './idl.js';

// WebIDL's "error names" table: the names with a legacy code. Other names (EncodingError,
// NotReadableError, OperationError, ...) have code 0.
const LEGACY_CODES: Record<string, [code: number, constant: string]> = {
  IndexSizeError: [1, 'INDEX_SIZE_ERR'],
  HierarchyRequestError: [3, 'HIERARCHY_REQUEST_ERR'],
  WrongDocumentError: [4, 'WRONG_DOCUMENT_ERR'],
  InvalidCharacterError: [5, 'INVALID_CHARACTER_ERR'],
  NoModificationAllowedError: [7, 'NO_MODIFICATION_ALLOWED_ERR'],
  NotFoundError: [8, 'NOT_FOUND_ERR'],
  NotSupportedError: [9, 'NOT_SUPPORTED_ERR'],
  InUseAttributeError: [10, 'INUSE_ATTRIBUTE_ERR'],
  InvalidStateError: [11, 'INVALID_STATE_ERR'],
  SyntaxError: [12, 'SYNTAX_ERR'],
  InvalidModificationError: [13, 'INVALID_MODIFICATION_ERR'],
  NamespaceError: [14, 'NAMESPACE_ERR'],
  InvalidAccessError: [15, 'INVALID_ACCESS_ERR'],
  TypeMismatchError: [17, 'TYPE_MISMATCH_ERR'],
  SecurityError: [18, 'SECURITY_ERR'],
  NetworkError: [19, 'NETWORK_ERR'],
  AbortError: [20, 'ABORT_ERR'],
  URLMismatchError: [21, 'URL_MISMATCH_ERR'],
  QuotaExceededError: [22, 'QUOTA_EXCEEDED_ERR'],
  TimeoutError: [23, 'TIMEOUT_ERR'],
  InvalidNodeTypeError: [24, 'INVALID_NODE_TYPE_ERR'],
  DataCloneError: [25, 'DATA_CLONE_ERR'],
};

// Constants whose names no longer appear in the table but are still exposed (codes 2, 6, 16).
const RETIRED_CONSTANTS: [string, number][] = [
  ['DOMSTRING_SIZE_ERR', 2],
  ['NO_DATA_ALLOWED_ERR', 6],
  ['VALIDATION_ERR', 16],
];

/** V8's Error extension (not in the ES lib typings). */
interface V8ErrorConstructor extends ErrorConstructor {
  captureStackTrace?(target: object, constructorOpt?: Function): void;
}

/** Brand check without throwing: true only for objects DOMException's constructor built. */
export let isDOMException: (value: unknown) => value is DOMException;

export class DOMException {
  #name: string;
  #message: string;

  constructor(message: unknown = '', name: unknown = 'Error') {
    this.#message = toDOMString(message);
    this.#name = toDOMString(name);
    // An own `stack`, captured after the fields are set so its first line reads "Name: message".
    // The frames start at the caller of the constructor, like a thrown Error's.
    (Error as V8ErrorConstructor).captureStackTrace?.(this, new.target);
  }

  get name(): string {
    return this.#name;
  }

  get message(): string {
    return this.#message;
  }

  get code(): number {
    const name = this.#name;
    return Object.prototype.hasOwnProperty.call(LEGACY_CODES, name) ? LEGACY_CODES[name][0] : 0;
  }

  static {
    isDOMException = (value): value is DOMException => typeof value === 'object' && value !== null && #name in value;
  }
}

Object.setPrototypeOf(DOMException.prototype, Error.prototype);
setToStringTag(DOMException, 'DOMException');

for (const [constant, code] of [...Object.values(LEGACY_CODES).map(([code, name]) => [name, code] as [string, number]), ...RETIRED_CONSTANTS]) {
  const descriptor = { value: code, enumerable: true, writable: false, configurable: false };
  Object.defineProperty(DOMException, constant, descriptor);
  Object.defineProperty(DOMException.prototype, constant, descriptor);
}
