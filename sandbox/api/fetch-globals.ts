// The fetch family of Web API globals: every name this family puts on globalThis, and nothing
// else. (fetch() itself is the host bridge's business; see bindings/.)
import { Blob, File } from './blob.js';
import { FormData } from './form-data.js';
import { Headers } from './headers.js';
import { Request } from './request.js';
import { Response } from './response.js';
import {
  ByteLengthQueuingStrategy,
  CountQueuingStrategy,
  FixedLengthStream,
  IdentityTransformStream,
  ReadableByteStreamController,
  ReadableStream,
  ReadableStreamBYOBReader,
  ReadableStreamBYOBRequest,
  ReadableStreamDefaultController,
  ReadableStreamDefaultReader,
  TextDecoderStream,
  TextEncoderStream,
  TransformStream,
  TransformStreamDefaultController,
  WritableStream,
  WritableStreamDefaultController,
  WritableStreamDefaultWriter,
} from './streams.js';
import { URL, URLSearchParams } from './url.js';

export const fetchGlobals: Record<string, unknown> = {
  Headers,
  Request,
  Response,
  URL,
  URLSearchParams,
  Blob,
  File,
  FormData,
  ReadableStream,
  ReadableStreamDefaultReader,
  ReadableStreamBYOBReader,
  ReadableStreamBYOBRequest,
  ReadableStreamDefaultController,
  ReadableByteStreamController,
  WritableStream,
  WritableStreamDefaultWriter,
  WritableStreamDefaultController,
  TransformStream,
  TransformStreamDefaultController,
  ByteLengthQueuingStrategy,
  CountQueuingStrategy,
  TextEncoderStream,
  TextDecoderStream,
  IdentityTransformStream,
  FixedLengthStream,
};
