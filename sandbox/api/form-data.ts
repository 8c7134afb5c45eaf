// FormData (XHR Standard §4.3). Entries are [name, string | File]; a Blob value is wrapped in a
// File on the way in, as the spec's "create an entry" says. The multipart/form-data encoding and
// parsing used when a FormData is a body live in multipart.ts.
import { Blob, File } from './blob.js';
import { aliasIterator, enumerableMembers, forEachPair, pairIteratorFactory, toUSVString } from './fetch-idl.js';
import { requireArgs, setToStringTag } from './idl.js';

export type FormDataEntryValue = string | File;
export type FormDataEntry = [name: string, value: FormDataEntryValue];

const makeIterator = pairIteratorFactory<string, FormDataEntryValue>('FormData');

let entriesOf: (formData: FormData) => FormDataEntry[];

export class FormData {
  #entries: FormDataEntry[] = [];

  constructor(form?: unknown) {
    // The only valid argument is an HTMLFormElement, which does not exist here.
    if (form !== undefined) {
      throw new TypeError("Failed to construct 'FormData': parameter 1 is not of type 'HTMLFormElement'.");
    }
  }

  append(name: string, value: string | Blob, filename?: string): void {
    requireArgs(arguments.length, 2, "Failed to execute 'append' on 'FormData'");
    this.#entries.push(createEntry(name, value, filename, arguments.length, 'append'));
  }

  delete(name: string): void {
    requireArgs(arguments.length, 1, "Failed to execute 'delete' on 'FormData'");
    const n = toUSVString(name);
    this.#entries = this.#entries.filter((entry) => entry[0] !== n);
  }

  get(name: string): FormDataEntryValue | null {
    requireArgs(arguments.length, 1, "Failed to execute 'get' on 'FormData'");
    const n = toUSVString(name);
    const found = this.#entries.find((entry) => entry[0] === n);
    return found ? found[1] : null;
  }

  getAll(name: string): FormDataEntryValue[] {
    requireArgs(arguments.length, 1, "Failed to execute 'getAll' on 'FormData'");
    const n = toUSVString(name);
    return this.#entries.filter((entry) => entry[0] === n).map((entry) => entry[1]);
  }

  has(name: string): boolean {
    requireArgs(arguments.length, 1, "Failed to execute 'has' on 'FormData'");
    const n = toUSVString(name);
    return this.#entries.some((entry) => entry[0] === n);
  }

  set(name: string, value: string | Blob, filename?: string): void {
    requireArgs(arguments.length, 2, "Failed to execute 'set' on 'FormData'");
    const entry = createEntry(name, value, filename, arguments.length, 'set');
    const index = this.#entries.findIndex((e) => e[0] === entry[0]);
    if (index < 0) {
      this.#entries.push(entry);
    } else {
      this.#entries[index] = entry;
      this.#entries = this.#entries.filter((e, i) => i <= index || e[0] !== entry[0]);
    }
  }

  forEach(callback: (value: FormDataEntryValue, name: string, formData: FormData) => void, thisArg?: unknown): void {
    forEachPair(() => this.#entries, callback, thisArg, this, 'FormData');
  }

  entries(): IterableIterator<[string, FormDataEntryValue]> {
    return makeIterator(() => this.#entries, 'key+value') as IterableIterator<[string, FormDataEntryValue]>;
  }

  keys(): IterableIterator<string> {
    return makeIterator(() => this.#entries, 'key') as IterableIterator<string>;
  }

  values(): IterableIterator<FormDataEntryValue> {
    return makeIterator(() => this.#entries, 'value') as IterableIterator<FormDataEntryValue>;
  }

  declare [Symbol.iterator]: () => IterableIterator<[string, FormDataEntryValue]>;

  static {
    entriesOf = (formData) => formData.#entries;
  }
}

aliasIterator(FormData.prototype);
enumerableMembers(FormData);
setToStringTag(FormData, 'FormData');

/** A snapshot of a FormData's entries (entries are immutable, the list is copied). */
export function formDataEntries(formData: FormData): FormDataEntry[] {
  return entriesOf(formData).slice();
}

/** Build a FormData from parsed entries (Body.formData()). */
export function formDataFromEntries(entries: FormDataEntry[]): FormData {
  const formData = new FormData();
  entriesOf(formData).push(...entries);
  return formData;
}

/** XHR "create an entry", with the WebIDL overload choice between (name, Blob, filename?) and
 *  (name, USVString). */
function createEntry(name: unknown, value: unknown, filename: unknown, argCount: number, method: string): FormDataEntry {
  const n = toUSVString(name);
  if (!(value instanceof Blob)) {
    if (argCount > 2) {
      throw new TypeError(`Failed to execute '${method}' on 'FormData': parameter 2 is not of type 'Blob'.`);
    }
    return [n, toUSVString(value)];
  }
  if (value instanceof File && filename === undefined) return [n, value];
  const fileName = filename !== undefined ? toUSVString(filename) : value instanceof File ? value.name : 'blob';
  const options = value instanceof File ? { type: value.type, lastModified: value.lastModified } : { type: value.type };
  return [n, new File([value], fileName, options)];
}
