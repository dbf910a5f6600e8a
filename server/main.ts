/**
 * Entry point of the language server (bundled as dist/server.js). The client starts it over node IPC; `--stdio` and
 * `--node-ipc` on the command line pick the transport, as vscode-languageserver reads them.
 */
import * as path from 'node:path';
import { ProposedFeatures, createConnection } from 'vscode-languageserver/node';
import { faultHooks } from './fault-hooks';
import { startServer } from './protocol/server';

// dist/server.js and server/main.ts both sit one folder below the extension root.
const extensionRoot = path.resolve(__dirname, '..');
const connection = createConnection(ProposedFeatures.all);

// A bug in one request must not take the server down: log it, and keep serving.
process.on('uncaughtException', (err) => connection.console.error(`uncaught exception: ${err.stack ?? err.message}`));
process.on('unhandledRejection', (reason) => connection.console.error(`unhandled rejection: ${String((reason as Error)?.stack ?? reason)}`));

// Read once, before anything loads: the fault suite's worker and deadline (fault-hooks.ts); empty when not testing.
startServer(connection, { extensionRoot, faultHooks: faultHooks(process.env) });
