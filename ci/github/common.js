'use strict';
// Shared by the action's main and post steps: inputs (GitHub passes `INPUT_<NAME>` variables),
// workflow commands and file commands, and running ci/vcm-ci.sh. Plain Node, no dependencies.

const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');

const SCRIPT = path.join(__dirname, '..', 'vcm-ci.sh');

/** Action input → the script's variable. */
const INPUT_ENV = {
  addr: 'VCM_ADDR',
  audience: 'VCM_AUDIENCE',
  token: 'VCM_TOKEN',
  cacert: 'VCM_CACERT',
  name: 'VCM_NAME',
  size: 'VCM_SIZE',
  'kubernetes-version': 'VCM_KUBERNETES_VERSION',
  ttl: 'VCM_TTL',
  'idle-timeout': 'VCM_IDLE_TIMEOUT',
  labels: 'VCM_LABELS',
  timeout: 'VCM_TIMEOUT',
  'kubeconfig-ttl': 'VCM_KUBECONFIG_TTL',
};

/** An input as GitHub passes it: `INPUT_` + the name upper-cased, spaces to `_`, `-` kept. */
function input(name) {
  return (process.env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] || '').trim();
}

/** `mode` input: `create` (default) or `pull-request`. */
function mode() {
  const m = input('mode') || 'create';
  if (m !== 'create' && m !== 'pull-request') {
    throw new Error(`input mode is '${m}': use create or pull-request`);
  }
  return m;
}

function isTrue(value) {
  return ['true', 'yes', '1'].includes(value.toLowerCase());
}

/** The script's environment: the job's, with each given input set over it. */
function scriptEnv() {
  const env = { ...process.env };
  for (const [name, variable] of Object.entries(INPUT_ENV)) {
    const value = input(name);
    if (value) env[variable] = value;
  }
  return env;
}

/** Workflow command data escaping (`%`, CR, LF), as @actions/core does. */
function escapeData(s) {
  return String(s).replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

/** The failure GitHub shows on the run: an `::error::` annotation, exit code 1. */
function fail(message) {
  process.stdout.write(`::error::${escapeData(message)}\n`);
  process.exitCode = 1;
}

/** Append `key=value` to the file a file command variable names (GITHUB_OUTPUT, _ENV, _STATE). */
function appendFileCommand(variable, key, value) {
  const file = process.env[variable];
  if (!file) throw new Error(`${variable} is not set: this runs as a GitHub Action step`);
  if (/[\r\n]/.test(value)) throw new Error(`${key} has a line break`);
  fs.appendFileSync(file, `${key}=${value}\n`);
}

/**
 * Run `vcm-ci.sh <args>`: stderr goes to the log as it comes, each `key=value` line of stdout
 * is handed to `onPair` as soon as it is complete. Resolves to the exit code and the last
 * error line of the script.
 */
function runScript(args, onPair) {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [SCRIPT, ...args], {
      env: scriptEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let lastError = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      out += chunk;
      let nl;
      while ((nl = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        const eq = line.indexOf('=');
        if (eq > 0) onPair(line.slice(0, eq), line.slice(eq + 1));
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      process.stderr.write(chunk);
      for (const line of chunk.split('\n')) {
        if (line.includes('error:')) lastError = line.replace(/^vcm-ci: error: /, '');
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? 128, signal, lastError }));
  });
}

module.exports = { input, mode, isTrue, fail, appendFileCommand, runScript, escapeData };
