// node:path (POSIX) on pathe, which follows Node's path.posix. Workers run from '/bundle', as
// workerd reports in process.cwd(), so relative paths resolve there.
import * as pathe from 'pathe';

export const { basename, dirname, extname, format, isAbsolute, join, normalize, parse, relative, resolve, toNamespacedPath } = pathe;
export const sep = '/';
export const delimiter = ':';

const posixPath: Record<string, unknown> = { basename, dirname, extname, format, isAbsolute, join, normalize, parse, relative, resolve, toNamespacedPath, sep, delimiter };
posixPath.posix = posixPath;
export const posix = posixPath;
export default posixPath;
