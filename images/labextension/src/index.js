// @corehour/usage: one status bar item with the Slurm job's live CPU, memory
// and GPU use, read every 2 s from the notebook server's GET api/corehour/usage.
// Plain JavaScript (ES module); built by `jupyter labextension build`.

import { Notification } from '@jupyterlab/apputils';
import { IStatusBar } from '@jupyterlab/statusbar';
import { ServerConnection } from '@jupyterlab/services';
import { Poll } from '@lumino/polling';
import { Widget } from '@lumino/widgets';

import { viewerPlugin } from './viewer';

const PLUGIN_ID = '@corehour/usage:status';
const ENDPOINT = 'api/corehour/usage';
const INTERVAL_MS = 2000;
const GIB = 1024 * 1024 * 1024;

function isNum(x) {
  return typeof x === 'number' && Number.isFinite(x);
}

// Cores: whole numbers as they are ("2"), others with 2 decimals ("1.93").
function cores(x) {
  return Number.isInteger(x) ? String(x) : x.toFixed(2);
}

// Memory is always GiB (2^30 bytes): 2 decimals for the job's memory,
// 1 decimal for GPU memory.
function gib(bytes, digits) {
  return (bytes / GIB).toFixed(digits);
}

// Everything the item shows, from one reading. Exported for tests.
export function describe(data) {
  const cpu = data.cpu || {};
  const mem = data.memory || {};
  const gpus = Array.isArray(data.gpus) ? data.gpus : [];
  const used = isNum(cpu.used_cores) ? cpu.used_cores : null;
  const alloc = isNum(cpu.allocated_cores) ? cpu.allocated_cores : null;
  const memUsed = isNum(mem.used_bytes) ? mem.used_bytes : null;
  const memLimit = isNum(mem.limit_bytes) ? mem.limit_bytes : null;

  const usedText = used === null ? '–' : used.toFixed(2);
  const parts = [];
  parts.push(
    alloc === null
      ? `CPU ${usedText} cores`
      : `CPU ${usedText} / ${cores(alloc)} ${alloc === 1 ? 'core' : 'cores'}`
  );
  if (memUsed === null) {
    parts.push('Mem –');
  } else if (memLimit === null) {
    parts.push(`Mem ${gib(memUsed, 2)} GiB`);
  } else {
    parts.push(`Mem ${gib(memUsed, 2)} / ${gib(memLimit, 2)} GiB`);
  }

  let gpuSentence;
  if (gpus.length === 0) {
    parts.push('No GPU');
    gpuSentence = (data.gpu_note || 'No GPU in this job').trim().replace(/([^.!?])$/, '$1.');
  } else {
    const utils = gpus.map(g => g.utilization_percent).filter(isNum);
    const meanUtil = utils.length
      ? Math.round(utils.reduce((a, b) => a + b, 0) / utils.length)
      : null;
    const memGpuUsed = gpus
      .map(g => g.memory_used_bytes)
      .filter(isNum)
      .reduce((a, b) => a + b, 0);
    const memGpuTotal = gpus
      .map(g => g.memory_total_bytes)
      .filter(isNum)
      .reduce((a, b) => a + b, 0);
    const label = gpus.length === 1 ? 'GPU' : `${gpus.length} GPUs`;
    const utilText = meanUtil === null ? '–' : `${meanUtil} %`;
    parts.push(
      `${label} ${utilText} · ${gib(memGpuUsed, 1)} / ${gib(memGpuTotal, 1)} GiB`
    );
    gpuSentence = gpus
      .map(g => {
        const name = g.name ? ` (${g.name})` : '';
        const util = isNum(g.utilization_percent)
          ? `${g.utilization_percent} % busy`
          : 'utilisation unknown';
        const memText =
          isNum(g.memory_used_bytes) && isNum(g.memory_total_bytes)
            ? `, ${gib(g.memory_used_bytes, 1)} of ${gib(g.memory_total_bytes, 1)} GiB memory`
            : '';
        return `GPU ${isNum(g.index) ? g.index : '?'}${name}: ${util}${memText}.`;
      })
      .join(' ');
  }

  let cpuPhrase;
  const allocPhrase =
    alloc === null ? '' : ` of its ${cores(alloc)} allocated ${alloc === 1 ? 'core' : 'cores'}`;
  if (used === null) {
    cpuPhrase =
      alloc === null
        ? 'This job has not measured its CPU use yet'
        : `This job has ${cores(alloc)} allocated ${alloc === 1 ? 'core' : 'cores'} (CPU use not measured yet)`;
  } else {
    cpuPhrase = `This job uses ${used.toFixed(2)}${allocPhrase}`;
  }
  let memPhrase;
  if (memUsed === null) {
    memPhrase = 'an unknown amount of memory';
  } else if (memLimit === null) {
    memPhrase = `${gib(memUsed, 2)} GiB of memory, with no memory limit`;
  } else {
    memPhrase = `${gib(memUsed, 2)} GiB of its ${gib(memLimit, 2)} GiB memory limit`;
  }
  const source =
    data.source === 'cgroup'
      ? " (from the Slurm job's cgroup)"
      : data.source === 'processes'
        ? " (from the job's processes: this cluster gives jobs no cgroup of their own)"
        : '';
  const nudge = data.idle_notice ? ` ${data.idle_notice}` : '';
  const title = `${cpuPhrase} and ${memPhrase}${source}. ${gpuSentence}${nudge}`.trim();

  return {
    text: parts.join(' · '),
    title,
    attrs: {
      'data-cpu-used': used === null ? '' : String(used),
      'data-cpu-allocated': alloc === null ? '' : String(alloc),
      'data-mem-used': memUsed === null ? '' : String(memUsed),
      'data-mem-limit': memLimit === null ? '' : String(memLimit),
      'data-gpus': String(gpus.length)
    }
  };
}

// One reading shown in one place: the status bar, or the top bar on a phone.
class UsageView extends Widget {
  constructor(extraClass) {
    super();
    this.addClass('ch-usage');
    if (extraClass) {
      this.addClass(extraClass);
    }
    this.node.textContent = 'Usage: …';
    this.node.title = 'Waiting for the first reading';
    this.node.setAttribute('data-state', 'loading');
  }

  setReading(view) {
    this.node.textContent = view.text;
    this.node.title = view.title;
    for (const [name, value] of Object.entries(view.attrs)) {
      this.node.setAttribute(name, value);
    }
    this.node.setAttribute('data-state', 'ok');
  }

  setUnavailable(reason) {
    this.node.textContent = 'Usage: unavailable';
    this.node.title = reason;
    for (const name of ['data-cpu-used', 'data-cpu-allocated', 'data-mem-used', 'data-mem-limit', 'data-gpus']) {
      this.node.setAttribute(name, '');
    }
    this.node.setAttribute('data-state', 'error');
  }
}

// Reads the job's use every 2 s, once for every view.
class UsageReader {
  constructor(views) {
    this._views = views;
    this._settings = ServerConnection.makeSettings();
    this._url = this._settings.baseUrl.replace(/\/?$/, '/') + ENDPOINT;
    this._poll = new Poll({
      auto: true,
      factory: () => this._refresh(),
      frequency: { interval: INTERVAL_MS, backoff: false },
      name: PLUGIN_ID,
      standby: 'when-hidden'
    });
  }

  // Never rejects: a failed reading is shown, and the poll keeps its 2 s pace.
  async _refresh() {
    let response;
    try {
      response = await ServerConnection.makeRequest(this._url, {}, this._settings);
    } catch (err) {
      this._unavailable(`Could not reach the server: ${err && err.message ? err.message : err}`);
      return;
    }
    if (!response.ok) {
      this._unavailable(`${ENDPOINT} answered HTTP ${response.status} ${response.statusText || ''}`.trim());
      return;
    }
    let data;
    try {
      data = await response.json();
    } catch (err) {
      this._unavailable(`${ENDPOINT} answered HTTP ${response.status} with a body that is not JSON`);
      return;
    }
    const view = describe(data || {});
    for (const target of this._views) {
      target.setReading(view);
    }
    // The server says when the job sat idle for an hour; say it once per page, and keep it
    // in the item's tooltip while it holds.
    if (data && data.idle_notice) {
      if (!this._nudged) {
        Notification.warning(data.idle_notice, { autoClose: false });
        this._nudged = true;
      }
    } else {
      this._nudged = false;
    }
  }

  _unavailable(reason) {
    for (const target of this._views) {
      target.setUnavailable(reason);
    }
  }
}

const plugin = {
  id: PLUGIN_ID,
  description: "Shows the Slurm job's live CPU, memory and GPU use in the status bar.",
  autoStart: true,
  optional: [IStatusBar],
  activate: (app, statusBar) => {
    const views = [];
    if (statusBar) {
      const item = new UsageView();
      statusBar.registerStatusItem(PLUGIN_ID, {
        item,
        align: 'left',
        rank: 0,
        isActive: () => true
      });
      views.push(item);
    }
    // JupyterLab hides its status bar on a narrow screen (a phone); there a strip of the same
    // height, fixed at the bottom of the page, shows the same reading (style/index.css).
    const phone = new UsageView('ch-usage-phone');
    phone.id = 'ch-usage-phone';
    Widget.attach(phone, document.body);
    views.push(phone);
    new UsageReader(views);
  }
};

export default [plugin, viewerPlugin];
