// AjarError: an error the user can act on. It carries a stable code and a message that says what is wrong
// and what to do; the CLI prints the message on one line and exits 2, the server maps codes to 4xx.

export class AjarError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'AjarError';
    this.code = code;
  }
}

export function isAjarError(e: unknown): e is AjarError {
  return e instanceof AjarError;
}
