/**
 * What an inline completion request may do under `unmask.triggerMode`. Pure, so the rule is tested without VS Code.
 *
 * automatic: every request may run the model (after the debounce). manual: only an explicit request runs it (the
 * user pressed Ctrl+Alt+\ / ran "Unmask: Suggest at Cursor", or VS Code's "Trigger Inline Suggestion", or asked for
 * the next alternative with Alt+]); the automatic requests VS Code sends while the user types may only reuse what
 * was already generated (the cache's typed-along match), so a suggestion that was asked for keeps following the
 * typing but nothing new is generated unasked.
 */
import type { TriggerMode } from './config';

/** "model": may ask the server; "cache": may only reuse a completion already made. */
export type InlineRoute = 'model' | 'cache';

export function inlineRoute(mode: TriggerMode, automatic: boolean): InlineRoute {
  return automatic && mode === 'manual' ? 'cache' : 'model';
}

/** The other mode, for "Unmask: Switch Trigger Mode". */
export function otherMode(mode: TriggerMode): TriggerMode {
  return mode === 'manual' ? 'automatic' : 'manual';
}

/** The key that asks for a suggestion (package.json binds it to unmask.triggerSuggestion), as users read it. */
export const TRIGGER_KEY_LABEL = 'Ctrl+Alt+\\';
