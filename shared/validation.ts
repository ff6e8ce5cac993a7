// zod parsing that fails with the API's 400 shape (each bad field named).
import type { z } from 'zod';
import { fromZodError } from './errors';

export function parseInput<S extends z.ZodType>(schema: S, input: unknown, prefix = ''): z.output<S> {
  const result = schema.safeParse(input);
  if (!result.success) throw fromZodError(result.error, prefix);
  return result.data;
}
