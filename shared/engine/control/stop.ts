// Why a run stops before its end, as the engine signals it to its caller.

/** The caller asked the run to stop (cancel, or its worker lost the export's lease): nothing more is sent. */
export class RunStopped extends Error {
  constructor(message = 'the run was asked to stop') {
    super(message);
    this.name = 'RunStopped';
  }
}

/** Someone else wrote the export's sync state or holds its lease: this worker must not write again. */
export class StateTakenOver extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StateTakenOver';
  }
}
