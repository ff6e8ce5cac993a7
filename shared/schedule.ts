// NCRONTAB (six fields, seconds first, UTC) as Azure Functions timers use it.
import { CronExpressionParser } from 'cron-parser';

export function ncrontabError(expression: string): string | null {
  if (expression.trim().split(/\s+/).length !== 6) return 'must have 6 fields: second minute hour day month day-of-week';
  try {
    CronExpressionParser.parse(expression, { tz: 'UTC' });
    return null;
  } catch (e) {
    return `is not a valid NCRONTAB expression (${(e as Error).message})`;
  }
}

/** Whether an occurrence of `expression` falls in (after, until]. */
export function occursBetween(expression: string, after: Date, until: Date): boolean {
  const next = CronExpressionParser.parse(expression, { tz: 'UTC', currentDate: after }).next().toDate();
  return next.getTime() <= until.getTime();
}

/** The next occurrence after `from`. */
export function nextOccurrence(expression: string, from: Date): Date {
  return CronExpressionParser.parse(expression, { tz: 'UTC', currentDate: from }).next().toDate();
}
