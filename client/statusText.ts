/**
 * What the status bar item says: the server's state (from `unmask/status`), the device, the last latency, and the
 * client's own on/off state. Pure, so the wording is tested without VS Code.
 */
import type { StatusParams } from '../server/protocol/messages';
import type { TriggerMode } from './config';
import type { OffReason } from './enablement';
import { TRIGGER_KEY_LABEL } from './triggerPolicy';

export interface StatusView {
  /** Status bar text with codicons, e.g. "$(sparkle) Unmask 84 ms". */
  readonly text: string;
  /** Markdown-free multi-line tooltip. */
  readonly tooltip: string;
  /** Whether the item should use the error background. */
  readonly error: boolean;
  /** Whether the item should use the warning background (off or snoozed). */
  readonly warning: boolean;
}

export interface ClientSide {
  /** Why completions are off for the active editor, if they are. */
  readonly off?: OffReason;
  /** Minutes of snooze left (rounded up), when snoozed. */
  readonly snoozeMinutesLeft?: number;
  /** Language id of the active editor, for the tooltip. */
  readonly languageId?: string;
  /** The client could not start or lost the server for good. */
  readonly clientError?: string;
  /** unmask.triggerMode; "manual" is shown in the label. */
  readonly triggerMode?: TriggerMode;
  /** unmask.minConfidence: suggestions made as you type are shown from this score on. */
  readonly minConfidence?: number;
}

const ICONS = {
  loading: '$(loading~spin)',
  ready: '$(sparkle)',
  busy: '$(sync~spin)',
  error: '$(error)',
  disabled: '$(circle-slash)',
  unloaded: '$(debug-pause)',
} as const;

export function formatLatency(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

export function describeStatus(server: StatusParams | undefined, client: ClientSide = {}): StatusView {
  const lines: string[] = [];
  let icon: string = ICONS.loading;
  let label = 'Unmask';
  let error = false;

  if (client.clientError) {
    icon = ICONS.error;
    error = true;
    lines.push(`Server not running: ${client.clientError}`);
  } else if (!server) {
    lines.push('Starting the language server…');
  } else {
    icon = ICONS[server.state];
    error = server.state === 'error';
    const stateLine: Record<StatusParams['state'], string> = {
      loading: 'Loading the model…',
      ready: 'Ready',
      busy: 'Generating…',
      error: `Error: ${server.message ?? 'unknown error (see the log)'}`,
      disabled: 'Model disabled',
      unloaded: 'Model unloaded while idle (setting unmask.idleUnloadMinutes); the next request loads it again',
    };
    lines.push(stateLine[server.state]);
    if (server.modelId) lines.push(`Model: ${server.modelId}`);
    if (server.device) lines.push(`Device: ${server.device}${server.deviceNote ? ` (${server.deviceNote})` : ''}`);
    if (server.lastRestart) lines.push(`Inference worker restarts: ${server.workerRestarts ?? 1} (last: ${server.lastRestart})`);
    if (server.lastLatencyMs !== undefined) {
      lines.push(`Last completion: ${formatLatency(server.lastLatencyMs)}`);
      if (server.state === 'ready') label = `Unmask ${formatLatency(server.lastLatencyMs)}`;
    }
    if (server.lastSuggestion) lines.push(`Last suggestion as you type: ${server.lastSuggestion}`);
  }

  if (client.triggerMode === 'manual') {
    label += ' (manual)';
    lines.push(`Trigger mode: manual. Press ${TRIGGER_KEY_LABEL} (Unmask: Suggest at Cursor) for a suggestion.`);
  } else if (client.triggerMode === 'automatic') {
    const gate =
      client.minConfidence !== undefined && client.minConfidence > 0
        ? `, shown at confidence >= ${client.minConfidence} (unmask.minConfidence)`
        : '';
    lines.push(`Trigger mode: automatic (suggestions as you type${gate}).`);
  }

  let warning = false;
  if (client.off && !error) {
    warning = true;
    icon = ICONS.disabled;
    if (client.off === 'disabled') {
      label = 'Unmask off';
      lines.unshift('Inline completions are turned off.');
    } else if (client.off === 'snoozed') {
      label = `Unmask snoozed ${client.snoozeMinutesLeft ?? 0} min`;
      lines.unshift(`Inline completions are snoozed for ${client.snoozeMinutesLeft ?? 0} more minute(s).`);
    } else {
      warning = false;
      lines.unshift(
        `Inline completions are off for ${client.languageId ?? 'this language'} (setting unmask.languages; the shipped model knows Python, TypeScript and JavaScript).`,
      );
    }
  }
  lines.push('Click for options.');
  return { text: `${icon} ${label}`, tooltip: lines.join('\n'), error, warning };
}
