// "Preview draft": what the form's definition would do, previewed before it is saved — a new
// export's first run, or an edit against the export's sync state. Nothing is saved or sent.
import { api, ApiError } from '../../api';
import { replace, say, h } from '../../dom';
import { busy, type FormErrors } from '../../forms';
import { previewView } from './preview';

/** An API error as the form shows it: an edit's issues come named `definition.…`. */
const forForm = (e: unknown) =>
  e instanceof ApiError
    ? new ApiError(
        e.status,
        e.message,
        e.issues.map((i) => ({ ...i, path: i.path.replace(/^definition\./, '') })),
        e.details,
      )
    : new ApiError(0, (e as Error).message);

/**
 * The button; the preview goes into `slot`, errors where the form shows its own. An edit's preview
 * sends `etag` (the export as the form loaded it) as If-Match: a 412 says it changed since.
 */
export function draftPreviewButton(
  errors: FormErrors,
  body: () => Record<string, unknown>,
  exportId: string | null,
  slot: HTMLElement,
  etag?: string,
): HTMLButtonElement {
  const button = h('button', { type: 'button' }, 'Preview draft');
  const run = async () => {
    if (!errors.checkAll()) return;
    replace(slot);
    say('Previewing the draft: reading the newest snapshot… (nothing is saved or sent)');
    try {
      const p = exportId
        ? await api('POST', `/api/exports/${exportId}/preview`, { definition: body() }, etag ? { 'If-Match': etag } : {})
        : await api('POST', '/api/exports/preview', body());
      const title = exportId ? 'Preview of your changes: what the next run would do' : 'Preview of this draft: its first run';
      replace(slot, previewView(p, title));
      say('Preview ready. Nothing was saved.');
    } catch (e) {
      say('');
      errors.show(forForm(e));
    }
  };
  button.addEventListener('click', () => void busy(button, run));
  return button;
}
