// Pieces several commands share: the backend choice and reading user files with clear errors.
import { readFileSync, statSync } from 'node:fs';
import { AjarError } from '../tensor/errors.js';

export { backendChoice, selectBackend } from '../backends/select.js';

/** Read a UTF-8 text file named by a flag, or a clear error. */
export function readTextFile(path: string, what: string): string {
  let isFile = false;
  try {
    isFile = statSync(path).isFile();
  } catch {
    throw new AjarError('data_not_found', `${what} ${path} does not exist`);
  }
  if (!isFile) throw new AjarError('data_not_found', `${what} ${path} is not a file`);
  return readFileSync(path, 'utf8');
}

/** Print one JSON object on stdout. */
export function printJson(obj: unknown): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}
