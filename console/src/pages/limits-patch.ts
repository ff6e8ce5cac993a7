// What the limits form sends: only the settings the person changed, so a save from a page loaded
// before someone else's edit does not write back the other setting's stale value.

export interface LimitsSettings {
  requestBudget: number;
  hourlyRequestCap: number | null;
}

/** The PATCH body (only what differs from the connection as the page loaded it); null = nothing changed. */
export function changedLimits(loaded: Partial<LimitsSettings>, form: LimitsSettings): Partial<LimitsSettings> | null {
  const body: Partial<LimitsSettings> = {};
  if (form.requestBudget !== loaded.requestBudget) body.requestBudget = form.requestBudget;
  if (form.hourlyRequestCap !== (loaded.hourlyRequestCap ?? null)) body.hourlyRequestCap = form.hourlyRequestCap;
  return Object.keys(body).length > 0 ? body : null;
}
