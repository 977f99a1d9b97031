#!/usr/bin/env node
// A Node.js agent instrumented with OpenTelemetry alone: nothing of
// promptgauge's, only @opentelemetry/sdk-trace-node and the standard
// OTLP/gRPC trace exporter pointed at promptgauge's port with the API key in
// its metadata. Each synthetic run is a trace: a root span "agent.run" (the
// run's outcome: status, promptgauge.cost_usd, gen_ai.usage.* tokens), a
// child "llm.call" carrying promptgauge.prompt.name and
// promptgauge.prompt.version (the link), and a child "tool.search" that
// carries nothing for promptgauge. docs/opentelemetry.md has the mapping.
//
// The prompt's versions must exist (promptgauge prompts create ...).
//
//   PROMPTGAUGE_TARGET=127.0.0.1:50051 PROMPTGAUGE_API_KEY=pgk_... \
//     node agent.js --prompt NAME --versions 1,2
//
// Options: --target, --api-key (override the environment), --prompt NAME,
// --versions LIST (default 1,2; runs alternate between them), --runs N
// (default 40), --seed N (default 1). It prints one line "runs {...}": per
// version, what it did (runs, failures, total cost, durations in ms, tokens),
// and "exports N failed N". Exit status 0 when every export succeeded, 1
// when one failed (the exporter's error is printed), 2 on bad usage.
'use strict';

const { parseArgs } = require('node:util');

const grpc = require('@grpc/grpc-js');
const { ROOT_CONTEXT, SpanStatusCode, trace } = require('@opentelemetry/api');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-grpc');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { BatchSpanProcessor, NodeTracerProvider } = require('@opentelemetry/sdk-trace-node');

const SUCCESS = 0; // ExportResultCode.SUCCESS of @opentelemetry/core

function usage(message) {
  process.stderr.write(`${message}\n`);
  process.stderr.write(
    'usage: node agent.js --prompt NAME [--versions 1,2] [--runs N] [--seed N] [--target HOST:PORT] [--api-key KEY]\n',
  );
  process.exit(2);
}

function options() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        target: { type: 'string' },
        'api-key': { type: 'string' },
        prompt: { type: 'string' },
        versions: { type: 'string', default: '1,2' },
        runs: { type: 'string', default: '40' },
        seed: { type: 'string', default: '1' },
      },
    }));
  } catch (error) {
    usage(error.message);
  }
  const target = values.target || process.env.PROMPTGAUGE_TARGET;
  const apiKey = values['api-key'] || process.env.PROMPTGAUGE_API_KEY;
  if (!target) usage('--target or PROMPTGAUGE_TARGET is required');
  if (!apiKey) usage('--api-key or PROMPTGAUGE_API_KEY is required');
  if (!values.prompt) usage('--prompt is required');
  const versions = values.versions.split(',').map(Number);
  if (!versions.every((v) => Number.isInteger(v) && v > 0)) usage('--versions must be positive integers, e.g. 1,2');
  const runs = Number(values.runs);
  const seed = Number(values.seed);
  if (!Number.isInteger(runs) || runs < 1) usage('--runs must be a positive integer');
  if (!Number.isInteger(seed)) usage('--seed must be an integer');
  return { target, apiKey, prompt: values.prompt, versions, runs, seed };
}

// mulberry32: the same runs for the same seed, on every machine.
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// [seconds, nanoseconds]: OpenTelemetry's HrTime, exact to the nanosecond.
function hrTime(ms) {
  return [Math.floor(ms / 1000), (ms % 1000) * 1e6];
}

// An exporter that counts its exports and keeps the first error.
function counting(exporter, counts) {
  return {
    export(spans, done) {
      exporter.export(spans, (result) => {
        counts.exports += 1;
        if (result.code !== SUCCESS) {
          counts.failed += 1;
          counts.error = counts.error || result.error;
        }
        done(result);
      });
    },
    shutdown: () => exporter.shutdown(),
    forceFlush: () => exporter.forceFlush(),
  };
}

async function main() {
  const opts = options();
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${opts.apiKey}`);
  const counts = { exports: 0, failed: 0, error: null };
  const exporter = counting(
    new OTLPTraceExporter({
      url: `http://${opts.target}`,
      credentials: grpc.credentials.createInsecure(),
      metadata,
    }),
    counts,
  );
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'otel-node-agent' }),
    spanProcessors: [new BatchSpanProcessor(exporter, { maxExportBatchSize: 16, scheduledDelayMillis: 50 })],
  });
  const tracer = provider.getTracer('otel-node-agent');
  const rng = random(opts.seed);
  const did = {};
  const base = Date.now() - 3600 * 1000;
  for (let i = 0; i < opts.runs; i += 1) {
    const version = opts.versions[i % opts.versions.length];
    const start = base + i * 1000;
    const durationMs = 50 + Math.floor(rng() * 1950);
    const ok = rng() >= (version === opts.versions[0] ? 0.3 : 0.1);
    const costUsd = Math.round((0.001 + rng() * 0.05) * 1e4) / 1e4;
    const inputTokens = 100 + Math.floor(rng() * 3900);
    const outputTokens = 10 + Math.floor(rng() * 790);

    const root = tracer.startSpan('agent.run', { startTime: hrTime(start) });
    root.setAttribute('promptgauge.cost_usd', costUsd);
    root.setAttribute('gen_ai.usage.input_tokens', inputTokens);
    root.setAttribute('gen_ai.usage.output_tokens', outputTokens);
    if (!ok) root.setStatus({ code: SpanStatusCode.ERROR, message: 'the tool call failed' });
    const inside = trace.setSpan(ROOT_CONTEXT, root);
    const llm = tracer.startSpan('llm.call', { startTime: hrTime(start + 1) }, inside);
    llm.setAttribute('promptgauge.prompt.name', opts.prompt);
    llm.setAttribute('promptgauge.prompt.version', version);
    llm.setAttribute('gen_ai.request.model', 'demo-model');
    const tool = tracer.startSpan('tool.search', { startTime: hrTime(start + 2) }, inside);
    tool.setAttribute('tool.name', 'search');
    tool.end(hrTime(start + 3));
    llm.end(hrTime(start + durationMs - 1));
    root.end(hrTime(start + durationMs));

    const v = (did[version] = did[version] || {
      runs: 0, failures: 0, cost_usd: [], duration_ms: [], input_tokens: [], output_tokens: [],
    });
    v.runs += 1;
    v.failures += ok ? 0 : 1;
    v.cost_usd.push(costUsd);
    v.duration_ms.push(durationMs);
    v.input_tokens.push(inputTokens);
    v.output_tokens.push(outputTokens);
  }
  try {
    await provider.shutdown(); // exports every span still batched
  } catch (error) {
    counts.error = counts.error || error; // a failed export rejects the final flush too
  }
  process.stdout.write(`runs ${JSON.stringify(did)}\n`);
  process.stdout.write(`exports ${counts.exports} failed ${counts.failed}\n`);
  if (counts.failed) {
    process.stderr.write(`export failed: ${counts.error ? counts.error.message : 'unknown error'}\n`);
    process.exitCode = 1;
  }
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exitCode = 1;
});
