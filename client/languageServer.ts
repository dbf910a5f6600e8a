/**
 * Creates the LanguageClient that runs the Unmask language server (dist/server.js) in a Node process over IPC.
 * Failures are never swallowed: a server that cannot start, or that crashes, is reported to the user with a way to
 * the log, and a crashed server is restarted (unless it keeps crashing, see RestartPolicy).
 */
import * as fs from 'node:fs';
import * as vscode from 'vscode';
import {
  CloseAction,
  ErrorAction,
  LanguageClient,
  RevealOutputChannelOn,
  TransportKind,
  type CloseHandlerResult,
  type ErrorHandlerResult,
  type LanguageClientOptions,
  type Middleware,
  type ServerOptions,
} from 'vscode-languageclient/node';
import type { UnmaskConfig } from './config';
import type { RestartPolicy } from './restartPolicy';

export interface ServerDependencies {
  readonly context: vscode.ExtensionContext;
  readonly log: vscode.LogOutputChannel;
  readonly config: () => UnmaskConfig;
  readonly provideInlineCompletionItems: NonNullable<Middleware['provideInlineCompletionItems']>;
  /** Called with a user-facing message when the server is gone for good (not restarted). */
  readonly onFatal: (message: string) => void;
  /** Counts crashes; the "Restart Server" command resets it. */
  readonly restarts: RestartPolicy;
  /** Called after the client restarted a crashed server. */
  readonly onRestarted: () => void;
}

/** The documents the server sees and completes: files on disk and untitled buffers, in any language. */
const DOCUMENT_SELECTOR = [{ scheme: 'file' }, { scheme: 'untitled' }];

/** Path of the bundled server, or an error message when the extension was not built. */
export function serverModulePath(context: vscode.ExtensionContext): string {
  const path = context.asAbsolutePath('dist/server.js');
  if (!fs.existsSync(path)) {
    throw new Error(`the language server is missing (${path}); run "npm run build" in the extension folder`);
  }
  return path;
}

export function createLanguageClient(deps: ServerDependencies): LanguageClient {
  const module = serverModulePath(deps.context);
  const serverOptions: ServerOptions = {
    run: { module, transport: TransportKind.ipc },
    debug: { module, transport: TransportKind.ipc, options: { execArgv: ['--nolazy', '--inspect=6011'] } },
  };

  const clientOptions: LanguageClientOptions = {
    documentSelector: DOCUMENT_SELECTOR,
    outputChannel: deps.log,
    revealOutputChannelOn: RevealOutputChannelOn.Never,
    // The server pulls the "unmask" section through workspace/configuration; this only tells it when to pull again.
    synchronize: { configurationSection: 'unmask' },
    middleware: {
      provideInlineCompletionItems: deps.provideInlineCompletionItems,
      workspace: {
        // Answer with the typed, clamped configuration rather than the raw settings the user typed.
        configuration: async (params, token, next) => {
          const raw = await next(params, token);
          if (!Array.isArray(raw)) return raw;
          return params.items.map((item, i) => (item.section === 'unmask' ? deps.config() : raw[i]));
        },
      },
    },
    initializationFailedHandler: (error) => {
      deps.log.error(`The Unmask server failed to initialise: ${String(error)}`);
      deps.onFatal(`Unmask: the language server failed to initialise (${messageOf(error)}).`);
      return false;
    },
    errorHandler: {
      error: (error, _message, count): ErrorHandlerResult => {
        deps.log.error(`Connection to the Unmask server failed (${count ?? 1}x): ${error.message}`);
        return { action: (count ?? 1) <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown, handled: true };
      },
      closed: (): CloseHandlerResult => {
        if (deps.restarts.shouldRestart(Date.now())) {
          deps.log.warn('The Unmask server stopped unexpectedly; restarting it.');
          deps.onRestarted();
          return { action: CloseAction.Restart, handled: true };
        }
        deps.log.error('The Unmask server keeps crashing; not restarting it.');
        deps.onFatal('Unmask: the language server crashed repeatedly and was not restarted.');
        return { action: CloseAction.DoNotRestart, handled: true };
      },
    },
  };
  return new LanguageClient('unmask', 'Unmask', serverOptions, clientOptions);
}

export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === 'object' && error !== null && 'message' in error) return String(error.message);
  return String(error);
}
