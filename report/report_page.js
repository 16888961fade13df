// clinrl report page: reads the JSON embedded by `clinrl report` and draws
// the summary, collapse signals, metric charts and the trajectory browser.
// Written for 10,000 steps x ~60 metrics and 50,000 episodes: charts are
// canvases drawn from min/max per pixel column and only once visible, the
// episode list renders only its visible rows, and a transcript is parsed
// only when its episode is opened.
(function() {
'use strict';

const DATA = JSON.parse(document.getElementById('clinrl-data').textContent);
const RUNS = DATA.runs || [];
const COLORS = [
  '#1f5fbf', '#d1452e', '#2a9a48', '#8a4fc2', '#e08a00', '#7b5a3c', '#d5579d',
  '#1a9fb0'
];
const EVAL_STYLE = {
  validation: {color: '#2a9a48', dash: [4, 3]},
  test: {color: '#c0392b', dash: []}
};
const ROW_H = 24;

// ---------------------------------------------------------------- helpers
function el(tag, attrs, children) {
  const e = document.createElement(tag);
  if (attrs) {
    for (const k of Object.keys(attrs)) {
      const v = attrs[k];
      if (v === undefined || v === null) continue;
      if (k === 'text')
        e.textContent = v;
      else if (k === 'cls')
        e.className = v;
      else if (k.startsWith('on'))
        e.addEventListener(k.slice(2), v);
      else
        e.setAttribute(k, v);
    }
  }
  if (children) {
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    }
  }
  return e;
}

function num(v, digits) {
  if (v === null || v === undefined || typeof v !== 'number' || !isFinite(v))
    return '–';
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(2);
  if (digits !== undefined) return v.toFixed(digits);
  if (a >= 100) return v.toFixed(1);
  return v.toPrecision(4).replace(/\.?0+$/, '');
}

function duration(s) {
  if (!isFinite(s)) return '–';
  if (s < 120) return s.toFixed(1) + ' s';
  if (s < 7200) return (s / 60).toFixed(1) + ' min';
  return (s / 3600).toFixed(2) + ' h';
}

function swatch(i) {
  return el(
      'span',
      {cls: 'swatch', style: 'background:' + COLORS[i % COLORS.length]});
}

function metricColumn(run, key) {
  const m = run.metrics;
  const i = m.keys.indexOf(key);
  return i < 0 ? null : m.values[i];
}

function finiteMean(values, from) {
  let s = 0, n = 0;
  for (let i = from || 0; i < values.length; i++) {
    const v = values[i];
    if (v !== null && isFinite(v)) {
      s += v;
      n++;
    }
  }
  return n ? s / n : NaN;
}

// TensorBoard tag of a metrics.jsonl key (trainer/tfevents_writer.cc).
function tensorboardTag(key) {
  return key.replace(/(^|\/)reward\/mean$/, '$1reward/total')
      .replace(/(^|\/)reward\/std$/, '$1reward/total_std')
      .replace(/[^A-Za-z0-9_.\/-]/g, '_');
}

// ---------------------------------------------------------------- summary
function runStats(run) {
  const m = run.metrics;
  let wall = NaN;
  for (const t of m.time_s)
    if (t !== null && (isNaN(wall) || t > wall)) wall = t;
  for (const e of m.evals) {
    const t = e.metrics.time_s;
    if (typeof t === 'number' && (isNaN(wall) || t > wall)) wall = t;
  }
  const col = (k) => metricColumn(run, k) || [];
  const byStage = {};
  m.stage.forEach((s) => {
    byStage[m.stages[s]] = (byStage[m.stages[s]] || 0) + 1;
  });
  return {
    steps: m.step.length,
    lastStep: m.step.length ? m.step[m.step.length - 1] : 0,
    stages: Object.keys(byStage).map((k) => k + ' ' + byStage[k]).join(', '),
    wall: wall,
    rollout: finiteMean(col('throughput/rollout_tokens_per_s')),
    train: finiteMean(col('throughput/train_tokens_per_s')),
  };
}

function evalScores(run) {
  // Per split: final and best evaluation (accuracy, else mean reward).
  const out = {};
  for (const e of run.metrics.evals) {
    const score = typeof e.metrics.accuracy === 'number' ?
        e.metrics.accuracy :
        e.metrics['reward/mean'];
    const s = out[e.split] || (out[e.split] = {final: null, best: null});
    s.final = {step: e.step, score: score, reward: e.metrics['reward/mean']};
    if (typeof score === 'number' && (!s.best || score > s.best.score)) {
      s.best = {step: e.step, score: score, reward: e.metrics['reward/mean']};
    }
  }
  return out;
}

function flatten(value, prefix, out) {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const k of Object.keys(value))
      flatten(value[k], prefix ? prefix + '.' + k : k, out);
  } else {
    out[prefix] = JSON.stringify(value);
  }
  return out;
}

function summarySection() {
  const sec = el('section', {id: 'summary'}, [el('h2', {text: 'Summary'})]);
  const splits = [];
  const scores = RUNS.map(evalScores);
  for (const s of scores)
    for (const k of Object.keys(s))
      if (!splits.includes(k)) splits.push(k);
  const head = [
    'run', 'stages (steps)', 'last step', 'wall time', 'rollout tok/s',
    'train tok/s', 'episodes logged'
  ];
  for (const sp of splits) head.push(sp + ' final', sp + ' best');
  const rows = RUNS.map((run, i) => {
    const st = runStats(run);
    const cells = [
      el('td', {cls: 'l'}, [swatch(i), run.name]),
      el('td', {cls: 'l', text: st.stages}),
      el('td', {text: String(st.lastStep)}),
      el('td', {text: duration(st.wall)}),
      el('td', {text: num(st.rollout, 0)}),
      el('td', {text: num(st.train, 0)}),
      el('td', {text: String(run.trajectories.count)}),
    ];
    for (const sp of splits) {
      const s = scores[i][sp];
      for (const which of ['final', 'best']) {
        const v = s && s[which];
        cells.push(el('td', {
          text: v ? num(v.score, 3) + ' @' + v.step : '–',
          title: v ?
              'accuracy (or mean reward); mean reward ' + num(v.reward, 3) :
              null,
        }));
      }
    }
    return el('tr', null, cells);
  });
  sec.appendChild(el(
      'div', {cls: 'scroll-x'}, [el('table', {cls: 'grid', id: 'runs-table'}, [
        el('tr', null,
           head.map((h, k) => el('th', {cls: k < 2 ? 'l' : null, text: h}))),
      ].concat(rows))]));

  // The final test table each run printed (summary.json).
  const withSummary =
      RUNS.filter((r) => Array.isArray(r.summary) && r.summary.length);
  if (withSummary.length) {
    sec.appendChild(
        el('h3',
           {text: 'Final evaluation table (summary.json, greedy decoding)'}));
    const cols = [
      'accuracy', 'reward/mean', 'turns/mean', 'length/mean', 'cost/mean',
      'termination/finished'
    ];
    const trs =
        [el('tr', null,
            ['run', 'policy', 'split']
                .map((h) => el('th', {cls: 'l', text: h}))
                .concat(cols.map((c) => el('th', {text: c}))))];
    RUNS.forEach((run, i) => {
      if (!Array.isArray(run.summary)) return;
      for (const row of run.summary) {
        const m = row.metrics || {};
        trs.push(el('tr', null, [
          el('td', {cls: 'l'}, [swatch(i), run.name]),
          el('td', {cls: 'l', text: String(row.policy || row.label || '')}),
          el('td', {cls: 'l', text: String(row.split || '')}),
        ].concat(cols.map((c) => el('td', {text: num(m[c], 3)})))));
      }
    });
    sec.appendChild(
        el('div', {cls: 'scroll-x'},
           [el('table', {cls: 'grid', id: 'summary-table'}, trs)]));
  }

  // Config: the differences when comparing, the whole config otherwise.
  const flat = RUNS.map((r) => flatten(r.config || {}, '', {}));
  if (RUNS.length > 1) {
    const keys = new Set();
    flat.forEach((f) => Object.keys(f).forEach((k) => keys.add(k)));
    const differing = Array.from(keys)
                          .filter((k) => flat.some((f) => f[k] !== flat[0][k]))
                          .filter((k) => k !== 'run.name')
                          .sort();
    sec.appendChild(
        el('h3', {text: 'Config differences (' + differing.length + ' keys)'}));
    const trs = [el('tr', null, [
      el('th', {cls: 'l', text: 'key'})
    ].concat(RUNS.map((r, i) => el('th', {cls: 'l'}, [swatch(i), r.name]))))];
    for (const k of differing) {
      trs.push(el(
          'tr', null,
          [el('td', {cls: 'l', text: k})].concat(flat.map(
              (f) => el(
                  'td',
                  {cls: 'l', text: f[k] === undefined ? '(absent)' : f[k]})))));
    }
    sec.appendChild(
        el('div', {cls: 'scroll-x'},
           [el('table', {cls: 'grid', id: 'config-diff'}, trs)]));
  }
  const det =
      el('details', null,
         [el('summary', {text: 'Config of ' + (RUNS[0] ? RUNS[0].name : '')})]);
  det.addEventListener('toggle', () => {
    if (det.open && det.children.length === 1) {
      det.appendChild(el(
          'pre', {cls: 'json', text: JSON.stringify(RUNS[0].config, null, 2)}));
    }
  });
  sec.appendChild(det);
  return sec;
}

// --------------------------------------------------------------- signals
// Collapse signals that medical-agent RL papers warn about, computed over
// the GRPO steps: episodes collapsing into one long turn, response-length
// oscillation, entropy collapse and tool use dropping.
function rlRows(run) {
  const m = run.metrics;
  const g = m.stages.indexOf('grpo');
  const rows = [];
  for (let i = 0; i < m.step.length; i++)
    if (g < 0 || m.stage[i] === g) rows.push(i);
  return rows;
}

function windowMean(col, rows, from, to) {
  let s = 0, n = 0;
  for (let k = from; k < to; k++) {
    const v = col[rows[k]];
    if (v !== null && isFinite(v)) {
      s += v;
      n++;
    }
  }
  return n ? s / n : NaN;
}

function signals(run) {
  const rows = rlRows(run);
  const out = [];
  const n = rows.length;
  const w = Math.max(1, Math.floor(n / 10));
  const early = (col) => windowMean(col, rows, 0, w);
  const late = (col) => windowMean(col, rows, n - w, n);
  const check = (name, key, test, explain) => {
    const col = metricColumn(run, key);
    if (!col || n < 4) {
      out.push({
        name: name,
        state: 'n/a',
        detail: 'no ' + key + ' over enough RL steps'
      });
      return;
    }
    const a = early(col), b = late(col);
    const bad = test(a, b, col);
    out.push({
      name: name,
      state: bad ? 'warning' : 'ok',
      detail: explain(a, b, col)
    });
  };
  check(
      'multi-turn collapse', 'turns/mean', (a, b) => a > 1.5 && b < 0.6 * a,
      (a, b) => 'turns/mean ' + num(a) + ' (first 10% of RL steps) -> ' +
          num(b) + ' (last 10%)');
  check(
      'length oscillation', 'length/mean',
      (a, b, col) => oscillation(col, rows) > 0.25,
      (a, b, col) => 'mean |step-to-step change| / mean length = ' +
          num(oscillation(col, rows)) + ' (warning above 0.25); length ' +
          num(a) + ' -> ' + num(b));
  check(
      'entropy collapse', 'entropy', (a, b) => a > 0 && b < 0.2 * a,
      (a, b) => 'entropy ' + num(a) + ' -> ' + num(b));
  const toolKey = run.metrics.keys.find((k) => /tool|calls|tests?\//.test(k));
  if (toolKey) {
    check(
        'tool use dropping', toolKey, (a, b) => a > 0 && b < 0.5 * a,
        (a, b) => toolKey + ' ' + num(a) + ' -> ' + num(b));
  } else {
    out.push({
      name: 'tool use dropping',
      state: 'n/a',
      detail:
          'no tool-use metric in metrics.jsonl; see turns and the transcripts'
    });
  }
  return out;
}

function oscillation(col, rows) {
  let d = 0, s = 0, n = 0, prev = null;
  for (const r of rows) {
    const v = col[r];
    if (v === null || !isFinite(v)) continue;
    if (prev !== null) {
      d += Math.abs(v - prev);
      n++;
    }
    s += v;
    prev = v;
  }
  const mean = s / Math.max(1, n + 1);
  return n && mean > 0 ? d / n / mean : 0;
}

function signalsSection() {
  const sec =
      el('section', {id: 'signals'}, [el('h2', {text: 'Collapse signals'})]);
  const trs = [el('tr', null, [
    'run', 'signal', 'state', 'detail'
  ].map((h) => el('th', {cls: 'l', text: h})))];
  RUNS.forEach((run, i) => {
    for (const s of signals(run)) {
      trs.push(el('tr', null, [
        el('td', {cls: 'l'}, [swatch(i), run.name]),
        el('td', {cls: 'l', text: s.name}),
        el('td', {
          cls: 'l ' +
              (s.state === 'warning' ? 'warn' :
                   s.state === 'ok'  ? 'ok' :
                                       'muted'),
          text: s.state
        }),
        el('td', {cls: 'l', text: s.detail}),
      ]));
    }
  });
  sec.appendChild(el('table', {cls: 'grid', id: 'signals-table'}, trs));
  return sec;
}

// ---------------------------------------------------------------- charts
const GROUP_ORDER = [
  'reward', 'accuracy', 'kl', 'entropy', 'loss', 'pg_loss', 'clip_frac',
  'length', 'turns', 'termination', 'throughput', 'time'
];

function chartKeys() {
  const keys = [];
  const seen = new Set();
  for (const run of RUNS)
    for (const k of run.metrics.keys)
      if (!seen.has(k)) {
        seen.add(k);
        keys.push(k);
      }
  const evalOnly = [];
  for (const run of RUNS) {
    for (const e of run.metrics.evals) {
      for (const k of Object.keys(e.metrics)) {
        if (k !== 'time_s' && !seen.has(k)) {
          seen.add(k);
          evalOnly.push(k);
        }
      }
    }
  }
  return keys.concat(evalOnly);
}

function groupOf(key) {
  const head = key.split('/')[0];
  const i = GROUP_ORDER.indexOf(head);
  // `kl` sits with `kl/k3`; other lone keys share one group.
  return {
    name: key.includes('/') || i >= 0 ? head : 'other',
    rank: i < 0 ? GROUP_ORDER.length : i
  };
}

const charts = [];
// The step axis: the whole run, or one stage on its own axis (its steps
// counted from 1, its evaluations included, the one before its first step
// at 0). A short GRPO stage after a long SFT stage is otherwise squeezed
// into the last pixels of the run's axis. Runs with several stages open on
// the last one.
const STAGES = (function() {
  const names = [];
  for (const r of RUNS)
    for (const s of r.metrics.stages)
      if (!names.includes(s)) names.push(s);
  return names;
})();
const AXIS = {stage: STAGES.length > 1 ? STAGES[STAGES.length - 1] : ''};

// Rows of `run` on the current axis, their x values, and the step offset
// (global step - x) of the run's stage.
function axisRows(run) {
  const m = run.metrics;
  const rows = [];
  if (!AXIS.stage) {
    for (let i = 0; i < m.step.length; i++) rows.push(i);
    return {rows: rows, offset: 0};
  }
  const s = m.stages.indexOf(AXIS.stage);
  for (let i = 0; i < m.step.length; i++)
    if (m.stage[i] === s) rows.push(i);
  return {rows: rows, offset: rows.length ? m.step[rows[0]] - 1 : 0};
}

// Evaluations of `run` on the current axis, with their x.
function axisEvals(run) {
  const ax = axisRows(run);
  const m = run.metrics;
  const out = [];
  if (AXIS.stage && !ax.rows.length) return out;
  const last = ax.rows.length ? m.step[ax.rows[ax.rows.length - 1]] : 0;
  for (const e of m.evals) {
    if (AXIS.stage && (e.step < ax.offset || e.step > last)) continue;
    out.push({x: e.step - ax.offset, eval: e});
  }
  return out;
}

function stepRange() {
  let lo = Infinity, hi = -Infinity;
  for (const r of RUNS) {
    const ax = axisRows(r);
    for (const i of ax.rows) {
      lo = Math.min(lo, r.metrics.step[i] - ax.offset);
      hi = Math.max(hi, r.metrics.step[i] - ax.offset);
    }
    for (const e of axisEvals(r)) {
      lo = Math.min(lo, e.x);
      hi = Math.max(hi, e.x);
    }
  }
  return isFinite(lo) ? [Math.min(0, lo), hi] : [0, 1];
}
let STEP_RANGE = stepRange();

// For the browser test: the step range the first drawn chart spans.
window.clinrlChartLayout = () => {
  const c = charts.find((x) => x.drawn && x.layout);
  return c ? {x0: c.layout.x0, x1: c.layout.x1} : null;
};

function setAxis(stage) {
  AXIS.stage = stage;
  STEP_RANGE = stepRange();
  for (const c of charts) c.drawn = false;
  drawVisibleCharts();
}

function tick(v) {
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(1);
  return String(Number(v.toPrecision(3)));
}

function makeChart(key) {
  const canvas = el('canvas');
  const tip = el('div', {cls: 'tip'});
  const tag = tensorboardTag(key);
  const card = el('div', {cls: 'chart', 'data-key': key}, [
    el('div', {cls: 'title'},
       [
         el('span', {text: key}),
         el('span', {cls: 'tag', text: tag !== key ? 'tb: ' + tag : ''})
       ]),
    canvas, tip
  ]);
  const chart = {
    key: key,
    card: card,
    canvas: canvas,
    tip: tip,
    drawn: false,
    layout: null
  };
  canvas.addEventListener('mousemove', (ev) => hover(chart, ev));
  canvas.addEventListener('mouseleave', () => {
    tip.style.display = 'none';
  });
  charts.push(chart);
  return card;
}

// A run's points of metric `key` on the current axis: xs/ys of its step
// lines (ys null when the run lacks the key), steps the global step of
// each, evals its evaluations' values.
function seriesOf(run, key) {
  const col = metricColumn(run, key);
  const ax = axisRows(run);
  const xs = [], ys = [], steps = [];
  for (const i of ax.rows) {
    xs.push(run.metrics.step[i] - ax.offset);
    steps.push(run.metrics.step[i]);
    if (col) ys.push(col[i]);
  }
  const evals = [];
  for (const a of axisEvals(run)) {
    const v = a.eval.metrics[key];
    if (typeof v === 'number')
      evals.push({x: a.x, step: a.eval.step, split: a.eval.split, value: v});
  }
  return {xs: xs, ys: col ? ys : null, steps: steps, evals: evals};
}

function drawChart(chart) {
  const canvas = chart.canvas;
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (!w || !h) return;
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(h * dpr);
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const series = RUNS.map((r) => seriesOf(r, chart.key));
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const s of series) {
    if (s.ys) {
      for (let i = 0; i < s.xs.length; i++) {
        const y = s.ys[i];
        if (y === null) continue;
        const x = s.xs[i];
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
    for (const e of s.evals) {
      if (e.x < x0) x0 = e.x;
      if (e.x > x1) x1 = e.x;
      if (e.value < y0) y0 = e.value;
      if (e.value > y1) y1 = e.value;
    }
  }
  // Every chart spans the steps of the whole run (metrics and
  // evaluations), so charts stacked on the page line up step for step.
  x0 = STEP_RANGE[0];
  x1 = STEP_RANGE[1];
  const pad = {l: 46, r: 8, t: 6, b: 18};
  ctx.font = '10px system-ui, sans-serif';
  if (!isFinite(y0)) {
    ctx.fillStyle = '#8a92a4';
    ctx.fillText('no data', w / 2 - 20, h / 2);
    chart.drawn = true;
    return;
  }
  if (x1 === x0) {
    x0 -= 1;
    x1 += 1;
  }
  if (y1 === y0) {
    const d = Math.abs(y0) * 0.1 || 1;
    y0 -= d;
    y1 += d;
  }
  const ym = (y1 - y0) * 0.05;
  y0 -= ym;
  y1 += ym;
  const pw = w - pad.l - pad.r, ph = h - pad.t - pad.b;
  const px = (x) => pad.l + (x - x0) / (x1 - x0) * pw;
  const py = (y) => pad.t + (1 - (y - y0) / (y1 - y0)) * ph;
  chart.layout = {x0: x0, x1: x1, pad: pad, pw: pw};

  // Axes and ticks.
  ctx.strokeStyle = '#e3e6ec';
  ctx.fillStyle = '#7a8294';
  ctx.lineWidth = 1;
  for (let k = 0; k <= 4; k++) {
    const y = y0 + (y1 - y0) * k / 4;
    const yy = Math.round(py(y)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(pad.l, yy);
    ctx.lineTo(w - pad.r, yy);
    ctx.stroke();
    ctx.fillText(tick(y), 2, yy + 3);
  }
  // Step ticks at round numbers (1, 2 or 5 times a power of ten).
  const raw = (x1 - x0) / 5;
  const mag = Math.pow(10, Math.floor(Math.log10(Math.max(raw, 1))));
  const stepTick = Math.max(
      1, [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || 10 * mag);
  for (let x = Math.ceil(x0 / stepTick) * stepTick; x <= x1; x += stepTick) {
    const label = String(Math.round(x));
    const lw = ctx.measureText(label).width;
    ctx.fillText(label, Math.min(px(x) - lw / 2, w - lw - 2), h - 4);
  }
  // Evaluation markers: validation dashed green, test solid red.
  RUNS.forEach((r) => {
    for (const a of axisEvals(r)) {
      const st = EVAL_STYLE[a.eval.split] || {color: '#999', dash: [2, 2]};
      ctx.strokeStyle = st.color;
      ctx.globalAlpha = 0.35;
      ctx.setLineDash(st.dash);
      const xx = Math.round(px(a.x)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(xx, pad.t);
      ctx.lineTo(xx, pad.t + ph);
      ctx.stroke();
    }
  });
  ctx.setLineDash([]);
  ctx.globalAlpha = 1;
  // Lines: min and max of every pixel column, so 10,000 steps cost as
  // much to draw as the chart is wide and no spike disappears.
  series.forEach((s, ri) => {
    if (!s.ys) return;
    ctx.strokeStyle = COLORS[ri % COLORS.length];
    ctx.lineWidth = 1.2;
    ctx.beginPath();
    let col = -1, mn = 0, mx = 0, first = 0, last = 0, started = false;
    const flush = () => {
      if (col < 0) return;
      if (started)
        ctx.lineTo(col, py(first));
      else
        ctx.moveTo(col, py(first));
      if (mn !== mx) {
        ctx.lineTo(col, py(mn));
        ctx.lineTo(col, py(mx));
      }
      ctx.lineTo(col, py(last));
      started = true;
    };
    for (let i = 0; i < s.xs.length; i++) {
      const y = s.ys[i];
      if (y === null) {
        flush();
        col = -1;
        started = false;
        continue;
      }
      const c = Math.round(px(s.xs[i]));
      if (c !== col) {
        flush();
        col = c;
        mn = mx = first = last = y;
      } else {
        if (y < mn) mn = y;
        if (y > mx) mx = y;
        last = y;
      }
    }
    flush();
    ctx.stroke();
    // Evaluation values of this metric as markers.
    for (const e of s.evals) {
      const st = EVAL_STYLE[e.split] || {color: '#666'};
      ctx.fillStyle = st.color;
      ctx.strokeStyle = COLORS[ri % COLORS.length];
      const x = px(e.x), y = py(e.value);
      ctx.beginPath();
      if (e.split === 'test')
        ctx.rect(x - 3.5, y - 3.5, 7, 7);
      else
        ctx.arc(x, y, 3.5, 0, 2 * Math.PI);
      ctx.fill();
      ctx.stroke();
    }
  });
  chart.drawn = true;
}

function nearestIndex(xs, x) {
  let lo = 0, hi = xs.length - 1;
  if (hi < 0) return -1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] < x)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo > 0 && Math.abs(xs[lo - 1] - x) < Math.abs(xs[lo] - x)) lo--;
  return lo;
}

function hover(chart, ev) {
  const L = chart.layout;
  if (!L) return;
  const rect = chart.canvas.getBoundingClientRect();
  const x = L.x0 + (ev.clientX - rect.left - L.pad.l) / L.pw * (L.x1 - L.x0);
  const lines = [];
  RUNS.forEach((run) => {
    const s = seriesOf(run, chart.key);
    if (s.ys) {
      const i = nearestIndex(s.xs, x);
      if (i >= 0) {
        const at = AXIS.stage ?
            AXIS.stage + ' step ' + s.xs[i] + ' (step ' + s.steps[i] + ')' :
            'step ' + s.steps[i];
        lines.push(run.name + '  ' + at + ': ' + num(s.ys[i]));
      }
    }
    for (const e of s.evals) {
      if (Math.abs(e.x - x) <= (L.x1 - L.x0) / L.pw * 3) {
        lines.push(
            run.name + '  eval ' + e.split + ' @' + e.step + ': ' +
            num(e.value));
      }
    }
  });
  chart.tip.textContent = lines.join('\n');
  chart.tip.style.display = lines.length ? 'block' : 'none';
  chart.tip.style.left =
      Math.min(ev.clientX - rect.left + 12, rect.width - 160) + 'px';
  chart.tip.style.top =
      (ev.clientY - rect.top + chart.canvas.offsetTop + 10) + 'px';
}

function chartsSection() {
  const sec =
      el('section', {id: 'charts'}, [el('h2', {text: 'Metrics against step'})]);
  const filter = el('input', {
    type: 'search',
    placeholder: 'filter metrics (e.g. reward, kl)',
    id: 'metric-filter',
    size: '32'
  });
  const legend =
      el('div', {cls: 'legend'},
         RUNS.map((r, i) => el('span', null, [swatch(i), r.name])).concat([
           el('span', {cls: 'muted', text: '┆ validation eval (● value)'}),
           el('span', {cls: 'muted', text: '│ test eval (■ value)'})
         ]));
  const axis = el(
      'select', {id: 'step-axis', title: 'step axis of every chart'},
      [el('option', {value: '', text: 'axis: whole run'})].concat(
          STAGES.map((st) => el('option', {value: st, text: 'axis: ' + st}))));
  axis.value = AXIS.stage;
  axis.addEventListener('change', () => setAxis(axis.value));
  sec.appendChild(el('div', {cls: 'toolbar'}, [filter, axis, legend]));
  const groups = new Map();
  for (const key of chartKeys()) {
    const g = groupOf(key);
    if (!groups.has(g.name)) groups.set(g.name, {rank: g.rank, keys: []});
    groups.get(g.name).keys.push(key);
  }
  const ordered =
      Array.from(groups.entries())
          .sort((a, b) => a[1].rank - b[1].rank || (a[0] < b[0] ? -1 : 1));
  const groupEls = [];
  for (const [name, g] of ordered) {
    const grid = el('div', {cls: 'charts'}, g.keys.map(makeChart));
    const ge =
        el('div', {cls: 'chart-group', 'data-group': name},
           [el('h3', {text: name}), grid]);
    groupEls.push(ge);
    sec.appendChild(ge);
  }
  filter.addEventListener('input', () => {
    const q = filter.value.trim().toLowerCase();
    for (const c of charts)
      c.card.style.display =
          !q || c.key.toLowerCase().includes(q) ? '' : 'none';
    for (const ge of groupEls) {
      const any = Array.from(ge.querySelectorAll('.chart'))
                      .some((c) => c.style.display !== 'none');
      ge.style.display = any ? '' : 'none';
    }
    scheduleVisibleCharts();
  });
  return sec;
}

let chartObserver = null;
function observeCharts() {
  chartObserver = new IntersectionObserver((entries) => {
    for (const en of entries) {
      if (!en.isIntersecting) continue;
      const chart = charts.find((c) => c.card === en.target);
      if (chart && !chart.drawn) drawChart(chart);
    }
  }, {rootMargin: '200px'});
  for (const c of charts) chartObserver.observe(c.card);
}

function drawVisibleCharts() {
  const limit = window.innerHeight + 200;
  for (const c of charts) {
    if (c.drawn || c.card.style.display === 'none') continue;
    const r = c.card.getBoundingClientRect();
    if (r.bottom > -200 && r.top < limit && r.height > 0) drawChart(c);
  }
}
function scheduleVisibleCharts() {
  requestAnimationFrame(drawVisibleCharts);
}

let resizeTimer = 0;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    for (const c of charts) c.drawn = false;
    drawVisibleCharts();
  }, 150);
});

// ---------------------------------------------------------- trajectories
// Episodes of every run in one flat numbering: id -> (run, row).
const offsets = [];
let total = 0;
for (const run of RUNS) {
  offsets.push(total);
  total += run.trajectories.count;
}
function locate(id) {
  let r = offsets.length - 1;
  while (r > 0 && offsets[r] > id) r--;
  return [r, id - offsets[r]];
}

const browser = {
  rows: new Int32Array(0),
  selected: -1,
  list: null,
  spacer: null,
  detail: null,
  count: null,
  rendered: new Map()
};

function trajectorySection() {
  const sec =
      el('section', {id: 'trajectories'}, [el('h2', {text: 'Trajectories'})]);
  const names = (k) => {
    const s = new Set();
    for (const r of RUNS)
      for (const n of r.trajectories[k]) s.add(n);
    return Array.from(s);
  };
  const select = (id, label, options) => el('label', null, [
    label + ' ',
    el('select', {id: id},
       [el('option', {value: '', text: 'all'})].concat(options.map(
           (o) => el('option', {value: String(o.value), text: o.text}))))
  ]);
  const controls = [];
  if (RUNS.length > 1)
    controls.push(
        select('f-run', 'run', RUNS.map((r, i) => ({value: i, text: r.name}))));
  controls.push(select(
      'f-split', 'split',
      names('splits').map((n) => ({value: n, text: n || '(none)'}))));
  controls.push(select(
      'f-term', 'termination',
      names('terminations').map((n) => ({value: n, text: n}))));
  const envs = names('envs');
  if (envs.length > 1)
    controls.push(
        select('f-env', 'env', envs.map((n) => ({value: n, text: n}))));
  controls.push(el('label', null, [
    'reward ',
    el('input',
       {type: 'number', id: 'f-rmin', step: 'any', placeholder: 'min'}),
    ' to ',
    el('input', {type: 'number', id: 'f-rmax', step: 'any', placeholder: 'max'})
  ]));
  controls.push(el('label', null, [
    'step ', el('input', {type: 'number', id: 'f-smin', placeholder: 'from'}),
    ' to ', el('input', {type: 'number', id: 'f-smax', placeholder: 'to'})
  ]));
  controls.push(el('label', null, [
    el('input', {type: 'checkbox', id: 'f-transcript'}), ' with transcript only'
  ]));
  controls.push(select('f-sort', 'sort', [
    {value: 'step-desc', text: 'newest first'},
    {value: 'step-asc', text: 'oldest first'},
    {value: 'reward-desc', text: 'reward high-low'},
    {value: 'reward-asc', text: 'reward low-high'}
  ]));
  browser.count = el('span', {cls: 'muted', id: 'traj-count'});
  controls.push(browser.count);
  sec.appendChild(el('div', {cls: 'toolbar', id: 'traj-filters'}, controls));

  browser.spacer = el('div', {style: 'height:0px'});
  browser.list =
      el('div', {cls: 'traj-list', id: 'traj-list'}, [browser.spacer]);
  browser.list.addEventListener('scroll', renderRows);
  const head = el('div', {cls: 'traj-head'}, [
    'step', 'split', 'term', 'run', 'turns', 'reward', 'components'
  ].map((h) => el('span', {text: h})));
  browser.detail = el('div', {cls: 'detail', id: 'traj-detail'}, [
    el('p', {cls: 'muted', text: 'Select an episode to read its transcript.'})
  ]);
  sec.appendChild(
      el('div', {cls: 'browser'},
         [el('div', null, [head, browser.list]), browser.detail]));
  for (const c of sec.querySelectorAll('select, input')) {
    c.addEventListener(
        c.tagName === 'SELECT' || c.type === 'checkbox' ? 'change' : 'input',
        applyFilters);
  }
  return sec;
}

function value(id) {
  const e = document.getElementById(id);
  return e ? e.value : '';
}

function applyFilters() {
  const started = performance.now();
  const runSel = value('f-run'), split = value('f-split'),
        term = value('f-term'), env = value('f-env');
  const rmin = value('f-rmin') === '' ? -Infinity : Number(value('f-rmin'));
  const rmax = value('f-rmax') === '' ? Infinity : Number(value('f-rmax'));
  const smin = value('f-smin') === '' ? -Infinity : Number(value('f-smin'));
  const smax = value('f-smax') === '' ? Infinity : Number(value('f-smax'));
  const onlyTranscript = document.getElementById('f-transcript').checked;
  const sort = value('f-sort') || 'step-desc';
  const out = new Int32Array(total);
  let n = 0, withTranscript = 0;
  RUNS.forEach((run, ri) => {
    if (runSel !== '' && Number(runSel) !== ri) return;
    const T = run.trajectories, C = T.columns;
    const splitIdx = split === '' ? -1 : T.splits.indexOf(split);
    const termIdx = term === '' ? -1 : T.terminations.indexOf(term);
    const envIdx = env === '' ? -1 : T.envs.indexOf(env);
    if ((split !== '' && splitIdx < 0) || (term !== '' && termIdx < 0) ||
        (env !== '' && envIdx < 0))
      return;
    for (let i = 0; i < T.count; i++) {
      if (splitIdx >= 0 && C.split[i] !== splitIdx) continue;
      if (termIdx >= 0 && C.term[i] !== termIdx) continue;
      if (envIdx >= 0 && C.env[i] !== envIdx) continue;
      const r = C.reward[i];
      if ((rmin > -Infinity || rmax < Infinity) &&
          (r === null || r < rmin || r > rmax))
        continue;
      const s = C.step[i];
      if (s < smin || s > smax) continue;
      if (onlyTranscript && C.transcript[i] < 0) continue;
      if (C.transcript[i] >= 0) withTranscript++;
      out[n++] = offsets[ri] + i;
    }
  });
  let rows = out.subarray(0, n);
  const key = (id) => {
    const [ri, i] = locate(id);
    const C = RUNS[ri].trajectories.columns;
    return sort.startsWith('step') ?
        C.step[i] :
        (C.reward[i] === null ? -Infinity : C.reward[i]);
  };
  const keys = new Float64Array(total);
  for (let k = 0; k < n; k++) keys[rows[k]] = key(rows[k]);
  const desc = sort.endsWith('desc');
  rows = Int32Array.from(rows).sort((a, b) => {
    const d = desc ? keys[b] - keys[a] : keys[a] - keys[b];
    return d || (desc ? b - a : a - b);
  });
  browser.rows = rows;
  browser.count.textContent =
      n + ' of ' + total + ' episodes (' + withTranscript + ' with transcript)';
  browser.spacer.style.height = (n * ROW_H) + 'px';
  browser.list.scrollTop = 0;
  for (const e of browser.rendered.values()) e.remove();
  browser.rendered.clear();
  renderRows();
  window.clinrlLastFilterMs = performance.now() - started;
}

function rowElement(id) {
  const [ri, i] = locate(id);
  const T = RUNS[ri].trajectories, C = T.columns;
  const comps = T.components
                    .map((name, k) => {
                      const v = C.comp[k][i];
                      return v === null ? null : name + ' ' + num(v, 2);
                    })
                    .filter((x) => x !== null)
                    .join(' · ');
  const row =
      el('div', {
        cls: 'traj-row' + (id === browser.selected ? ' sel' : ''),
        'data-id': String(id)
      },
         [
           el('span', {text: String(C.step[i])}),
           el('span', {text: T.splits[C.split[i]]}),
           el('span', {text: T.terminations[C.term[i]]}),
           el('span', null, [swatch(ri), RUNS.length > 1 ? RUNS[ri].name : '']),
           el('span', {text: String(C.turns[i])}),
           el('span', {text: num(C.reward[i], 3)}),
           el('span', {
             cls: 'comp' + (C.transcript[i] < 0 ? ' nt' : ''),
             text: comps,
             title: C.transcript[i] < 0 ? 'transcript not embedded' : comps
           }),
         ]);
  row.addEventListener('click', () => openEpisode(id));
  return row;
}

// Only the rows in view (plus a margin) exist in the DOM.
function renderRows() {
  const list = browser.list;
  const first = Math.max(0, Math.floor(list.scrollTop / ROW_H) - 10);
  const last = Math.min(
      browser.rows.length,
      Math.ceil((list.scrollTop + list.clientHeight) / ROW_H) + 10);
  const keep = new Set();
  for (let k = first; k < last; k++) {
    keep.add(k);
    if (browser.rendered.has(k)) continue;
    const row = rowElement(browser.rows[k]);
    row.style.top = (k * ROW_H) + 'px';
    list.appendChild(row);
    browser.rendered.set(k, row);
  }
  for (const [k, e] of browser.rendered) {
    if (!keep.has(k)) {
      e.remove();
      browser.rendered.delete(k);
    }
  }
}

function openEpisode(id) {
  browser.selected = id;
  for (const e of browser.rendered.values())
    e.classList.toggle('sel', Number(e.dataset.id) === id);
  const [ri, i] = locate(id);
  const run = RUNS[ri], T = run.trajectories, C = T.columns;
  const d = browser.detail;
  d.textContent = '';
  d.appendChild(el('h3', {
    text: run.name + ' · step ' + C.step[i] + ' · ' + T.splits[C.split[i]] +
        ' · ' + T.terminations[C.term[i]] + ' · reward ' + num(C.reward[i], 4)
  }));
  const t = C.transcript[i];
  if (t < 0) {
    d.appendChild(el('p', {
      cls: 'muted',
      text: 'Transcript not embedded: the report keeps at most ' +
          DATA.max_transcripts +
          ' transcripts per run (the most recent half, the rest spread evenly). It is line ' +
          C.line[i] +
          ' of trajectories.jsonl; `clinrl report --max-transcripts N` embeds more.'
    }));
    d.appendChild(componentTable(
        T.components.map((name, k) => [name, {score: C.comp[k][i]}])));
    return;
  }
  const ep = JSON.parse(T.transcripts[t]);
  d.appendChild(el('div', {
    cls: 'muted',
    text: 'episode ' + (ep.episode_id || '') + ' · task ' + ep.task_index +
        ' · ' + (ep.env || '') + ' · policy v' + ep.policy_version +
        ' · line ' + C.line[i] + ' of trajectories.jsonl'
  }));
  const comps = ep.reward && ep.reward.components ?
      Object.entries(ep.reward.components) :
      [];
  d.appendChild(el('h4', {
    text: 'Reward components (total ' +
        num(ep.reward ? ep.reward.total : null, 4) + ')'
  }));
  d.appendChild(componentTable(comps));
  const rubric = [];
  for (const [name, c] of comps) {
    const crit = c.details && Array.isArray(c.details.criteria) ?
        c.details.criteria :
        null;
    if (crit)
      for (const item of crit) rubric.push([name, item]);
  }
  if (rubric.length) {
    const met = rubric.filter((r) => r[1].met).length;
    d.appendChild(el('h4', {
      text:
          'Rubric items: ' + met + ' met, ' + (rubric.length - met) + ' missed'
    }));
    d.appendChild(
        el('ul', {cls: 'rubric', id: 'rubric-items'},
           rubric.map(([name, item]) => el('li', {
                        cls: item.met ? 'met' : 'missed',
                        text: '[' + num(item.points) + '] ' + item.criterion +
                            (item.why ? ' — ' + item.why : ''),
                        title: name,
                      }))));
  }
  d.appendChild(costBlock(ep));
  d.appendChild(
      el('h4', {text: 'Transcript (' + ep.turns.length + ' messages)'}));
  d.appendChild(el(
      'div', {cls: 'chat', id: 'chat'},
      ep.turns.map((turn) => el('div', {cls: 'msg ' + (turn.role || 'user')}, [
                     el('div', {cls: 'role', text: turn.role}), turn.content
                   ]))));
  if (ep.info) {
    const det = el('details', null, [
      el('summary', {text: 'Final env info'}),
      el('pre', {cls: 'json', text: JSON.stringify(ep.info, null, 2)})
    ]);
    d.appendChild(det);
  }
  d.scrollTop = 0;
}

function componentTable(entries) {
  const trs = [el('tr', null, [
    'component', 'score', 'weight', 'weighted', 'details'
  ].map((h, k) => el('th', {cls: k === 0 || k === 4 ? 'l' : null, text: h})))];
  for (const [name, c] of entries) {
    const details = c.details ? Object.assign({}, c.details) : null;
    if (details) delete details.criteria;
    const w = typeof c.weight === 'number' ? c.weight : null;
    trs.push(el('tr', null, [
      el('td', {cls: 'l', text: name}),
      el('td', {text: num(c.score, 3)}),
      el('td', {text: num(w, 2)}),
      el('td',
         {text: w === null || c.score === null ? '–' : num(c.score * w, 3)}),
      el('td', {
        cls: 'l',
        text: details ? JSON.stringify(details) : '',
        style: 'white-space:normal;max-width:320px'
      }),
    ]));
  }
  return el('table', {cls: 'grid', id: 'component-table'}, trs);
}

// Test costs: the env's running cost and the tests and exams the agent
// ordered with the env's answers (dx_dialogue prices each of them).
function costBlock(ep) {
  const box = el('div', {id: 'costs'});
  const info = ep.info || {};
  const metrics = info.metrics || {};
  const cost = typeof info.cost === 'number' ? info.cost : metrics.cost;
  const ordered = [];
  for (let k = 0; k < ep.turns.length; k++) {
    const turn = ep.turns[k];
    if (turn.role !== 'assistant') continue;
    const m = /^\s*(TEST|EXAM)\s*:\s*(.+)$/im.exec(turn.content);
    if (m) {
      const reply = ep.turns[k + 1] && ep.turns[k + 1].role !== 'assistant' ?
          ep.turns[k + 1].content :
          '';
      ordered.push([m[1].toLowerCase(), m[2].trim(), reply]);
    }
  }
  if (cost === undefined && !ordered.length) return box;
  box.appendChild(el('h4', {
    text: 'Test costs: total ' + num(cost) +
        (typeof info.total_cost === 'number' ?
             ' (spec total ' + num(info.total_cost) + ')' :
             '')
  }));
  if (ordered.length) {
    box.appendChild(el('table', {cls: 'grid'}, [
      el('tr', null,
         ['kind', 'ordered', 'result'].map(
             (h) => el('th', {cls: 'l', text: h})))
    ].concat(ordered.map((o) => el('tr', null, o.map((v) => el('td', {
                                                       cls: 'l',
                                                       text: v,
                                                       style:
                                                           'white-space:normal'
                                                     })))))));
  }
  return box;
}

// ------------------------------------------------------------------ page
function render() {
  const app = document.getElementById('app');
  app.textContent = '';
  const generated = DATA.generated_unix_s ?
      new Date(DATA.generated_unix_s * 1000)
              .toISOString()
              .replace('T', ' ')
              .slice(0, 19) +
          ' UTC' :
      '';
  app.appendChild(el('header', {cls: 'top'}, [
    el('h1', {text: 'clinrl report · ' + RUNS.map((r) => r.name).join(' vs ')}),
    el('nav', null,
       [
         el('a', {href: '#summary', text: 'Summary'}),
         el('a', {href: '#signals', text: 'Signals'}),
         el('a', {href: '#charts', text: 'Charts'}),
         el('a', {href: '#trajectories', text: 'Trajectories'})
       ]),
    el('span', {cls: 'meta', text: 'generated ' + generated}),
  ]));
  const main = el('main');
  app.appendChild(main);
  if (!RUNS.length) {
    main.appendChild(el('p', {text: 'No runs in this report.'}));
    return;
  }
  main.appendChild(summarySection());
  main.appendChild(signalsSection());
  main.appendChild(chartsSection());
  main.appendChild(trajectorySection());
  applyFilters();
  drawVisibleCharts();
  observeCharts();
}

render();
// Tests and reviewers can read when the page became interactive.
window.clinrlReady = {
  ms: performance.now(),
  charts: charts.length,
  episodes: total
};
document.body.setAttribute('data-ready', '1');
})();
