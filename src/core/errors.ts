/**
 * A failure the user can fix: bad flags, a bad template, a missing directory,
 * a malformed config. Printed as one sentence (plus an optional hint) without
 * a stack, exit 2. Anything else that escapes is a bug and is printed with its
 * stack as "unexpected error".
 */
export class UsageError extends Error {
  readonly hint: string | undefined;

  constructor(message: string, hint?: string) {
    super(message);
    this.name = 'UsageError';
    this.hint = hint;
  }
}

export function isErrnoException(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string';
}

export function errnoCode(error: unknown): string | undefined {
  return isErrnoException(error) ? error.code : undefined;
}

/**
 * A usage error, also when thrown by a separately bundled part of the CLI
 * (the yargs parser is loaded from a file of its own, with its own class).
 */
export function isUsageError(error: unknown): error is UsageError {
  return error instanceof UsageError || (error instanceof Error && error.name === 'UsageError');
}
