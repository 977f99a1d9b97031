#!/usr/bin/env node
// A Node.js agent calling promptgauge straight from protos/ (no generated code):
// it registers two versions of a prompt, streams usage links and outcomes for
// synthetic runs, and prints the per-version comparison; then it versions an
// agent that links the prompt, resolves it for one run (rendered, its trace
// linked), records the run's outcome and prints the agent's comparison.
//
//   PROMPTGAUGE_TARGET=127.0.0.1:50051 PROMPTGAUGE_API_KEY=pgk_... node agent.js
//
// Options: --target, --api-key (override the environment), --prompt NAME (a
// unique name by default), --traces N (default 400), --seed N (default 1).
// Exit status 0 on success, 1 on a failed call (the gRPC status is printed),
// 2 on bad usage.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');

const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTOS = path.resolve(__dirname, '..', '..', 'protos');
// The retry policy every promptgauge caller shares (docs/retries.md): which
// methods are retried, on which status codes, with what backoff.
const SERVICE_CONFIG = path.resolve(__dirname, '..', '..', 'client', 'service_config.json');
const BATCH = 100;
const DEADLINE_MS = 10000;

function loadPackage() {
  const dir = path.join(PROTOS, 'promptgauge', 'v1');
  const files = fs.readdirSync(dir)
    .filter((f) => f.endsWith('.proto'))
    .map((f) => path.join('promptgauge', 'v1', f));
  const definition = protoLoader.loadSync(files, {
    includeDirs: [PROTOS],
    keepCase: true,
    // int64 counters arrive as decimal strings, so no count loses precision.
    longs: String,
    enums: String,
    // Unset `optional` fields stay absent, so "no signal" differs from zero.
    defaults: false,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).promptgauge.v1;
}

function usage(message) {
  process.stderr.write(`${message}\n`);
  process.stderr.write(
    'usage: node agent.js [--target HOST:PORT] [--api-key KEY] [--prompt NAME] [--traces N] [--seed N]\n',
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
        traces: { type: 'string', default: '400' },
        seed: { type: 'string', default: '1' },
      },
    }));
  } catch (error) {
    usage(error.message);
  }
  const target = values.target || process.env.PROMPTGAUGE_TARGET || '127.0.0.1:50051';
  const apiKey = values['api-key'] || process.env.PROMPTGAUGE_API_KEY;
  if (!apiKey) usage('an API key is needed: --api-key or PROMPTGAUGE_API_KEY');
  const traces = Number(values.traces);
  if (!Number.isInteger(traces) || traces < 2) usage('--traces must be an integer of at least 2');
  const seed = Number(values.seed);
  if (!Number.isInteger(seed)) usage('--seed must be an integer');
  const prompt = values.prompt || `node-agent-${crypto.randomBytes(4).toString('hex')}`;
  return { target, apiKey, prompt, traces, seed };
}

// A failed call, carrying the RPC's name and its gRPC status.
class CallError extends Error {
  constructor(method, error) {
    const name = Object.keys(grpc.status).find((k) => grpc.status[k] === error.code) || 'UNKNOWN';
    super(`${method} failed: ${name} (${error.code}): ${error.details || error.message}`);
    this.code = error.code;
  }
}

function callOptions() {
  return { deadline: Date.now() + DEADLINE_MS };
}

function unary(client, method, request, metadata) {
  return new Promise((resolve, reject) => {
    client[method](request, metadata, callOptions(), (error, response) => {
      if (error) reject(new CallError(method, error));
      else resolve(response);
    });
  });
}

// A client stream: one message per batch, then the server's summary.
function clientStream(client, method, field, items, metadata) {
  return new Promise((resolve, reject) => {
    const call = client[method](metadata, callOptions(), (error, response) => {
      if (error) reject(new CallError(method, error));
      else resolve(response);
    });
    for (let i = 0; i < items.length; i += BATCH) {
      call.write({ [field]: items.slice(i, i + BATCH) });
    }
    call.end();
  });
}

// mulberry32: the same seed gives the same synthetic runs.
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

// Runs alternate between the two versions; the candidate succeeds more often,
// costs more and takes longer, as a more careful prompt would.
function syntheticRuns(count, versions, seed) {
  const rand = random(seed);
  const profiles = [
    { successRate: 0.7, costUsd: 0.003, durationMs: 1800 },
    { successRate: 0.9, costUsd: 0.005, durationMs: 2200 },
  ];
  const runs = [];
  for (let i = 0; i < count; i += 1) {
    const profile = profiles[i % 2];
    runs.push({
      version: versions[i % 2],
      trace_id: crypto.randomUUID(),
      success: rand() < profile.successRate,
      total_cost_usd: Number((profile.costUsd * (0.5 + rand())).toFixed(6)),
      duration_ms: Math.round(profile.durationMs * (0.4 + 1.2 * rand()) * (rand() < 0.05 ? 2 : 1)),
    });
  }
  return runs;
}

function summaryLine(label, summary) {
  const { received = '0', recorded = '0', duplicates = '0', rejected = '0' } = summary;
  return `${label}: received=${received} recorded=${recorded} duplicates=${duplicates} rejected=${rejected}`;
}

function checkSummary(label, summary, sent) {
  console.log(summaryLine(label, summary));
  if (Number(summary.received || 0) !== sent || Number(summary.rejected || 0) !== 0) {
    for (const e of summary.errors || []) {
      process.stderr.write(`  record ${e.index}: code ${e.code}: ${e.message}\n`);
    }
    throw new Error(`${label}: the server did not take all ${sent} records`);
  }
}

function formatNumber(value, fmt) {
  return value === undefined || value === null ? '-' : fmt(value);
}

function printComparison(comparison) {
  const grouped = (n, digits) => n.toLocaleString('en-US', {
    minimumFractionDigits: digits, maximumFractionDigits: digits,
  });
  const rows = [['VERSION', 'TRACES', 'SUCCESS', 'AVG COST USD', 'AVG LATENCY MS', 'P95 LATENCY MS']];
  for (const v of comparison.versions) {
    rows.push([
      `v${v.version}`,
      grouped(Number(v.total_traces || 0), 0),
      formatNumber(v.success_rate, (x) => `${(100 * x).toFixed(1)}%`),
      formatNumber(v.avg_cost_usd, (x) => x.toFixed(4)),
      formatNumber(v.avg_latency_ms, (x) => grouped(x, 0)),
      formatNumber(v.p95_latency_ms, (x) => grouped(x, 0)),
    ]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  console.log(comparison.name);
  for (const r of rows) {
    console.log(r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  '));
  }
  // One stable, machine-readable line with the exact values; unset metrics are null.
  const exact = {
    name: comparison.name,
    versions: comparison.versions.map((v) => ({
      version: v.version,
      total_traces: Number(v.total_traces || 0),
      success_rate: v.success_rate ?? null,
      avg_cost_usd: v.avg_cost_usd ?? null,
      avg_latency_ms: v.avg_latency_ms ?? null,
      p95_latency_ms: v.p95_latency_ms ?? null,
    })),
  };
  console.log(`comparison ${JSON.stringify(exact)}`);
}

// An agent linking the prompt, as an agent run uses it: ResolveAgent says
// which prompt version to run now (the prompt's active one, since the link
// is not pinned) and renders it; with the run's trace id the run counts for
// the agent version and the prompt version once its outcome is recorded.
async function runAgent(agents, analytics, prompt, metadata) {
  const agent = `${prompt}-agent`;
  await unary(agents, 'CreateAgentVersion', {
    agent,
    version: '1.0.0',
    config: {
      kind: 'AGENT_KIND_SIMPLE',
      model_config: { provider: 'openai', model: 'gpt-4o', temperature: 0.2 },
      prompts: [{ prompt_name: prompt, role: 'classifier', sort_order: 0 }],
    },
    message: 'Node example',
  }, metadata);
  const traceId = crypto.randomUUID();
  const run = await unary(agents, 'ResolveAgent', {
    agent, trace_id: traceId, variables: { ticket_text: 'My invoice shows a double charge.' },
  }, metadata);
  for (const p of run.prompts) {
    console.log(`agent ${agent} ${run.agent_version.version}: [${p.role}] ${p.prompt_version.name} `
      + `v${p.prompt_version.version}: ${p.rendered_text}`);
  }
  await unary(analytics, 'RecordTraceOutcome', {
    outcome: { trace_id: traceId, success: true, duration_ms: 900 },
  }, metadata);
  const compared = await unary(agents, 'CompareAgentVersions', { agent }, metadata);
  const exact = {
    agent: compared.agent,
    versions: compared.versions.map((v) => ({
      version: v.version,
      total_traces: Number(v.total_traces || 0),
      success_rate: v.success_rate ?? null,
      avg_latency_ms: v.avg_latency_ms ?? null,
    })),
  };
  console.log(`agent comparison ${JSON.stringify(exact)}`);
}

async function main() {
  const opts = options();
  const pkg = loadPackage();
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${opts.apiKey}`);
  const credentials = grpc.credentials.createInsecure();
  const channelOptions = { 'grpc.service_config': fs.readFileSync(SERVICE_CONFIG, 'utf8') };
  const prompts = new pkg.PromptService(opts.target, credentials, channelOptions);
  const analytics = new pkg.AnalyticsService(opts.target, credentials, channelOptions);
  const agents = new pkg.AgentService(opts.target, credentials, channelOptions);
  try {
    const first = (await unary(prompts, 'CreatePromptVersion', {
      name: opts.prompt,
      template_text: 'You are a support classifier. Categorize this ticket: {ticket_text}',
      description: 'baseline',
    }, metadata)).prompt_version;
    // The second version is a staged candidate: it gets traffic for the
    // comparison but does not become the active version.
    const second = (await unary(prompts, 'CreatePromptVersion', {
      name: opts.prompt,
      template_text: 'You are an expert support classifier. Think step by step, then categorize: {ticket_text}',
      description: 'step-by-step candidate',
      parent_version: first.version,
      activate: false,
    }, metadata)).prompt_version;
    console.log(`prompt ${opts.prompt}: registered v${first.version} (active) and v${second.version} (candidate)`);

    const runs = syntheticRuns(opts.traces, [first.version, second.version], opts.seed);
    const usageSummary = (await clientStream(analytics, 'StreamUsage', 'records', runs.map((r) => ({
      prompt_name: opts.prompt, prompt_version: r.version, trace_id: r.trace_id,
    })), metadata)).summary;
    checkSummary('usage', usageSummary, runs.length);
    const outcomeSummary = (await clientStream(analytics, 'StreamTraceOutcomes', 'outcomes', runs.map((r) => ({
      trace_id: r.trace_id, success: r.success, total_cost_usd: r.total_cost_usd, duration_ms: r.duration_ms,
    })), metadata)).summary;
    checkSummary('outcomes', outcomeSummary, runs.length);

    // One more run, through an agent: it counts for the active version too.
    await runAgent(agents, analytics, opts.prompt, metadata);
    printComparison(await unary(analytics, 'ComparePromptVersions', { name: opts.prompt }, metadata));
  } finally {
    prompts.close();
    analytics.close();
    agents.close();
  }
}

main().catch((error) => {
  process.stderr.write(`error: ${error.message}\n`);
  process.exit(1);
});
