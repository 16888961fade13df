// Opens a report.html in headless Debian chromium (driven by playwright-core,
// no downloaded browser) and checks what a reviewer relies on: the charts
// and the trajectory browser render with no console errors, filters work,
// an episode opens as a transcript; saves screenshots and prints the
// time-to-interactive as JSON on the last line.
//
//   node report_browser_test.js REPORT.html OUT_DIR [--max-open-ms N]
'use strict';
const fs = require('fs');
const path = require('path');
const {chromium} = require('playwright-core');

function fail(message) {
  console.error('FAIL: ' + message);
  process.exitCode = 1;
  throw new Error(message);
}

function check(cond, message) {
  if (!cond) fail(message);
  console.log('ok: ' + message);
}

async function main() {
  const args = process.argv.slice(2);
  const report = path.resolve(args[0]);
  const outDir = path.resolve(args[1]);
  const maxIdx = args.indexOf('--max-open-ms');
  const maxOpenMs = maxIdx >= 0 ? Number(args[maxIdx + 1]) : Infinity;
  fs.mkdirSync(outDir, {recursive: true});
  const executablePath = process.env.CLINRL_CHROMIUM || '/usr/bin/chromium';
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const errors = [];
  const requests = [];
  try {
    const page = await browser.newPage({viewport: {width: 1440, height: 1000}});
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push('console: ' + m.text());
    });
    page.on('pageerror', (e) => errors.push('page error: ' + e.message));
    page.on('request', (r) => {
      if (!r.url().startsWith('file:')) requests.push(r.url());
    });

    const start = Date.now();
    await page.goto('file://' + report, {waitUntil: 'load', timeout: 60000});
    await page.waitForFunction(
        () => window.clinrlReady, null, {timeout: 60000, polling: 10});
    const openMs = Date.now() - start;
    const ready = await page.evaluate(() => window.clinrlReady);
    check(
        errors.length === 0,
        'no console errors while opening: ' + errors.join(' | '));
    check(requests.length === 0, 'no network requests: ' + requests.join(' '));

    // Charts: one per metric, the visible ones drawn (non-blank pixels).
    const keys = await page.evaluate(() => {
      const d = JSON.parse(document.getElementById('clinrl-data').textContent);
      return d.runs[0].metrics.keys;
    });
    const chartKeys =
        await page.$$eval('.chart', (cs) => cs.map((c) => c.dataset.key));
    for (const k of keys)
      if (!chartKeys.includes(k)) fail('no chart for metric ' + k);
    check(
        chartKeys.length >= keys.length,
        chartKeys.length + ' charts for ' + keys.length + ' metrics');
    const inked = await page.evaluate(() => {
      const c = document.querySelector('.chart canvas');
      const ctx = c.getContext('2d');
      const px = ctx.getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < px.length; i += 4)
        if (px[i] > 0) n++;
      return n;
    });
    check(inked > 500, 'first chart is drawn (' + inked + ' painted pixels)');
    check(
        await page.$('#runs-table tr:nth-child(2)') !== null,
        'summary table has a run row');
    await page.screenshot({path: path.join(outDir, 'report_top.png')});

    // Trajectory browser: virtualised (few rows in the DOM), filterable.
    const total = ready.episodes;
    check(total > 0, total + ' episodes indexed');
    const domRows = await page.$$eval('.traj-row', (r) => r.length);
    check(
        domRows > 0 && domRows <= 80,
        domRows + ' rows in the DOM for ' + total + ' episodes');
    const rewards = await page.evaluate(() => {
      const d = JSON.parse(document.getElementById('clinrl-data').textContent);
      const all = [];
      for (const run of d.runs)
        for (const r of run.trajectories.columns.reward)
          if (r !== null) all.push(r);
      return all.sort((a, b) => a - b);
    });
    const median = rewards[Math.floor(rewards.length / 2)];
    const expected = rewards.filter((r) => r >= median).length;
    const filterStart = Date.now();
    await page.fill('#f-rmin', String(median));
    await page.waitForFunction(
        (n) => document.getElementById('traj-count')
                   .textContent.startsWith(n + ' of'),
        expected, {timeout: 10000});
    const filterMs = Date.now() - filterStart;
    const filterInPageMs = await page.evaluate(() => window.clinrlLastFilterMs);
    check(
        true,
        'reward >= ' + median + ' keeps ' + expected +
            ' episodes (filter and list ' + filterInPageMs.toFixed(1) +
            ' ms in the page, ' + filterMs + ' ms seen from the test)');
    const shown = await page.$$eval(
        '.traj-row span:nth-child(6)',
        (s) => s.map((x) => Number(x.textContent)));
    check(
        shown.length > 0 &&
            shown.every((r) => r >= Math.round((median - 5e-4) * 1000) / 1000),
        'every listed reward is >= the minimum');
    await page.selectOption('#f-sort', 'reward-asc');
    await page.check('#f-transcript');
    await page.waitForFunction(
        () => document.querySelectorAll('.traj-row').length > 0);
    const terms = await page.$$eval(
        '#f-term option', (o) => o.map((x) => x.value).filter((v) => v));
    check(terms.length > 0, 'termination filter offers ' + terms.join(', '));

    // Open one episode.
    await page.click('.traj-row');
    await page.waitForSelector('#chat .msg', {timeout: 10000});
    const messages = await page.$$eval('#chat .msg', (m) => m.length);
    check(messages >= 2, 'transcript shows ' + messages + ' messages');
    check(
        await page.$('#component-table tr:nth-child(2)') !== null,
        'reward components are listed');
    const scrolled = await page.evaluate(() => {
      const list = document.getElementById('traj-list');
      list.scrollTop = list.scrollHeight / 2;
      list.dispatchEvent(new Event('scroll'));
      return document.querySelectorAll('.traj-row').length;
    });
    check(
        scrolled > 0 && scrolled <= 80,
        'scrolling keeps the list virtual (' + scrolled + ' rows)');
    check(
        errors.length === 0,
        'no console errors after interacting: ' + errors.join(' | '));

    await page.evaluate(
        () => document.getElementById('trajectories').scrollIntoView());
    await page.waitForTimeout(300);
    await page.screenshot({path: path.join(outDir, 'report_trajectories.png')});
    await page.evaluate(
        () => document.getElementById('charts').scrollIntoView());
    await page.waitForTimeout(
        300);  // charts scrolled into view draw on the next frames
    await page.screenshot({path: path.join(outDir, 'report_charts.png')});
    check(
        errors.length === 0,
        'no console errors at the end: ' + errors.join(' | '));

    const sizeMb = fs.statSync(report).size / 1e6;
    const figures = {
      open_ms: openMs,
      ready_in_page_ms: Math.round(ready.ms),
      filter_ms: Number(filterInPageMs.toFixed(1)),
      charts: ready.charts,
      episodes: total,
      html_mb: Number(sizeMb.toFixed(1))
    };
    console.log(
        'report opened and interactive in ' + openMs + ' ms (' +
        figures.html_mb + ' MB, ' + total + ' episodes, ' + ready.charts +
        ' charts)');
    if (openMs > maxOpenMs)
      fail('open took ' + openMs + ' ms, more than ' + maxOpenMs);
    console.log(JSON.stringify(figures));
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exitCode = 1;
});
