// The gateway's live dashboard: reads ../api/v1/dashboard (a full
// snapshot) and ../api/v1/dashboard/events (Server-Sent Events: one
// "snapshot", then "tick"s), and draws them. Every URL is relative to the
// page (…/ui/), so the page works under an admin path_prefix and behind a
// proxy that strips one.
//
// Every number shown carries its raw value in data-value, and a stable
// data-testid, so that tests (and people comparing with /metrics) read
// exact figures:
//
//   status bar    version, status, updated, conn-state (data-state: live, polling,
//                 reconnecting, token), uptime, config-generation,
//                 last-reload (data-state: ok, failed, none), ready
//   overview      rps, hit, stale, miss, pass, error (per second),
//                 p50, p95, p99 (ms), in-flight, shed, rate-limited (per
//                 second), cache-saved-bytes, compress-saved-bytes (bytes
//                 per second), total-requests, total-errors, total-hits,
//                 total-stale-hits, total-misses, total-passes,
//                 total-shed, total-rate-limited,
//                 total-cache-saved-bytes, total-compress-saved-bytes
//   charts        chart-rps, chart-outcomes, chart-latency, chart-saved
//                 (data-points: samples drawn), route-<route>-spark
//   route table   route-<route> (row), route-<route>-rps, -hit, -stale,
//                 -miss, -pass, -error, -p50, -p95, -p99, -in-flight,
//                 -shed, -rate-limited, -requests (total)
//   cache         cache-entries, cache-bytes-used, cache-max-bytes,
//                 cache-evictions, cache-purges; per caching route
//                 route-<route>-hit-ratio, route-<route>-hits,
//                 -stale-hits, -misses, -passes, -stores;
//                 cache-<route>-top-hits-<i>, cache-<route>-top-misses-<i>
//                 (data-key: the key), cache-<route>-not-stored-<reason>;
//                 shared-state, shared-breaker (text in data-value),
//                 shared-hits, shared-misses, shared-errors
//   purge         purge-form, purge-kind, purge-value, purge-route,
//                 purge-soft, purge-submit, purge-result (data-value:
//                 entries purged; data-status: the HTTP status)
//   upstreams     upstream-<name> (data-state: healthy, unhealthy),
//                 target-<upstream>-<i> (row; data-state: up, down,
//                 probing), target-<upstream>-<i>-state, -check,
//                 -last-check, -last-error, -breaker, -in-flight,
//                 -connections, -p50, -p99
//   jobs          jobs-queued, jobs-running, jobs-succeeded, jobs-failed,
//                 jobs-cancelled, jobs-retries, jobs-rejected,
//                 jobs-wait-p50, jobs-run-p50
//   websocket     ws-open, ws-upgraded, ws-rejected, ws-<route>-open,
//                 ws-<route>-upgraded
//   config        config (the running configuration, pretty-printed)
//   token         token-form, token-input, token-submit, token-message
'use strict';

(() => {
  const HISTORY_LENGTH = 600; // dashboard.HistoryLength: ten minutes of seconds
  const POLL_MS = 2000;
  const FIRST_EVENT_MS = 5000; // the stream's first event comes at once
  const SILENCE_MS = 20000; // ticks come each second, heartbeats each 15 s
  const TOKEN_KEY = 'gateway-admin-token';

  const api = (path) => new URL('../api/v1/' + path, location.href);
  const $ = (id) => document.querySelector('[data-testid="' + CSS.escape(id) + '"]');

  // ---- formatting for people --------------------------------------------

  function fmtCount(n) {
    if (n == null || !isFinite(n)) return '–';
    const a = Math.abs(n);
    if (a >= 1e9) return trim(n / 1e9) + 'G';
    if (a >= 1e6) return trim(n / 1e6) + 'M';
    if (a >= 1e3) return trim(n / 1e3) + 'k';
    if (Number.isInteger(n)) return String(n);
    return a >= 10 ? n.toFixed(0) : n.toFixed(1);
  }
  function trim(x) {
    return (Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(1)).replace(/\.0$/, '');
  }
  const fmtRate = (n) => fmtCount(n) + '/s';
  const fmtPct = (r) => (r * 100).toFixed(1) + '%';
  function fmtMs(ms) {
    if (ms == null || !isFinite(ms)) return '–';
    if (ms === 0) return '0 ms';
    if (ms < 1) return ms.toFixed(2) + ' ms';
    if (ms < 1000) return (ms < 100 ? ms.toFixed(1) : ms.toFixed(0)) + ' ms';
    return (ms / 1000).toFixed(2) + ' s';
  }
  function fmtBytes(b) {
    if (b == null || !isFinite(b)) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    let v = b;
    while (Math.abs(v) >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return (i === 0 ? String(Math.round(v)) : v.toFixed(1)) + ' ' + units[i];
  }
  function fmtDuration(s) {
    s = Math.max(0, Math.floor(s));
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    if (d > 0) return d + 'd ' + h + 'h';
    if (h > 0) return h + 'h ' + m + 'm';
    if (m > 0) return m + 'm ' + (s % 60) + 's';
    return s + 's';
  }
  function fmtAgo(iso) {
    if (!iso) return 'never';
    const t = Date.parse(iso);
    if (!isFinite(t) || t <= 0) return 'never';
    return fmtDuration((Date.now() - t) / 1000) + ' ago';
  }

  // ---- DOM helpers ------------------------------------------------------

  // el builds an element: attrs are attributes (class, data-*, …) except
  // "text"; kids are nodes or strings.
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const k of kids) if (k != null) e.append(k);
    return e;
  }
  // num is one displayed number: its text for people, its raw value for
  // machines.
  function num(tag, id, value, fmt, cls) {
    return el(tag, { 'data-testid': id, 'data-value': value, class: cls, text: fmt(value) });
  }
  const cellNum = (id, value, fmt) => num('td', id, value, fmt, 'num');
  function kpi(id, label, value, fmt, sub) {
    return el('div', { class: 'kpi card' },
      el('div', { class: 'kpi-label', text: label }),
      num('div', id, value, fmt, 'kpi-value'),
      sub || null);
  }
  // replace sets parent's children; a null kid (a panel not shown) is
  // left out, where replaceChildren would write "null".
  function replace(parent, ...kids) {
    parent.replaceChildren(...kids.filter((k) => k != null));
  }

  // ---- charts: inline SVG -----------------------------------------------

  const SVG = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  }

  // chart draws series (each {name, cls, values}) over the same x; when
  // stacked, each series is drawn on top of the ones before it.
  function chart(box, series, opts) {
    const W = 300;
    const H = 90;
    const n = series.length ? series[0].values.length : 0;
    const tops = series.map((s) => s.values.slice());
    if (opts.stacked) {
      for (let i = 1; i < tops.length; i++) {
        for (let j = 0; j < n; j++) tops[i][j] += tops[i - 1][j];
      }
    }
    let max = 0;
    for (const t of tops) for (const v of t) if (v > max) max = v;
    const top = opts.binary ? niceBinary(max) : niceMax(max);
    const x = (j) => (n <= 1 ? W : (j / (n - 1)) * W);
    const y = (v) => H - (v / top) * (H - 4);
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', class: 'plot', role: 'img' });
    root.setAttribute('aria-label', opts.label + ', ' + n + ' samples, peak ' + opts.fmt(max));
    for (const g of [0.25, 0.5, 0.75]) {
      root.append(svg('line', { x1: 0, x2: W, y1: H * g, y2: H * g, class: 'grid' }));
    }
    for (let i = tops.length - 1; i >= 0; i--) {
      if (n === 0) break;
      const base = opts.stacked && i > 0 ? tops[i - 1] : null;
      const pts = tops[i].map((v, j) => `${x(j).toFixed(1)},${y(v).toFixed(1)}`);
      if (opts.stacked || opts.area) {
        const under = base
          ? base.map((v, j) => `${x(j).toFixed(1)},${y(v).toFixed(1)}`).reverse()
          : [`${x(n - 1).toFixed(1)},${H}`, `${x(0).toFixed(1)},${H}`];
        root.append(svg('polygon', { points: pts.concat(under).join(' '), class: 'area ' + series[i].cls }));
      }
      root.append(svg('polyline', { points: pts.join(' '), class: 'line ' + series[i].cls }));
    }
    const legend = el('ul', { class: 'legend' },
      ...series.map((s) => el('li', {},
        el('span', { class: 'swatch ' + s.cls }),
        s.name + ' ' + opts.fmt(s.values.length ? s.values[s.values.length - 1] : 0))),
      el('li', { class: 'scale', text: 'max ' + opts.fmt(top) }));
    box.setAttribute('data-points', n);
    replace(box, root, legend);
  }
  function niceMax(v) {
    if (v <= 0) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }
  // niceBinary is niceMax for bytes: 1, 2, 4, … 512 of a power of 1024,
  // so the scale reads "1 MiB/s", not "976.6 KiB/s".
  function niceBinary(v) {
    if (v <= 0) return 1;
    let p = 1;
    while (p * 1024 < v) p *= 1024;
    let m = 1;
    while (m * p < v) m *= 2;
    return m * p;
  }
  function sparkline(id, values) {
    const box = el('div', { class: 'spark', 'data-testid': id });
    chart(box, [{ name: 'req/s', cls: 's-rps', values }], { label: 'requests per second', fmt: fmtRate, area: true });
    box.querySelector('.legend').remove();
    return box;
  }

  // ---- state ------------------------------------------------------------

  let snap = null; // the newest snapshot, with history kept up to date
  let history = { gateway: [], routes: {} };
  let config = null;

  function applyFull(s) {
    history = s.history ? { gateway: s.history.gateway || [], routes: s.history.routes || {} } : { gateway: [], routes: {} };
    if (s.config) config = s.config;
    snap = s;
    render(true);
  }
  function applyTick(s) {
    const last = history.gateway[history.gateway.length - 1];
    if (!last || s.now.t > last.t) {
      push(history.gateway, s.now);
      for (const rp of s.routes || []) {
        push(history.routes[rp.route] || (history.routes[rp.route] = []), rp);
      }
    }
    snap = s;
    render(false);
  }
  function push(list, p) {
    list.push(p);
    if (list.length > HISTORY_LENGTH) list.splice(0, list.length - HISTORY_LENGTH);
  }

  // ---- rendering --------------------------------------------------------

  function render(full) {
    const s = snap;
    renderStatus(s);
    renderOverview(s);
    renderRoutes(s);
    renderCache(s);
    renderUpstreams(s);
    renderJobs(s.jobs);
    renderWebSocket(s.websocket);
    if (full && config) $('config').textContent = JSON.stringify(config, null, 2);
  }

  function renderStatus(s) {
    const g = s.gateway;
    const v = $('version');
    v.textContent = g.version;
    v.setAttribute('data-value', g.version);
    setNum('uptime', g.uptime_seconds, fmtDuration);
    const gen = $('config-generation');
    gen.setAttribute('data-value', g.config_generation);
    gen.textContent = 'generation ' + g.config_generation + ', since ' + fmtAgo(g.config_loaded_at);
    const lr = $('last-reload');
    if (!g.last_reload) {
      lr.textContent = 'none';
      lr.setAttribute('data-state', 'none');
    } else {
      const r = g.last_reload;
      lr.setAttribute('data-state', r.ok ? 'ok' : 'failed');
      lr.textContent = (r.ok ? 'applied ' : 'failed ') + fmtAgo(r.at) + (r.ok ? (r.summary ? ': ' + r.summary : '') : ': ' + (r.error || ''));
      lr.title = r.ok ? (r.summary || '') : (r.error || '');
    }
    const ready = $('ready');
    const state = g.draining ? 'draining' : g.ready ? 'ready' : 'not ready';
    ready.textContent = state;
    ready.setAttribute('data-value', state);
  }
  function setNum(id, value, fmt) {
    const e = $(id);
    e.setAttribute('data-value', value);
    e.textContent = fmt(value);
  }

  function renderOverview(s) {
    const p = s.now;
    const t = p.totals;
    const outcomes = p.hit + p.stale + p.miss + p.pass;
    const share = (v) => (outcomes > 0 ? fmtPct(v / outcomes) + ' of outcomes' : '');
    // Each rate's card carries its cumulative total, as /metrics has it.
    const tot = (id, v, fmt, extra) => el('div', { class: 'kpi-sub' },
      num('span', id, v, fmt), ' total' + (extra ? ' · ' + extra : ''));
    const perSec = (v) => fmtBytes(v) + '/s';
    replace($('kpis'),
      kpi('rps', 'Requests/s', p.rps, fmtCount, tot('total-requests', t.requests, fmtCount)),
      kpi('hit', 'Hits/s', p.hit, fmtCount, tot('total-hits', t.hits, fmtCount, share(p.hit))),
      kpi('stale', 'Stale hits/s', p.stale, fmtCount, tot('total-stale-hits', t.stale_hits, fmtCount, share(p.stale))),
      kpi('miss', 'Misses/s', p.miss, fmtCount, tot('total-misses', t.misses, fmtCount, share(p.miss))),
      kpi('pass', 'Passes/s', p.pass, fmtCount, tot('total-passes', t.passes, fmtCount, share(p.pass))),
      kpi('error', '5xx/s', p.error, fmtCount, tot('total-errors', t.errors, fmtCount)),
      kpi('p50', 'Latency p50', p.p50_ms, fmtMs),
      kpi('p95', 'Latency p95', p.p95_ms, fmtMs),
      kpi('p99', 'Latency p99', p.p99_ms, fmtMs),
      kpi('in-flight', 'In flight', p.in_flight, fmtCount),
      kpi('shed', 'Shed/s', p.shed, fmtCount, tot('total-shed', t.shed, fmtCount)),
      kpi('rate-limited', 'Rate-limited/s', p.rate_limited, fmtCount, tot('total-rate-limited', t.rate_limited, fmtCount)),
      kpi('cache-saved-bytes', 'Saved by cache', p.cache_saved_bytes, perSec, tot('total-cache-saved-bytes', t.cache_saved_bytes, fmtBytes)),
      kpi('compress-saved-bytes', 'Saved by compression', p.compress_saved_bytes, perSec, tot('total-compress-saved-bytes', t.compress_saved_bytes, fmtBytes)));

    const h = history.gateway;
    const col = (k) => h.map((q) => q[k]);
    chart($('chart-rps'), [
      { name: 'req/s', cls: 's-rps', values: col('rps') },
      { name: '5xx/s', cls: 's-error', values: col('error') },
    ], { label: 'requests per second', fmt: fmtCount, area: true });
    chart($('chart-outcomes'), [
      { name: 'hit', cls: 's-hit', values: col('hit') },
      { name: 'stale', cls: 's-stale', values: col('stale') },
      { name: 'miss', cls: 's-miss', values: col('miss') },
      { name: 'pass', cls: 's-pass', values: col('pass') },
    ], { label: 'cache outcomes per second', fmt: fmtCount, stacked: true });
    chart($('chart-latency'), [
      { name: 'p50', cls: 's-p50', values: col('p50_ms') },
      { name: 'p95', cls: 's-p95', values: col('p95_ms') },
      { name: 'p99', cls: 's-p99', values: col('p99_ms') },
    ], { label: 'latency', fmt: fmtMs });
    chart($('chart-saved'), [
      { name: 'cache', cls: 's-hit', values: col('cache_saved_bytes') },
      { name: 'compression', cls: 's-p50', values: col('compress_saved_bytes') },
    ], { label: 'bytes saved per second', fmt: (v) => fmtBytes(v) + '/s', binary: true });
  }

  function renderRoutes(s) {
    const tbody = $('routes-table').tBodies[0];
    const rows = (s.routes || []).map((r) => {
      const id = 'route-' + r.route;
      const h = (history.routes[r.route] || []).map((q) => q.rps);
      return el('tr', { 'data-testid': id },
        el('th', { scope: 'row', text: r.route }),
        el('td', {}, sparkline(id + '-spark', h)),
        cellNum(id + '-rps', r.rps, fmtCount),
        cellNum(id + '-hit', r.hit, fmtCount),
        cellNum(id + '-stale', r.stale, fmtCount),
        cellNum(id + '-miss', r.miss, fmtCount),
        cellNum(id + '-pass', r.pass, fmtCount),
        cellNum(id + '-error', r.error, fmtCount),
        cellNum(id + '-p50', r.p50_ms, fmtMs),
        cellNum(id + '-p95', r.p95_ms, fmtMs),
        cellNum(id + '-p99', r.p99_ms, fmtMs),
        cellNum(id + '-in-flight', r.in_flight, fmtCount),
        cellNum(id + '-shed', r.shed, fmtCount),
        cellNum(id + '-rate-limited', r.rate_limited, fmtCount),
        cellNum(id + '-requests', r.totals.requests, fmtCount));
    });
    if (!rows.length) rows.push(el('tr', {}, el('td', { colspan: 15, class: 'empty', text: 'No routes.' })));
    replace(tbody, ...rows);
  }

  function renderCache(s) {
    const c = s.cache;
    $('cache-off').hidden = !!c;
    document.querySelector('.cache-body').hidden = !c;
    $('purge-form').hidden = !c;
    if (!c) return;
    const used = c.max_bytes > 0 ? c.bytes_used / c.max_bytes : 0;
    const meter = el('div', { class: 'meter', role: 'presentation' }, el('span'));
    // A width from JS is allowed under the page's CSP; a style attribute
    // in the HTML would not be.
    meter.firstChild.style.width = Math.min(100, used * 100).toFixed(1) + '%';
    replace($('cache-kpis'),
      kpi('cache-entries', 'Entries', c.entries, fmtCount),
      kpi('cache-bytes-used', 'Memory used', c.bytes_used, fmtBytes,
        el('div', { class: 'kpi-sub' }, meter, 'of ', num('span', 'cache-max-bytes', c.max_bytes, fmtBytes), ' (' + fmtPct(used) + ')')),
      kpi('cache-evictions', 'Evictions', c.evictions, fmtCount),
      kpi('cache-purges', 'Purged', c.purges, fmtCount),
      c.shared ? sharedCard(c.shared) : null);

    const rows = c.routes.map((r) => {
      const id = 'route-' + r.route;
      const ratio = num('span', id + '-hit-ratio', r.hit_ratio, fmtPct);
      const bar = el('div', { class: 'meter small', role: 'presentation' }, el('span'));
      bar.firstChild.style.width = (r.hit_ratio * 100).toFixed(1) + '%';
      return el('tr', {},
        el('th', { scope: 'row', text: r.route }),
        el('td', { class: 'num' }, ratio, bar),
        cellNum(id + '-hits', r.hits, fmtCount),
        cellNum(id + '-stale-hits', r.stale_hits, fmtCount),
        cellNum(id + '-misses', r.misses, fmtCount),
        cellNum(id + '-passes', r.passes, fmtCount),
        cellNum(id + '-stores', r.stores, fmtCount));
    });
    if (!rows.length) rows.push(el('tr', {}, el('td', { colspan: 7, class: 'empty', text: 'No caching route.' })));
    replace($('cache-table').tBodies[0], ...rows);

    replace($('cache-details'), ...c.routes.map((r) => el('div', { class: 'card cache-route' },
      el('h3', { text: r.route }),
      el('div', { class: 'lists' },
        keyList('Top keys by hits', 'cache-' + r.route + '-top-hits', r.top_hits),
        keyList('Top keys by misses', 'cache-' + r.route + '-top-misses', r.top_misses),
        reasonList('cache-' + r.route + '-not-stored', r.not_stored)))));
    updatePurgeRoutes(c.routes.map((r) => r.route));
  }
  function sharedCard(sh) {
    const state = el('span', { 'data-testid': 'shared-state', 'data-value': sh.state, class: 'badge state-' + sh.state, text: sh.state });
    const breaker = el('span', { 'data-testid': 'shared-breaker', 'data-value': sh.breaker, class: 'badge breaker-' + sh.breaker, text: 'breaker ' + sh.breaker });
    return el('div', { class: 'kpi card' },
      el('div', { class: 'kpi-label', text: 'Shared tier' }),
      el('div', { class: 'kpi-value' }, state),
      el('div', { class: 'kpi-sub' }, breaker, ' ',
        num('span', 'shared-hits', sh.hits, fmtCount), ' hits · ',
        num('span', 'shared-misses', sh.misses, fmtCount), ' misses · ',
        num('span', 'shared-errors', sh.errors, fmtCount), ' errors'));
  }
  function keyList(title, id, items) {
    items = items || [];
    return el('div', {},
      el('h4', { text: title }),
      items.length
        ? el('ol', { class: 'keys' }, ...items.map((k, i) => el('li', {},
          el('code', { text: k.key, title: k.key }),
          el('span', { 'data-testid': id + '-' + i, 'data-value': k.count, 'data-key': k.key, class: 'num', text: fmtCount(k.count) }))))
        : el('p', { class: 'empty', text: 'None yet.' }));
  }
  function reasonList(id, items) {
    items = items || [];
    return el('div', {},
      el('h4', { text: 'Not stored, by reason' }),
      items.length
        ? el('ul', { class: 'keys' }, ...items.map((r) => el('li', {},
          el('code', { text: r.reason }),
          num('span', id + '-' + r.reason, r.count, fmtCount, 'num'))))
        : el('p', { class: 'empty', text: 'Every response was stored.' }));
  }

  function renderUpstreams(s) {
    const ups = s.upstreams || [];
    if (!ups.length) {
      replace($('upstreams'), el('p', { class: 'empty', text: 'No upstreams.' }));
      return;
    }
    replace($('upstreams'), ...ups.map((u) => el('div', { class: 'upstream card', 'data-testid': 'upstream-' + u.name, 'data-state': u.healthy ? 'healthy' : 'unhealthy' },
      el('h3', {}, u.name, ' ', el('span', { class: 'badge ' + (u.healthy ? 'state-up' : 'state-down'), text: u.healthy ? 'healthy' : 'no healthy target' })),
      el('div', { class: 'table-wrap' }, el('table', {},
        el('thead', {}, el('tr', {}, ...['Target', 'State', 'Active check', 'Last check', 'Breaker', 'In flight', 'Conns', 'p50', 'p99', 'Last error']
          .map((h, i) => el('th', { scope: 'col', class: i >= 5 && i <= 8 ? 'num' : null, text: h })))),
        el('tbody', {}, ...u.targets.map((t, i) => targetRow(u.name, i, t))))))));
  }
  function targetRow(up, i, t) {
    const id = 'target-' + up + '-' + i;
    return el('tr', { 'data-testid': id, 'data-state': t.state, class: 'target row-' + t.state },
      el('th', { scope: 'row' }, el('code', { text: t.url })),
      el('td', {}, el('span', { 'data-testid': id + '-state', 'data-value': t.state, class: 'badge state-' + t.state, text: t.state })),
      el('td', { 'data-testid': id + '-check', 'data-value': t.active_check, text: t.active_check }),
      el('td', { 'data-testid': id + '-last-check', 'data-value': t.last_check || '', text: t.last_check ? fmtAgo(t.last_check) : '–' }),
      el('td', { 'data-testid': id + '-breaker', 'data-value': t.breaker, text: t.breaker || '–' }),
      cellNum(id + '-in-flight', t.in_flight, fmtCount),
      cellNum(id + '-connections', t.connections, fmtCount),
      cellNum(id + '-p50', t.p50_ms, fmtMs),
      cellNum(id + '-p99', t.p99_ms, fmtMs),
      el('td', { class: 'error-text', 'data-testid': id + '-last-error', 'data-value': t.last_error || '', text: t.last_error || '' }));
  }

  function renderJobs(j) {
    $('jobs-section').hidden = !j;
    if (!j) return;
    replace($('jobs'),
      kpi('jobs-queued', 'Queued', j.queued, fmtCount),
      kpi('jobs-running', 'Running', j.running, fmtCount),
      kpi('jobs-succeeded', 'Succeeded', j.succeeded, fmtCount),
      kpi('jobs-failed', 'Failed', j.failed, fmtCount),
      kpi('jobs-cancelled', 'Cancelled', j.cancelled, fmtCount),
      kpi('jobs-retries', 'Retries', j.retries, fmtCount),
      kpi('jobs-rejected', 'Rejected', j.rejected, fmtCount),
      kpi('jobs-wait-p50', 'Wait p50', j.wait_p50_ms, fmtMs),
      kpi('jobs-run-p50', 'Run p50', j.run_p50_ms, fmtMs));
  }

  function renderWebSocket(w) {
    $('ws-section').hidden = !w;
    if (!w) return;
    replace($('ws'),
      kpi('ws-open', 'Open', w.open, fmtCount),
      kpi('ws-upgraded', 'Upgraded', w.upgraded, fmtCount),
      kpi('ws-rejected', 'Rejected', w.rejected, fmtCount));
    replace($('ws-table').tBodies[0], ...(w.routes || []).map((r) => el('tr', {},
      el('th', { scope: 'row', text: r.route }),
      cellNum('ws-' + r.route + '-open', r.open, fmtCount),
      cellNum('ws-' + r.route + '-upgraded', r.upgraded, fmtCount))));
  }

  // ---- token ------------------------------------------------------------

  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  }
  function headers(extra) {
    const h = Object.assign({}, extra);
    const t = token();
    if (t) h.Authorization = 'Bearer ' + t;
    return h;
  }
  // Unauthorized is thrown when the admin API answered 401.
  class Unauthorized extends Error {}

  function askToken() {
    const form = $('token-form');
    const refused = token() !== '';
    sessionStorage.removeItem(TOKEN_KEY);
    $('token-message').textContent = refused
      ? 'That token was refused; enter the admin token again.'
      : "This gateway's admin API asks for a token.";
    form.hidden = false;
    setConn('token', 'Waiting for the admin token.');
    $('token-input').focus();
  }
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = $('token-input').value.trim();
    if (!v) return;
    sessionStorage.setItem(TOKEN_KEY, v);
    $('token-input').value = '';
    $('token-form').hidden = true;
    start();
  });

  // ---- connection: a stream, else polling -------------------------------

  // setConn says how the page gets its data. Only a change is written to
  // the status line, which is aria-live: a screen reader hears "Live"
  // once, not every second; the time of the last update sits beside it.
  function setConn(state, text, updated) {
    $('conn-state').setAttribute('data-state', state);
    const st = $('status');
    if (st.textContent !== text) st.textContent = text;
    $('updated').textContent = updated ? 'updated ' + new Date(updated).toLocaleTimeString() : '';
  }

  let generation = 0; // bumps on every start, so a superseded loop ends
  let aborter = null; // ends the fetches of the superseded loop

  function start() {
    const gen = ++generation;
    if (aborter) aborter.abort();
    aborter = new AbortController();
    run(gen).catch((e) => {
      if (e instanceof Unauthorized) {
        if (gen === generation) askToken();
        return;
      }
      setConn('reconnecting', 'Stopped: ' + e.message);
    });
  }

  async function run(gen) {
    const canStream = typeof ReadableStream !== 'undefined' && typeof TextDecoder !== 'undefined';
    let delay = 1000;
    while (gen === generation) {
      let got = false;
      if (canStream) {
        try {
          got = await stream(gen);
        } catch (e) {
          if (e instanceof Unauthorized) throw e;
        }
      }
      if (gen !== generation) return;
      if (got) delay = 1000;
      // The stream ended or cannot be had: poll until the next try.
      await poll(gen, canStream ? delay : Infinity);
      delay = Math.min(delay * 2, 30000);
    }
  }

  // stream reads the event stream until it ends; it reports whether any
  // event came.
  async function stream(gen) {
    // A proxy that buffers the stream would leave the page waiting for
    // ever: without a first event soon, or with the stream silent longer
    // than the gateway's heartbeat, it is given up and the page polls.
    const ctl = new AbortController();
    const outer = aborter.signal;
    const stop = () => ctl.abort();
    outer.addEventListener('abort', stop, { once: true });
    let timer = 0;
    const watch = (ms) => {
      clearTimeout(timer);
      timer = setTimeout(stop, ms);
    };
    watch(FIRST_EVENT_MS);
    try {
      const res = await fetch(api('dashboard/events'), { headers: headers({ Accept: 'text/event-stream' }), cache: 'no-store', signal: ctl.signal });
      if (res.status === 401) throw new Unauthorized();
      if (!res.ok || !res.body) throw new Error('events: ' + res.status);
      return await readEvents(gen, res.body.getReader(), () => watch(SILENCE_MS));
    } finally {
      clearTimeout(timer);
      outer.removeEventListener('abort', stop);
    }
  }

  // readEvents parses the stream (event: and data: lines, a blank line
  // ends an event) and hands each event on; heard is called on each
  // event and comment, so the stream's watchdog knows it is alive.
  async function readEvents(gen, reader, heard) {
    const decoder = new TextDecoder();
    let buf = '';
    let event = '';
    let data = [];
    let got = false;
    for (;;) {
      if (gen !== generation) {
        reader.cancel();
        return got;
      }
      const { value, done } = await reader.read();
      if (done) return got;
      buf += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
        // A CR ending the chunk may be the first half of a CRLF.
        if (nl === buf.length - 1 && buf[nl] === '\r') break;
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + (buf.startsWith('\r\n', nl) ? 2 : 1));
        if (line === '') {
          if (data.length && gen === generation) {
            dispatch(event || 'message', data.join('\n'));
            got = true;
            heard();
          }
          event = '';
          data = [];
          continue;
        }
        if (line.startsWith(':')) {
          if (got) heard();
          continue;
        }
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? '' : line.slice(colon + 1);
        if (val.startsWith(' ')) val = val.slice(1);
        if (field === 'event') event = val;
        else if (field === 'data') data.push(val);
      }
    }
  }
  function dispatch(event, data) {
    const s = JSON.parse(data);
    if (event === 'snapshot') applyFull(s);
    else if (event === 'tick') applyTick(s);
    else return;
    setConn('live', 'Live', s.time);
  }

  // poll fetches the full snapshot every POLL_MS for ms (at least once).
  async function poll(gen, ms) {
    const until = Date.now() + ms;
    do {
      try {
        const res = await fetch(api('dashboard'), { headers: headers(), cache: 'no-store', signal: aborter.signal });
        if (res.status === 401) throw new Unauthorized();
        if (!res.ok) throw new Error('HTTP ' + res.status);
        const s = await res.json();
        if (gen !== generation) return;
        applyFull(s);
        setConn('polling', 'Polling every ' + POLL_MS / 1000 + ' s', s.time);
      } catch (e) {
        if (e instanceof Unauthorized) throw e;
        if (gen !== generation) return;
        setConn('reconnecting', 'Cannot reach the gateway (' + e.message + '); retrying.');
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    } while (gen === generation && Date.now() < until);
  }

  // ---- purge ------------------------------------------------------------

  let purgeRoutes = '';
  function updatePurgeRoutes(names) {
    const key = names.join('\n');
    if (key === purgeRoutes) return; // keep a choice being made
    purgeRoutes = key;
    const sel = $('purge-route');
    const chosen = sel.value;
    replace(sel, el('option', { value: '', text: 'every host' }),
      ...names.map((n) => el('option', { value: n, text: 'hosts of ' + n, selected: n === chosen })));
  }

  const placeholders = {
    url: 'https://example.com/api/items?page=2',
    path: '/api/items?page=2',
    prefix: '/api/ or https://example.com/api/',
    tag: 'product-42',
    all: '',
  };
  function purgeKindChanged() {
    const kind = $('purge-kind').value;
    const value = $('purge-value');
    value.disabled = kind === 'all';
    value.required = kind !== 'all';
    value.placeholder = placeholders[kind];
    // The API takes a route only with a path or a path prefix.
    $('purge-route-label').hidden = !(kind === 'path' || kind === 'prefix');
    $('purge-submit').textContent = kind === 'all' ? 'Purge everything' : 'Purge';
  }
  $('purge-kind').addEventListener('change', purgeKindChanged);
  purgeKindChanged();

  $('purge-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const kind = $('purge-kind').value;
    const value = $('purge-value').value.trim();
    const q = new URLSearchParams();
    q.set(kind, kind === 'all' ? 'true' : value);
    const route = $('purge-route').value;
    if (route && (kind === 'path' || (kind === 'prefix' && value.startsWith('/')))) q.set('route', route);
    if ($('purge-soft').checked) q.set('soft', 'true');
    const out = $('purge-result');
    out.removeAttribute('data-value');
    out.removeAttribute('data-status');
    out.className = '';
    out.textContent = 'Purging…';
    const u = api('cache/purge');
    u.search = q.toString();
    let res;
    let body = {};
    try {
      res = await fetch(u, { method: 'POST', headers: headers(), cache: 'no-store' });
      body = await res.json().catch(() => ({}));
    } catch (e) {
      out.className = 'bad';
      out.textContent = 'The gateway could not be reached: ' + e.message;
      out.setAttribute('data-status', '0');
      return;
    }
    out.setAttribute('data-status', res.status);
    if (res.status === 401) {
      out.textContent = 'The admin token is needed; enter it above and purge again.';
      out.className = 'bad';
      askToken();
      return;
    }
    out.textContent = purgeSummary(res.status, body);
    out.className = res.ok ? (body.purged > 0 ? 'good' : 'neutral') : 'bad';
    if (typeof body.purged === 'number') out.setAttribute('data-value', body.purged);
  });

  // purgeSummary says what a purge answer means, for a person.
  function purgeSummary(status, b) {
    const what = b.soft ? 'marked stale' : 'removed';
    let text;
    if (status >= 400 && typeof b.purged !== 'number') return 'Not purged: ' + (b.error || 'HTTP ' + status);
    if (b.purged > 0) text = b.purged + (b.purged === 1 ? ' entry ' : ' entries ') + what + '.';
    else text = 'Nothing purged' + (b.reason ? ': ' + b.reason : '.');
    if (b.scope === 'cluster') text += ' Every gateway sharing the tier was told.';
    if (b.scope === 'local') text += ' This gateway only: ' + (b.scope_reason || 'the shared tier was not reachable') + '.';
    if (b.error) text += ' Not all of it: ' + b.error;
    return text;
  }

  // Ages ("3s ago") and the uptime move on between ticks.
  setInterval(() => {
    if (snap) renderStatus(snap);
  }, 5000);

  start();
})();
