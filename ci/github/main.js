'use strict';
// The vcm action's main step: create or reuse this job's cluster (or, with `mode:
// pull-request`, find the one vcm's webhook made for the pull request), wait until it is Ready,
// write its kubeconfig. Outputs `id`, `name`, `kubeconfig`; exports KUBECONFIG for later steps;
// keeps the id for the post step, which deletes the cluster.

const { input, mode, fail, appendFileCommand, runScript, escapeData } = require('./common');

async function main() {
  const m = mode();
  if (!input('addr') && !process.env.VCM_ADDR) {
    throw new Error("input addr is empty: give vcm's URL (e.g. https://vcm.example.com)");
  }
  const token = input('token');
  if (token) process.stdout.write(`::add-mask::${escapeData(token)}\n`);
  const outputs = {};
  const result = await runScript([m === 'pull-request' ? 'pr' : 'up'], (key, value) => {
    outputs[key] = value;
    // NB: saved the moment the cluster exists, so the post step deletes it even when the
    // wait for Ready fails or the job is cancelled.
    if (key === 'id') appendFileCommand('GITHUB_STATE', 'cluster_id', value);
  });
  if (result.code !== 0) {
    const why = result.lastError || `vcm-ci.sh exited with ${result.signal || result.code}`;
    fail(`vcm: ${why}`);
    return;
  }
  for (const key of ['id', 'name', 'kubeconfig']) {
    if (!outputs[key]) throw new Error(`vcm-ci.sh printed no ${key}`);
    appendFileCommand('GITHUB_OUTPUT', key, outputs[key]);
  }
  appendFileCommand('GITHUB_ENV', 'KUBECONFIG', outputs.kubeconfig);
  const { name, id, kubeconfig } = outputs;
  process.stdout.write(`cluster ${name} (${id}) is Ready; KUBECONFIG=${kubeconfig}\n`);
}

main().catch((err) => fail(`vcm: ${err.message}`));
