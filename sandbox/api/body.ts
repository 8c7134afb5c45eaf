// SCAFFOLD — replaced by the fetch-family implementation.
import type { Response } from './response.js';
export async function bodyForWire(r: Response): Promise<string | ArrayBuffer | null> { return (r as unknown as { _body: string | null })._body; }
