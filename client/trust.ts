/**
 * Restricted Mode and `unmask.modelPath`. package.json declares the setting restricted, so in an untrusted workspace
 * VS Code hands the extension the user's value and silently drops the workspace's. Silence would look like a bug (the
 * workspace asks for its own model and gets the shipped one), so the user is told why and how to change it.
 *
 * The workspace's value cannot come from `WorkspaceConfiguration.inspect`: in an untrusted workspace VS Code leaves
 * restricted settings out of the workspace scopes altogether (found by the e2e test), so the settings files are read
 * as text: each folder's `.vscode/settings.json` and the `.code-workspace` file's `settings`. No vscode import here.
 */
import { parse, type ParseError } from 'jsonc-parser';

const SETTING = 'unmask.modelPath';

/** A workspace settings file as text; a `.code-workspace` file (kind 'workspace') keeps them under "settings". */
export interface SettingsFile {
  readonly text: string;
  readonly kind: 'folder' | 'workspace';
}

/** The first non-blank `unmask.modelPath` set in these files (JSON with comments, as VS Code reads them). */
export function workspaceModelPath(files: readonly SettingsFile[]): string | undefined {
  for (const file of files) {
    const errors: ParseError[] = [];
    const root: unknown = parse(file.text, errors, { allowTrailingComma: true, disallowComments: false });
    const settings = file.kind === 'workspace' && isObject(root) ? root.settings : root;
    const value = isObject(settings) ? settings[SETTING] : undefined;
    if (typeof value === 'string' && value.trim() !== '') return value;
  }
  return undefined;
}

/** The notice for an untrusted workspace that sets its own model path, or undefined when nothing is ignored. */
export function ignoredModelPathNotice(trusted: boolean, workspaceValue: string | undefined): string | undefined {
  if (trusted || workspaceValue === undefined) return undefined;
  return (
    `this workspace sets ${SETTING} to ${JSON.stringify(workspaceValue)}, which would load model files from the workspace; ` +
    'in Restricted Mode it is ignored and completions come from the model shipped with the extension. Trust the workspace to use it.'
  );
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
