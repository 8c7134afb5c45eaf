// An error the guest receives by name and message (TypeError, RangeError, ...): storage refusals,
// bad ids, SQL that is not allowed.
export class StorageError extends Error {
  constructor(message: string, name = 'Error') {
    super(message);
    this.name = name;
  }
}
