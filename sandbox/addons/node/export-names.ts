// The export names of each node:* module nodejs-compat serves, known without evaluating the
// module: its namespace is made of getters that evaluate it on first read (only imported modules
// pay). test/nodejs-compat/export-names.test.ts checks these against the modules' real exports.
export const EXPORT_NAMES = {
  'buffer': ['Blob', 'Buffer', 'File', 'INSPECT_MAX_BYTES', 'SlowBuffer', 'atob', 'btoa', 'constants', 'default', 'isAscii', 'isUtf8', 'kMaxLength', 'kStringMaxLength'],
  'events': ['EventEmitter', 'addAbortListener', 'captureRejectionSymbol', 'default', 'defaultMaxListeners', 'errorMonitor', 'getEventListeners', 'listenerCount', 'on', 'once', 'setMaxListeners'],
  'string-decoder': ['StringDecoder', 'default'],
  'path': ['basename', 'default', 'delimiter', 'dirname', 'extname', 'format', 'isAbsolute', 'join', 'normalize', 'parse', 'posix', 'relative', 'resolve', 'sep', 'toNamespacedPath'],
  'url': ['URL', 'URLSearchParams', 'Url', 'default', 'domainToASCII', 'domainToUnicode', 'fileURLToPath', 'format', 'parse', 'pathToFileURL', 'resolve', 'urlToHttpOptions'],
  'util': ['TextDecoder', 'TextEncoder', 'aborted', 'callbackify', 'debug', 'debuglog', 'default', 'deprecate', 'format', 'formatWithOptions', 'inherits', 'inspect', 'isArray', 'isDeepStrictEqual', 'promisify', 'stripVTControlCharacters', 'toUSVString', 'types'],
  'util-types': ['isAnyArrayBuffer', 'isArgumentsObject', 'isArrayBuffer', 'isArrayBufferView', 'isAsyncFunction', 'isBigInt64Array', 'isBigIntObject', 'isBigUint64Array', 'isBooleanObject', 'isBoxedPrimitive', 'isCryptoKey', 'isDataView', 'isDate', 'isExternal', 'isFloat32Array', 'isFloat64Array', 'isGeneratorFunction', 'isGeneratorObject', 'isInt16Array', 'isInt32Array', 'isInt8Array', 'isKeyObject', 'isMap', 'isMapIterator', 'isModuleNamespaceObject', 'isNativeError', 'isNumberObject', 'isPromise', 'isProxy', 'isRegExp', 'isSet', 'isSetIterator', 'isSharedArrayBuffer', 'isStringObject', 'isSymbolObject', 'isTypedArray', 'isUint16Array', 'isUint32Array', 'isUint8Array', 'isUint8ClampedArray', 'isWeakMap', 'isWeakSet'],
  'crypto': ['Cipheriv', 'Decipheriv', 'Hash', 'Hmac', 'createCipheriv', 'createDecipheriv', 'createHash', 'createHmac', 'default', 'getCiphers', 'getHashes', 'getRandomValues', 'hash', 'hkdf', 'hkdfSync', 'pbkdf2', 'pbkdf2Sync', 'pseudoRandomBytes', 'randomBytes', 'randomFill', 'randomFillSync', 'randomInt', 'randomUUID', 'subtle', 'timingSafeEqual', 'webcrypto'],
  'crypto-keys': ['ECDH', 'KeyObject', 'PrivateKeyObject', 'PublicKeyObject', 'SecretKeyObject', 'Sign', 'Verify', 'constants', 'createECDH', 'createPrivateKey', 'createPublicKey', 'createSecretKey', 'createSign', 'createVerify', 'diffieHellman', 'generateKey', 'generateKeyPair', 'generateKeyPairSync', 'generateKeySync', 'getCurves', 'privateDecrypt', 'privateEncrypt', 'publicDecrypt', 'publicEncrypt', 'scrypt', 'scryptSync', 'sign', 'verify'],
  'crypto-dh': ['DiffieHellman', 'DiffieHellmanGroup', 'checkPrime', 'checkPrimeSync', 'createDiffieHellman', 'createDiffieHellmanGroup', 'generatePrime', 'generatePrimeSync', 'getDiffieHellman'],
  'async-hooks': ['AsyncLocalStorage', 'AsyncResource', 'default'],
} as const;
