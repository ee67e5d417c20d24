'use strict';
// The vcm action's post step (`post-if: always()`): delete the cluster the main step made,
// unless `keep: true` or `mode: pull-request` (that cluster belongs to the pull request).

const { input, mode, isTrue, fail, runScript } = require('./common');

async function post() {
  const id = process.env.STATE_cluster_id || '';
  if (mode() === 'pull-request') {
    process.stdout.write('mode pull-request: the pull request keeps its cluster\n');
    return;
  }
  if (!id) {
    process.stdout.write('no cluster was created: nothing to delete\n');
    return;
  }
  if (isTrue(input('keep'))) {
    process.stdout.write(`keep: true: cluster ${id} stays until its ttl or idle-timeout\n`);
    return;
  }
  const result = await runScript(['down', id], () => {});
  if (result.code !== 0) {
    const why = result.lastError || `vcm-ci.sh exited with ${result.signal || result.code}`;
    fail(`vcm: deleting cluster ${id}: ${why}`);
  }
}

post().catch((err) => fail(`vcm: ${err.message}`));
