// console.* formatting: Node's util.format() and util.inspect(), which is also what workerd's
// console prints. Follows Node 20's lib/internal/util/inspect.js for layout (line breaking at 80
// columns, the "3 inner levels on one line" rule, grouping of long arrays into columns, quoting
// and escaping, circular markers), minus what needs V8 internals an isolate does not expose:
// promise state, proxy targets, iterator previews and weak collection contents.
//
// Two additions: objects may define `Symbol.for('nodejs.util.inspect.custom')` as in Node, and
// the sandbox's own platform objects (Request, Response, AbortSignal, ...) print their readable
// attributes, or their entries for Headers/URLSearchParams/FormData, instead of a bare `Request {}`.
import { intrinsics, kindOf, typedArrayName, type Kind } from './brand.js';
import { platformInterfaceName } from './idl.js';

export interface InspectOptions {
  depth: number | null;
  showHidden: boolean;
  breakLength: number;
  /** number: how many inner levels may share a line; false: one property per line */
  compact: number | boolean;
  maxArrayLength: number;
  maxStringLength: number;
  customInspect: boolean;
  sorted: boolean;
}

interface Context extends InspectOptions {
  seen: object[];
  circular: Map<object, number> | null;
  indentationLvl: number;
  currentDepth: number;
}

const DEFAULTS: InspectOptions = {
  depth: 2,
  showHidden: false,
  breakLength: 80,
  compact: 3,
  maxArrayLength: 100,
  maxStringLength: 10000,
  customInspect: true,
  sorted: false,
};

export const customInspectSymbol: unique symbol = Symbol.for('nodejs.util.inspect.custom') as never;

// Entry kinds, which decide how a property is printed (Node's kObjectType / kArrayType / ...).
const OBJECT = 0;
const ARRAY_ITEM = 1;
const ARRAY_EXTRAS = 2;

const KEY_IDENTIFIER = /^[a-zA-Z_][a-zA-Z_0-9]*$/;
const ARRAY_INDEX = /^(0|[1-9][0-9]*)$/;
// Control characters, C1 controls, backslash, lone surrogates and (unless another quote is used)
// the single quote are escaped.
const LONE_SURROGATE = '|[\\ud800-\\udbff](?![\\udc00-\\udfff])|(?<![\\ud800-\\udbff])[\\udc00-\\udfff]';
const ESCAPE_TEST = new RegExp('[\\x00-\\x1f\\x27\\x5c\\x7f-\\x9f]' + LONE_SURROGATE);
const ESCAPE_ALL = new RegExp(ESCAPE_TEST.source, 'g');
const ESCAPE_TEST_NO_QUOTE = new RegExp('[\\x00-\\x1f\\x5c\\x7f-\\x9f]' + LONE_SURROGATE);
const ESCAPE_ALL_NO_QUOTE = new RegExp(ESCAPE_TEST_NO_QUOTE.source, 'g');

const ESCAPES: Record<number, string> = { 8: '\\b', 9: '\\t', 10: '\\n', 12: '\\f', 13: '\\r', 39: "\\'", 92: '\\\\' };

function escapeChar(ch: string): string {
  const code = ch.charCodeAt(0);
  if (code >= 0xd800) return `\\u${code.toString(16)}`;
  return ESCAPES[code] ?? `\\x${code.toString(16).toUpperCase().padStart(2, '0')}`;
}

/** Quotes a string the way Node does: single quotes, else double, else backticks. */
function quote(str: string): string {
  let q = "'";
  let test = ESCAPE_TEST;
  let all = ESCAPE_ALL;
  if (str.includes("'")) {
    if (!str.includes('"')) q = '"';
    else if (!str.includes('`') && !str.includes('${')) q = '`';
    if (q !== "'") {
      test = ESCAPE_TEST_NO_QUOTE;
      all = ESCAPE_ALL_NO_QUOTE;
    }
  }
  if (test.test(str)) str = str.replace(all, escapeChar);
  return q + str + q;
}

function formatNumber(n: number): string {
  return Object.is(n, -0) ? '-0' : `${n}`;
}

function formatPrimitive(ctx: Context, value: unknown): string {
  switch (typeof value) {
    case 'string': {
      let trailer = '';
      let str = value;
      if (str.length > ctx.maxStringLength) {
        const remaining = str.length - ctx.maxStringLength;
        str = str.slice(0, ctx.maxStringLength);
        trailer = `... ${remaining} more character${remaining > 1 ? 's' : ''}`;
      }
      // Long multi-line strings are split after each newline, one quoted piece per line.
      if (ctx.compact !== true && str.length > 16 && str.length > ctx.breakLength - ctx.indentationLvl - 4) {
        return str
          .split(/(?<=\n)/)
          .map((line) => quote(line))
          .join(` +\n${' '.repeat(ctx.indentationLvl + 2)}`) + trailer;
      }
      return quote(str) + trailer;
    }
    case 'number':
      return formatNumber(value);
    case 'bigint':
      return `${value}n`;
    case 'symbol':
      return value.toString();
    default:
      return String(value);
  }
}

// --- names and prefixes ------------------------------------------------------------------------

/** The name of the nearest constructor in the prototype chain; null for a null prototype. */
function constructorName(value: object): string | null {
  let obj: object | null = value;
  let first: object | null | undefined;
  while (obj) {
    const descriptor = Object.getOwnPropertyDescriptor(obj, 'constructor');
    if (descriptor && typeof descriptor.value === 'function' && descriptor.value.name !== '') {
      return descriptor.value.name as string;
    }
    obj = Object.getPrototypeOf(obj);
    if (first === undefined) first = obj;
  }
  return first === null ? null : 'Object <Complex prototype>';
}

function prefix(constructor: string | null, tag: string, fallback: string, size = ''): string {
  if (constructor === null) {
    if (tag !== '' && fallback !== tag) return `[${fallback}${size}: null prototype] [${tag}] `;
    return `[${fallback}${size}: null prototype] `;
  }
  if (tag !== '' && constructor !== tag) return `${constructor}${size} [${tag}] `;
  return `${constructor}${size} `;
}

function keysOf(value: object, showHidden: boolean): PropertyKey[] {
  const symbols = Object.getOwnPropertySymbols(value);
  const keys: PropertyKey[] = showHidden ? Object.getOwnPropertyNames(value) : Object.keys(value);
  for (const symbol of symbols) {
    if (showHidden || Object.prototype.propertyIsEnumerable.call(value, symbol)) keys.push(symbol);
  }
  return keys;
}

/** Own keys that are not array indices (the elements are printed separately). */
function nonIndexKeys(value: object, showHidden: boolean): PropertyKey[] {
  return keysOf(value, showHidden).filter((key) => typeof key !== 'string' || !ARRAY_INDEX.test(key) || Number(key) >= 2 ** 32 - 1);
}

function functionBase(value: Function, constructor: string | null, tag: string): string {
  const source = Function.prototype.toString.call(value);
  if (source.startsWith('class') && source.endsWith('}')) {
    const name = (Object.prototype.hasOwnProperty.call(value, 'name') && value.name) || '(anonymous)';
    let base = `class ${name}`;
    if (constructor !== 'Function' && constructor !== null) base += ` [${constructor}]`;
    if (tag !== '' && constructor !== tag) base += ` [${tag}]`;
    if (constructor !== null) {
      const superName = (Object.getPrototypeOf(value) as { name?: unknown }).name;
      if (superName) base += ` extends ${superName as string}`;
    } else base += ' extends [null prototype]';
    return `[${base}]`;
  }
  // AsyncFunction, GeneratorFunction and AsyncGeneratorFunction carry their kind in the tag.
  const kind = (Object.prototype.toString.call(value) as string).slice(8, -1);
  const type = kind === 'AsyncFunction' || kind === 'GeneratorFunction' || kind === 'AsyncGeneratorFunction' ? kind : 'Function';
  let base = `[${type}`;
  if (constructor === null) base += ' (null prototype)';
  base += value.name === '' ? ' (anonymous)' : `: ${value.name}`;
  base += ']';
  if (constructor !== type && constructor !== null) base += ` ${constructor}`;
  if (tag !== '' && constructor !== tag) base += ` [${tag}]`;
  return base;
}

function boxedBase(ctx: Context, value: object, kind: Kind, keys: PropertyKey[], constructor: string | null, tag: string): string {
  const valueOf = {
    Number: Number.prototype.valueOf,
    String: String.prototype.valueOf,
    Boolean: Boolean.prototype.valueOf,
    BigInt: BigInt.prototype.valueOf,
    Symbol: Symbol.prototype.valueOf,
  }[kind as 'Number'] as (this: unknown) => unknown;
  if (kind === 'String') keys.splice(0, (String.prototype.valueOf.call(value) as string).length); // the indices are noise
  let base = `[${kind}`;
  if (kind !== constructor) base += constructor === null ? ' (null prototype)' : ` (${constructor})`;
  base += `: ${formatPrimitive({ ...ctx, compact: true }, valueOf.call(value))}]`;
  if (tag !== '' && tag !== constructor) base += ` [${tag}]`;
  return base;
}

// --- errors ------------------------------------------------------------------------------------

function formatError(ctx: Context, err: Error, constructor: string | null, tag: string, keys: PropertyKey[]): string {
  const name = err.name != null ? String(err.name) : 'Error';
  let stack = err.stack ? String(err.stack) : Error.prototype.toString.call(err);
  // name/message/stack already show in the stack: do not list them again.
  if (!ctx.showHidden && keys.length !== 0) {
    for (const key of ['name', 'message', 'stack']) {
      const index = keys.indexOf(key);
      if (index !== -1 && stack.includes(String((err as unknown as Record<string, unknown>)[key]))) keys.splice(index, 1);
    }
  }
  if ('cause' in err && !keys.includes('cause')) keys.push('cause');
  if (Array.isArray((err as { errors?: unknown }).errors) && !keys.includes('errors')) keys.push('errors');

  // Make the first line name the class when it is not already in it: "DOMException [AbortError]".
  let len = name.length;
  if (constructor === null || (name.endsWith('Error') && stack.startsWith(name) && (stack.length === len || stack[len] === ':' || stack[len] === '\n'))) {
    let fallback = 'Error';
    if (constructor === null) {
      const start = /^([A-Z][a-z_ A-Z0-9[\]()-]+)(?::|\n\s+at)/.exec(stack) || /^([a-z_A-Z0-9-]*Error)$/.exec(stack);
      fallback = (start && start[1]) || '';
      len = fallback.length;
      fallback = fallback || 'Error';
    }
    const p = prefix(constructor, tag, fallback).slice(0, -1);
    if (name !== p) {
      if (p.includes(name)) stack = len === 0 ? `${p}: ${stack}` : `${p}${stack.slice(len)}`;
      else stack = `${p} [${name}]${stack.slice(len)}`;
    }
  }
  // An error without frames is wrapped in brackets: [Error: message].
  let pos = (err.message && stack.indexOf(err.message)) || -1;
  if (pos !== -1) pos += err.message.length;
  if (stack.indexOf('\n    at', pos) === -1) stack = `[${stack}]`;
  if (ctx.indentationLvl !== 0) stack = stack.replace(/\n/g, `\n${' '.repeat(ctx.indentationLvl)}`);
  return stack;
}

// --- entries -----------------------------------------------------------------------------------

type Formatter = (ctx: Context, value: object, recurseTimes: number) => string[];

function moreItems(remaining: number): string {
  return `... ${remaining} more item${remaining > 1 ? 's' : ''}`;
}

function formatArray(ctx: Context, value: object, recurseTimes: number): string[] {
  const array = value as unknown[];
  const length = array.length;
  const max = Math.min(Math.max(0, ctx.maxArrayLength), length);
  const output: string[] = [];
  let index = 0; // next index to print
  // Holes print as "<n empty items>"; the loop walks runs of present elements.
  while (index < length && output.length < max) {
    if (!Object.prototype.hasOwnProperty.call(array, index)) {
      let next = index + 1;
      while (next < length && !Object.prototype.hasOwnProperty.call(array, next)) next++;
      const empty = next - index;
      output.push(`<${empty} empty item${empty > 1 ? 's' : ''}>`);
      index = next;
      continue;
    }
    output.push(formatProperty(ctx, array, recurseTimes, index, ARRAY_ITEM));
    index++;
  }
  const remaining = length - index;
  if (remaining > 0) output.push(moreItems(remaining));
  return output;
}

function formatTypedArray(ctx: Context, value: object, recurseTimes: number): string[] {
  const array = value as unknown as ArrayLike<number | bigint>;
  const length = array.length;
  const max = Math.min(Math.max(0, ctx.maxArrayLength), length);
  const output: string[] = [];
  for (let i = 0; i < max; i++) {
    const v = array[i];
    output.push(typeof v === 'bigint' ? `${v}n` : formatNumber(v));
  }
  if (length > max) output.push(moreItems(length - max));
  if (ctx.showHidden) {
    ctx.indentationLvl += 2;
    for (const key of ['BYTES_PER_ELEMENT', 'length', 'byteLength', 'byteOffset', 'buffer']) {
      output.push(`[${key}]: ${formatValue(ctx, (value as unknown as Record<string, unknown>)[key], recurseTimes, true)}`);
    }
    ctx.indentationLvl -= 2;
  }
  return output;
}

function formatArrayBuffer(ctx: Context, value: object): string[] {
  const bytes = new Uint8Array(value as ArrayBuffer);
  const max = Math.min(ctx.maxArrayLength, bytes.length);
  let str = '';
  for (let i = 0; i < max; i++) str += (i ? ' ' : '') + (bytes[i] + 0x100).toString(16).slice(1);
  const remaining = bytes.length - max;
  if (remaining > 0) str += ` ... ${remaining} more byte${remaining > 1 ? 's' : ''}`;
  return [`[Uint8Contents]: <${str}>`];
}

function formatSet(ctx: Context, value: object, recurseTimes: number): string[] {
  const output: string[] = [];
  ctx.indentationLvl += 2;
  for (const v of Set.prototype.values.call(value)) output.push(formatValue(ctx, v, recurseTimes));
  ctx.indentationLvl -= 2;
  return output;
}

function formatMap(ctx: Context, value: object, recurseTimes: number): string[] {
  const output: string[] = [];
  ctx.indentationLvl += 2;
  for (const [k, v] of Map.prototype.entries.call(value)) {
    output.push(`${formatValue(ctx, k, recurseTimes)} => ${formatValue(ctx, v, recurseTimes)}`);
  }
  ctx.indentationLvl -= 2;
  return output;
}

/** Headers, URLSearchParams, FormData: their pairs, Map-style (names may repeat). */
function formatPlatformEntries(ctx: Context, value: object, recurseTimes: number): string[] {
  const output: string[] = [];
  ctx.indentationLvl += 2;
  for (const [k, v] of (value as { entries(): Iterable<[unknown, unknown]> }).entries()) {
    output.push(`${formatValue(ctx, k, recurseTimes)} => ${formatValue(ctx, v, recurseTimes)}`);
  }
  ctx.indentationLvl -= 2;
  return output;
}

/** Other platform objects: the attributes (getters, own or inherited) a user would read. */
function formatPlatformAttributes(ctx: Context, value: object, recurseTimes: number): string[] {
  const output: string[] = [];
  const names = new Set<string>();
  for (let proto: object | null = value; proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    for (const key of Object.getOwnPropertyNames(proto)) {
      if (names.has(key) || (proto !== value && Object.prototype.hasOwnProperty.call(value, key))) continue;
      const descriptor = Object.getOwnPropertyDescriptor(proto, key);
      if (!descriptor?.get) continue;
      names.add(key);
      let attribute: unknown;
      try {
        attribute = Reflect.get(proto, key, value);
      } catch {
        continue; // not readable on this object (brand checks of a subclass, ...)
      }
      ctx.indentationLvl += 2;
      const name = KEY_IDENTIFIER.test(key) ? key : quote(key);
      output.push(`${name}: ${formatValue(ctx, attribute, recurseTimes)}`);
      ctx.indentationLvl -= 2;
    }
  }
  return output;
}

function formatProperty(ctx: Context, value: object, recurseTimes: number, key: PropertyKey, type: number): string {
  let str: string;
  let extra = ' ';
  const descriptor = Object.getOwnPropertyDescriptor(value, key) ?? { value: (value as Record<PropertyKey, unknown>)[key], enumerable: true };
  if (descriptor.value !== undefined) {
    const diff = ctx.compact !== true || type !== OBJECT ? 2 : 3;
    ctx.indentationLvl += diff;
    str = formatValue(ctx, descriptor.value, recurseTimes);
    if (diff === 3 && ctx.breakLength < str.length) extra = `\n${' '.repeat(ctx.indentationLvl)}`;
    ctx.indentationLvl -= diff;
  } else if (descriptor.get !== undefined) {
    str = descriptor.set !== undefined ? '[Getter/Setter]' : '[Getter]';
  } else if (descriptor.set !== undefined) {
    str = '[Setter]';
  } else {
    str = 'undefined';
  }
  if (type === ARRAY_ITEM) return str;
  let name: string;
  if (typeof key === 'symbol') name = `[${key.toString().replace(ESCAPE_ALL, escapeChar)}]`;
  else if (key === '__proto__') name = "['__proto__']";
  else if (descriptor.enumerable === false) name = `[${String(key).replace(ESCAPE_ALL, escapeChar)}]`;
  else if (KEY_IDENTIFIER.test(String(key))) name = String(key);
  else name = quote(String(key));
  return `${name}:${extra}${str}`;
}

// --- layout ------------------------------------------------------------------------------------

/** Lays out more than six short array items in aligned columns (Node's groupArrayElements). */
function groupArrayElements(ctx: Context, output: string[], value: unknown[] | undefined): string[] {
  let totalLength = 0;
  let maxLength = 0;
  let outputLength = output.length;
  // The "... more items" entry does not take part in the grouping.
  if (ctx.maxArrayLength < output.length) outputLength--;
  const separatorSpace = 2; // ", "
  const dataLen = new Array<number>(outputLength);
  for (let i = 0; i < outputLength; i++) {
    const len = output[i].length;
    dataLen[i] = len;
    totalLength += len + separatorSpace;
    if (maxLength < len) maxLength = len;
  }
  const actualMax = maxLength + separatorSpace;
  // Group only when at least three items fit on a line, and items are of similar length.
  if (actualMax * 3 + ctx.indentationLvl < ctx.breakLength && (totalLength / actualMax > 5 || maxLength <= 6)) {
    const approxCharHeights = 2.5;
    const averageBias = Math.sqrt(actualMax - totalLength / output.length);
    const biasedMax = Math.max(actualMax - 3 - averageBias, 1);
    const columns = Math.min(
      Math.round(Math.sqrt(approxCharHeights * biasedMax * outputLength) / biasedMax),
      Math.floor((ctx.breakLength - ctx.indentationLvl) / actualMax),
      (ctx.compact as number) * 4,
      15,
    );
    if (columns <= 1) return output;
    const maxLineLength: number[] = [];
    for (let i = 0; i < columns; i++) {
      let lineLength = 0;
      for (let j = i; j < output.length; j += columns) if (dataLen[j] > lineLength) lineLength = dataLen[j];
      maxLineLength.push(lineLength + separatorSpace);
    }
    // Numbers are right-aligned, everything else left-aligned.
    let padStart = true;
    if (value !== undefined) {
      for (let i = 0; i < output.length; i++) {
        if (typeof value[i] !== 'number' && typeof value[i] !== 'bigint') {
          padStart = false;
          break;
        }
      }
    }
    const grouped: string[] = [];
    for (let i = 0; i < outputLength; i += columns) {
      const max = Math.min(i + columns, outputLength);
      let str = '';
      let j = i;
      for (; j < max - 1; j++) {
        const cell = `${output[j]}, `;
        str += padStart ? cell.padStart(maxLineLength[j - i], ' ') : cell.padEnd(maxLineLength[j - i], ' ');
      }
      str += padStart ? output[j].padStart(maxLineLength[j - i] - separatorSpace, ' ') : output[j];
      grouped.push(str);
    }
    if (ctx.maxArrayLength < output.length) grouped.push(output[outputLength]);
    return grouped;
  }
  return output;
}

function isBelowBreakLength(ctx: Context, output: string[], start: number, base: string): boolean {
  let totalLength = output.length + start;
  if (totalLength + output.length > ctx.breakLength) return false;
  for (const entry of output) {
    totalLength += entry.length;
    if (totalLength > ctx.breakLength) return false;
  }
  return base === '' || !base.includes('\n');
}

function reduceToSingleString(
  ctx: Context,
  output: string[],
  base: string,
  braces: [string, string],
  extrasType: number,
  recurseTimes: number,
  value: object,
): string {
  if (ctx.compact !== true) {
    if (typeof ctx.compact === 'number' && ctx.compact >= 1) {
      const entries = output.length;
      if (extrasType === ARRAY_EXTRAS && entries > 6) output = groupArrayElements(ctx, output, value as unknown[]);
      // Up to `compact` innermost levels share a line, if it fits in breakLength.
      if (ctx.currentDepth - recurseTimes < ctx.compact && entries === output.length) {
        const start = output.length + ctx.indentationLvl + braces[0].length + base.length + 10;
        if (isBelowBreakLength(ctx, output, start, base)) {
          const joined = output.join(', ');
          if (!joined.includes('\n')) return `${base ? `${base} ` : ''}${braces[0]} ${joined} ${braces[1]}`;
        }
      }
    }
    const indentation = `\n${' '.repeat(ctx.indentationLvl)}`;
    return `${base ? `${base} ` : ''}${braces[0]}${indentation}  ${output.join(`,${indentation}  `)}${indentation}${braces[1]}`;
  }
  if (isBelowBreakLength(ctx, output, 0, base)) {
    return `${braces[0]}${base ? ` ${base}` : ''} ${output.join(', ')} ${braces[1]}`;
  }
  const indentation = ' '.repeat(ctx.indentationLvl);
  const ln = base === '' && braces[0].length === 1 ? ' ' : `${base ? ` ${base}` : ''}\n${indentation}  `;
  return `${braces[0]}${ln}${output.join(`,\n${indentation}  `)} ${braces[1]}`;
}

// --- values ------------------------------------------------------------------------------------

function formatValue(ctx: Context, value: unknown, recurseTimes: number, typedArray = false): string {
  if (typeof value !== 'object' && typeof value !== 'function') return formatPrimitive(ctx, value);
  if (value === null) return 'null';

  if (ctx.customInspect) {
    let custom: unknown;
    try {
      custom = (value as Record<symbol, unknown>)[customInspectSymbol];
    } catch {
      custom = undefined;
    }
    // Prototypes that carry the method are printed normally.
    const ctor = (value as { constructor?: { prototype?: unknown } }).constructor;
    if (typeof custom === 'function' && custom !== inspect && !(ctor && ctor.prototype === value)) {
      const depth = ctx.depth === null ? null : ctx.depth - recurseTimes;
      const options = { ...optionsOf(ctx), depth };
      const result = custom.call(value, depth, options, inspect);
      if (result !== value) {
        if (typeof result !== 'string') return formatValue(ctx, result, recurseTimes);
        return result.replace(/\n/g, `\n${' '.repeat(ctx.indentationLvl)}`);
      }
    }
  }

  if (ctx.seen.includes(value)) {
    ctx.circular ??= new Map();
    let index = ctx.circular.get(value);
    if (index === undefined) {
      index = ctx.circular.size + 1;
      ctx.circular.set(value, index);
    }
    return `[Circular *${index}]`;
  }
  return formatRaw(ctx, value, recurseTimes, typedArray);
}

function formatRaw(ctx: Context, value: object, recurseTimes: number, typedArray: boolean): string {
  const constructor = constructorName(value);
  let tag = (value as { [Symbol.toStringTag]?: unknown })[Symbol.toStringTag];
  // A tag that is an own (enumerable) property is printed as a key already.
  if (
    typeof tag !== 'string' ||
    (tag !== '' && (ctx.showHidden ? Object.prototype.hasOwnProperty : Object.prototype.propertyIsEnumerable).call(value, Symbol.toStringTag))
  ) {
    tag = '';
  }
  const tagName = tag as string;
  const kind = kindOf(value);
  let keys: PropertyKey[];
  let base = '';
  let formatter: Formatter = () => [];
  let braces: [string, string] = ['{', '}'];
  let extrasType = OBJECT;

  switch (kind) {
    case 'Array': {
      const array = value as unknown[];
      keys = nonIndexKeys(value, ctx.showHidden);
      const p = constructor !== 'Array' || tagName !== '' ? prefix(constructor, tagName, 'Array', `(${array.length})`) : '';
      braces = [`${p}[`, ']'];
      if (array.length === 0 && keys.length === 0) return `${braces[0]}]`;
      extrasType = ARRAY_EXTRAS;
      formatter = formatArray;
      break;
    }
    case 'Set':
    case 'Map': {
      const size = (kind === 'Set' ? intrinsics.setSize : intrinsics.mapSize).call(value) as number;
      keys = keysOf(value, ctx.showHidden);
      const p = prefix(constructor, tagName, kind, `(${size})`);
      if (size === 0 && keys.length === 0) return `${p}{}`;
      braces = [`${p}{`, '}'];
      formatter = kind === 'Set' ? formatSet : formatMap;
      break;
    }
    case 'TypedArray': {
      const length = (value as Uint8Array).length;
      keys = nonIndexKeys(value, ctx.showHidden);
      const p = prefix(constructor, tagName, typedArrayName(value)!, `(${length})`);
      braces = [`${p}[`, ']'];
      if (length === 0 && keys.length === 0 && !ctx.showHidden) return `${braces[0]}]`;
      formatter = formatTypedArray;
      extrasType = ARRAY_EXTRAS;
      break;
    }
    default: {
      keys = keysOf(value, ctx.showHidden);
      const platform = kind === 'Object' ? platformInterfaceName(value) : null;
      if (platform !== null) {
        braces[0] = `${prefix(constructor, tagName, platform)}{`;
        const iterable = typeof (value as { entries?: unknown }).entries === 'function' && Symbol.iterator in value;
        formatter = iterable ? formatPlatformEntries : formatPlatformAttributes;
        // Own accessors (Event's isTrusted) are listed with their values by the formatter.
        if (!iterable) keys = keys.filter((key) => !Object.getOwnPropertyDescriptor(value, key)?.get);
        break;
      }
      switch (kind) {
        case 'Function':
          base = functionBase(value as Function, constructor, tagName);
          if (keys.length === 0) return base;
          break;
        case 'Arguments':
          braces[0] = '[Arguments] {';
          if (keys.length === 0) return '[Arguments] {}';
          break;
        case 'RegExp': {
          base = RegExp.prototype.toString.call(constructor !== null ? value : new RegExp(value as RegExp));
          const p = prefix(constructor, tagName, 'RegExp');
          if (p !== 'RegExp ') base = `${p}${base}`;
          if (keys.length === 0 || (ctx.depth !== null && recurseTimes > ctx.depth)) return base;
          break;
        }
        case 'Date': {
          const time = intrinsics.getTime.call(value);
          base = Number.isNaN(time) ? 'Invalid Date' : Date.prototype.toISOString.call(value);
          const p = prefix(constructor, tagName, 'Date');
          if (p !== 'Date ') base = `${p}${base}`;
          if (keys.length === 0) return base;
          break;
        }
        case 'Error':
          base = formatError(ctx, value as Error, constructor, tagName, keys);
          if (keys.length === 0) return base;
          break;
        case 'ArrayBuffer':
        case 'SharedArrayBuffer': {
          const p = prefix(constructor, tagName, kind);
          if (!typedArray) formatter = formatArrayBuffer;
          else if (keys.length === 0) return `${p}{ byteLength: ${formatNumber((value as ArrayBuffer).byteLength)} }`;
          braces[0] = `${p}{`;
          keys.unshift('byteLength');
          break;
        }
        case 'DataView':
          braces[0] = `${prefix(constructor, tagName, 'DataView')}{`;
          keys.unshift('byteLength', 'byteOffset', 'buffer');
          break;
        case 'Promise':
          // An isolate cannot look at a promise's state without V8 internals.
          braces[0] = `${prefix(constructor, tagName, 'Promise')}{`;
          formatter = () => ['<unknown>'];
          break;
        case 'WeakMap':
        case 'WeakSet':
        case 'WeakRef':
          braces[0] = `${prefix(constructor, tagName, kind)}{`;
          formatter = () => ['<items unknown>'];
          break;
        case 'Number':
        case 'String':
        case 'Boolean':
        case 'BigInt':
        case 'Symbol':
          base = boxedBase(ctx, value, kind, keys, constructor, tagName);
          if (keys.length === 0) return base;
          break;
        default: {
          const fallback = kind === 'MapIterator' ? 'Map Iterator' : kind === 'SetIterator' ? 'Set Iterator' : 'Object';
          if (constructor === 'Object' && tagName === '') {
            if (keys.length === 0) return '{}';
          } else {
            const p = prefix(constructor, tagName, fallback);
            if (keys.length === 0) return `${p}{}`;
            braces[0] = `${p}{`;
          }
        }
      }
    }
  }

  if (ctx.depth !== null && recurseTimes > ctx.depth) {
    const name = prefix(constructor, tagName, kind === 'Object' ? 'Object' : kind).slice(0, -1);
    return constructor !== null ? `[${name}]` : name;
  }
  recurseTimes += 1;
  ctx.seen.push(value);
  ctx.currentDepth = recurseTimes;
  let output = formatter(ctx, value, recurseTimes);
  for (const key of keys) output.push(formatProperty(ctx, value, recurseTimes, key, extrasType));
  ctx.seen.pop();
  // A platform object with nothing to show: "Crypto {}".
  if (output.length === 0 && base === '') return `${braces[0]}${braces[1]}`;
  const reference = ctx.circular?.get(value);
  if (reference !== undefined) base = base === '' ? `<ref *${reference}>` : `<ref *${reference}> ${base}`;
  if (ctx.sorted) {
    if (extrasType === OBJECT) output = output.sort();
    else if (keys.length > 1) output.splice(output.length - keys.length, keys.length, ...output.slice(output.length - keys.length).sort());
  }
  return reduceToSingleString(ctx, output, base, braces, extrasType, recurseTimes, value);
}

function optionsOf(ctx: Context): InspectOptions {
  const { depth, showHidden, breakLength, compact, maxArrayLength, maxStringLength, customInspect, sorted } = ctx;
  return { depth, showHidden, breakLength, compact, maxArrayLength, maxStringLength, customInspect, sorted };
}

/** util.inspect(value, options): a readable rendering of any value. */
export function inspect(value: unknown, options: Partial<InspectOptions> = {}): string {
  const ctx: Context = { ...DEFAULTS, seen: [], circular: null, indentationLvl: 0, currentDepth: 0 };
  for (const key of Object.keys(DEFAULTS) as (keyof InspectOptions)[]) {
    if (options[key] !== undefined) (ctx as unknown as Record<string, unknown>)[key] = options[key];
  }
  if (ctx.maxArrayLength === null) ctx.maxArrayLength = Infinity;
  if (ctx.maxStringLength === null) ctx.maxStringLength = Infinity;
  try {
    return formatValue(ctx, value, 0);
  } catch (error) {
    // Printing must never be what breaks a worker (a throwing getter or Proxy trap, deep nesting).
    return `[Inspection failed: ${error instanceof Error ? error.message : String(error)}]`;
  }
}

// --- util.format -------------------------------------------------------------------------------

let builtInObjects: Set<string> | null = null;

/** True when the object's toString is the built-in one of its class (so %s should inspect it). */
function hasBuiltInToString(value: object): boolean {
  if (typeof (value as { toString?: unknown }).toString !== 'function') return true;
  if (Object.prototype.hasOwnProperty.call(value, 'toString')) return false;
  let pointer: object | null = value;
  do pointer = Object.getPrototypeOf(pointer);
  while (pointer !== null && !Object.prototype.hasOwnProperty.call(pointer, 'toString'));
  if (pointer === null) return true;
  builtInObjects ??= new Set(Object.getOwnPropertyNames(globalThis).filter((name) => /^[A-Z][a-zA-Z0-9]+$/.test(name)));
  const descriptor = Object.getOwnPropertyDescriptor(pointer, 'constructor');
  return descriptor !== undefined && typeof descriptor.value === 'function' && builtInObjects.has(descriptor.value.name);
}

function stringifyJSON(value: unknown): string {
  try {
    return JSON.stringify(value) as string;
  } catch (error) {
    if (error instanceof TypeError && /circular/i.test(error.message)) return '[Circular]';
    throw error;
  }
}

/** util.format(...args): printf-style %s %d %i %f %j %o %O %c %%, then the rest inspected. */
export function format(...args: unknown[]): string {
  const first = args[0];
  let a = 0;
  let str = '';
  let join = '';
  if (typeof first === 'string') {
    if (args.length === 1) return first;
    let lastPos = 0;
    for (let i = 0; i < first.length - 1; i++) {
      if (first.charCodeAt(i) !== 37) continue; // '%'
      const next = first.charCodeAt(++i);
      if (a + 1 !== args.length) {
        let piece: string;
        switch (next) {
          case 115: {
            // %s: numbers and bigints as such, objects inspected unless they have their own toString
            const arg = args[++a];
            if (typeof arg === 'number') piece = formatNumber(arg);
            else if (typeof arg === 'bigint') piece = `${arg}n`;
            else if (typeof arg !== 'object' || arg === null || !hasBuiltInToString(arg)) piece = String(arg);
            else piece = inspect(arg, { depth: 0, compact: 3 });
            break;
          }
          case 106: // %j
            piece = stringifyJSON(args[++a]);
            break;
          case 100: {
            // %d
            const arg = args[++a];
            piece = typeof arg === 'bigint' ? `${arg}n` : typeof arg === 'symbol' ? 'NaN' : formatNumber(Number(arg));
            break;
          }
          case 79: // %O
            piece = inspect(args[++a]);
            break;
          case 111: // %o
            piece = inspect(args[++a], { showHidden: true, depth: 4 });
            break;
          case 105: {
            // %i
            const arg = args[++a];
            piece = typeof arg === 'bigint' ? `${arg}n` : typeof arg === 'symbol' ? 'NaN' : formatNumber(parseInt(arg as string));
            break;
          }
          case 102: {
            // %f
            const arg = args[++a];
            piece = typeof arg === 'symbol' ? 'NaN' : formatNumber(parseFloat(arg as string));
            break;
          }
          case 99: // %c: CSS, consumed and dropped
            a++;
            piece = '';
            break;
          case 37: // %%
            str += first.slice(lastPos, i);
            lastPos = i + 1;
            continue;
          default:
            continue;
        }
        if (lastPos !== i - 1) str += first.slice(lastPos, i - 1);
        str += piece;
        lastPos = i + 1;
      } else if (next === 37) {
        str += first.slice(lastPos, i);
        lastPos = i + 1;
      }
    }
    if (lastPos !== 0) {
      a++;
      join = ' ';
      if (lastPos < first.length) str += first.slice(lastPos);
    }
  }
  while (a < args.length) {
    const value = args[a];
    str += join;
    str += typeof value !== 'string' ? inspect(value) : value;
    join = ' ';
    a++;
  }
  return str;
}

/** One console line from console.log's arguments. */
export function formatLogArgs(args: unknown[]): string {
  try {
    return format(...args);
  } catch (error) {
    // A throwing toString (%s) or JSON getter (%j): show that rather than lose the log line.
    return `[Formatting failed: ${error instanceof Error ? error.message : String(error)}]`;
  }
}
