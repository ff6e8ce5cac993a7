// Counts in the messages a person reads (run errors, waits, the guard, previews, connection limits,
// verification): 12000 as "12,000", grouped the same way whatever the host's locale.
export const thousands = (n: number): string => n.toLocaleString('en-US');
