// Counts in the messages a person reads (run errors, waits, the guard, previews): grouped by
// thousands the same way whatever the host's locale, as the tests and the console expect.
export const thousands = (n: number): string => n.toLocaleString('en-US');
