#!/usr/bin/env node
// Watches prompts of an account through WatchPrompts (a server stream, built
// from protos/ alone) and prints each promotion as it happens: the server
// pushes every change as it commits, on whichever replica it was made.
//
//   PROMPTGAUGE_TARGET=127.0.0.1:50051 PROMPTGAUGE_API_KEY=pgk_... node watch.js [NAME ...]
//
// Options: --target, --api-key (override the environment), --count N (exit
// after N promotions; default: watch until interrupted). Prints one
// `watching NAME vN` line per prompt first, then `promoted NAME vN (was vM)
// by KEY_ID, sequence S` per activation. On a disconnect it reconnects and
// resumes after the last sequence seen, so no promotion is missed.
// Exit status 0 after --count promotions, 1 on a failed call, 2 on bad usage.
'use strict';

const { parseArgs } = require('node:util');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTOS = path.resolve(__dirname, '..', '..', 'protos');
// Status codes after which watching again cannot help.
const FINAL = new Set([grpc.status.UNAUTHENTICATED, grpc.status.NOT_FOUND, grpc.status.INVALID_ARGUMENT]);

function usage(message) {
  process.stderr.write(`${message}\nusage: node watch.js [--target HOST:PORT] [--api-key KEY] [--count N] [NAME ...]\n`);
  process.exit(2);
}

function options() {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: { target: { type: 'string' }, 'api-key': { type: 'string' }, count: { type: 'string' } },
    });
  } catch (error) {
    usage(error.message);
  }
  const { values, positionals } = parsed;
  const apiKey = values['api-key'] || process.env.PROMPTGAUGE_API_KEY;
  if (!apiKey) usage('an API key is needed: --api-key or PROMPTGAUGE_API_KEY');
  const count = values.count === undefined ? Infinity : Number(values.count);
  if (!(count === Infinity || (Number.isInteger(count) && count > 0))) usage('--count must be a positive integer');
  return {
    target: values.target || process.env.PROMPTGAUGE_TARGET || '127.0.0.1:50051', apiKey, count, names: positionals,
  };
}

function main() {
  const opts = options();
  const definition = protoLoader.loadSync(['promptgauge/v1/prompts.proto'], {
    includeDirs: [PROTOS], keepCase: true, longs: String, enums: String, defaults: false, oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(definition).promptgauge.v1;
  const prompts = new pkg.PromptService(opts.target, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${opts.apiKey}`);
  let lastSequence = '0';
  let promotions = 0;
  let retryMs = 100;

  function watch() {
    const call = prompts.WatchPrompts({ names: opts.names, after_sequence: lastSequence }, metadata);
    call.on('data', (message) => {
      retryMs = 100;
      for (const state of message.states || []) {
        if (lastSequence === '0') console.log(`watching ${state.name} v${state.active_version}`);
      }
      for (const event of message.events || []) {
        lastSequence = event.sequence;
        if (event.kind !== 'EVENT_KIND_VERSION_ACTIVATED') continue;
        const was = event.previous_version === undefined ? 'none' : `v${event.previous_version}`;
        console.log(`promoted ${event.name} v${event.version} (was ${was}) by ${event.created_by}, sequence ${event.sequence}`);
        promotions += 1;
        if (promotions >= opts.count) {
          call.cancel();
          prompts.close();
          return;
        }
      }
      for (const state of message.states || []) {
        if (BigInt(state.sequence) > BigInt(lastSequence)) lastSequence = state.sequence;
      }
    });
    call.on('error', (error) => {
      if (error.code === grpc.status.CANCELLED && promotions >= opts.count) return;
      if (FINAL.has(error.code)) {
        process.stderr.write(`error: WatchPrompts failed: ${error.details}\n`);
        process.exit(1);
      }
      process.stderr.write(`stream ended (${error.details}); reconnecting in ${retryMs} ms\n`);
      setTimeout(watch, retryMs);
      retryMs = Math.min(retryMs * 2, 5000);
    });
  }
  watch();
}

main();
