// SCAFFOLD — replaced by the fetch-family implementation.
import { Request } from './request.js';
import { Response } from './response.js';
export const fetchGlobals: Record<string, unknown> = { Request, Response };
