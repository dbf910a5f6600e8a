/**
 * Restricted Mode and `unmask.modelPath`. package.json declares the setting restricted, so in an untrusted workspace
 * VS Code hands the extension the user's value and silently drops the workspace's. Silence would look like a bug (the
 * workspace asks for its own model and gets the shipped one), so the user is told why and how to change it.
 */

/** What `WorkspaceConfiguration.inspect` reports for the setting (only the workspace scopes matter here). */
export interface InspectedSetting {
  readonly workspaceValue?: unknown;
  readonly workspaceFolderValue?: unknown;
}

/** The notice for an untrusted workspace that sets its own model path, or undefined when nothing is ignored. */
export function ignoredModelPathNotice(trusted: boolean, inspected: InspectedSetting | undefined): string | undefined {
  if (trusted || !inspected) return undefined;
  const value = [inspected.workspaceFolderValue, inspected.workspaceValue].find((v) => typeof v === 'string' && v.trim() !== '');
  if (value === undefined) return undefined;
  return (
    `this workspace sets unmask.modelPath to ${JSON.stringify(value)}, which would load model files from the workspace; ` +
    'in Restricted Mode it is ignored and completions come from the model shipped with the extension. Trust the workspace to use it.'
  );
}
