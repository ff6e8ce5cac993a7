// An export definition for unit tests: the fields no unit test looks at, and what the test gives.
import { ExportDefinitionSchema, type ExportDefinition } from '../../shared/exports/schema';

export const exportDefinition = (fields: { segments: string[]; matching: Record<string, unknown> }): ExportDefinition =>
  ExportDefinitionSchema.parse({
    name: 'x',
    connectionId: '00000000-0000-4000-8000-000000000000',
    brazeSegmentApiId: 'seg-id',
    source: { container: 'abc', folder: 'f' },
    ...fields,
  });
